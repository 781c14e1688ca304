"""The last steps of word expansion: from tagged parts to the fields a command receives.

:class:`Acc` gathers a word's parts as the expander cuts it (each tagged with how it was
written, see :mod:`guard.shell.expand`); :class:`WordFields` then applies what bash applies last,
each step only to the parts whose tags allow it: ``~`` expansion, word splitting on ``IFS`` and
globbing against the filesystem the guard sees.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Protocol

import tree_sitter as ts

from guard.shell.globs import glob
from guard.shell.record import MAX_GLOB, MAX_GLOBS, Run
from guard.shell.wordops import (
    IFS,
    nocase,
    split_ifs,
    tilde_after_colon,
)
from guard.shell.words import Field, Flow, Var, brace_expand, has_glob
from guard.types import EffectKind, Location

_GLOB_CHARS = frozenset("*?[")
_EXTGLOB = re.compile(r"[?*+@!]\(")


class Acc:
    """Accumulates the parts of one word during expansion."""

    __slots__ = ("flows", "known", "obf", "parts", "pipe", "sinks")

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []  # (text, kind): u q s e x B
        self.known = True
        self.obf = False
        self.flows: list[Flow] = []
        self.sinks: list[tuple[ts.Node, bytes]] = []
        self.pipe = False

    def add(self, text: str, kind: str) -> None:
        self.parts.append((text, kind))

    def unknown(self, raw: str, flows: Iterable[Flow] = ()) -> None:
        self.known = False
        self.parts.append((raw, "x"))
        self.flows.extend(flows)


class FieldHost(Protocol):
    """What turning expanded parts into fields needs of a shell."""

    cwd: str | None
    home: str | None
    globopts: frozenset[str] | None
    src: bytes
    vars: dict[str, Var]
    run: Run

    def map_abs(self, value: str) -> str:
        """An absolute path as this shell's host sees it."""
        ...

    def local(self, value: str) -> Location:
        """A path as this shell names it, resolved from its working directory."""
        ...


class WordFields:
    """The last steps of expanding a word, as bash takes them: ``~``, word splitting on ``IFS``,
    globbing, each only on the parts written in a way that allows it."""

    __slots__ = ()
    st: FieldHost

    def get_var(self, name: str) -> Var | None:
        """A variable's value; ``None`` when unknown."""
        raise NotImplementedError

    def _finish(
        self,
        acc: Acc,
        raw: str,
        *,
        split: bool = True,
        glob: bool = True,
        assignment: bool = False,
    ) -> list[Field]:
        flows = tuple(acc.flows)
        if not acc.known:
            value = "".join(t for t, _ in acc.parts)
            segs = tuple((t, k == "x") for t, k in acc.parts if t)
            return [
                Field(
                    value,
                    raw=raw,
                    known=False,
                    obfuscated=acc.obf,
                    flows=flows,
                    pipe=acc.pipe,
                    pieces=segs,
                )
            ]
        groups: list[list[tuple[str, str]]] = [[]]
        for p in acc.parts:
            if p[1] == "B":
                groups.append([])
            else:
                groups[-1].append(p)
        out: list[Field] = []
        for parts in groups:
            value = "".join(t for t, _ in parts)
            mask = "".join(k * len(t) for t, k in parts)
            quoted = any(k in "qe" for _, k in parts)
            pieces = [(value, mask)]
            if "{" in value and not assignment and value.count("{") <= 32 and len(value) <= 8192:
                pieces = brace_expand(value, mask)
            for v, m in pieces:
                if v[:1] == "~" and m[:1] == "u":
                    v2, m2 = self._tilde(v, m)
                    if v2 is None:
                        out.append(Field(v, raw=raw, known=False, flows=flows))
                        continue
                    v, m = v2, m2
                if assignment and ":~" in v:
                    v = tilde_after_colon(v, self.st.home or "")
                    m = "q" * len(v)
                words = self._split(v, m) if split and "s" in m else [(v, m)]
                if words is None:
                    # split on an IFS the analyser cannot see: the words are unknown
                    out.append(Field(v, raw=raw, known=False, obfuscated=acc.obf, flows=flows))
                    continue
                for w, wm in words:
                    if w == "" and not quoted and split:
                        continue
                    dyn = self._dynamic(w, wm)
                    if glob and has_glob(w):
                        out.extend(self._glob(w, wm, raw, acc.obf, flows, dyn))
                    else:
                        out.append(Field(w, raw=raw, obfuscated=acc.obf, dynamic=dyn, flows=flows))
                    if len(out) > MAX_GLOB:
                        return out
        return out

    @staticmethod
    def _dynamic(value: str, mask: str) -> bool:
        cut = value.rfind("/") + 1
        return "s" in mask[cut:] or "e" in mask[cut:]

    def _tilde(self, v: str, m: str) -> tuple[str | None, str]:
        end = v.find("/")
        head = v[1:] if end < 0 else v[1:end]
        tail, tail_m = ("", "") if end < 0 else (v[end:], m[end:])
        if any(k != "u" for k in m[: len(head) + 1]):
            return v, m
        if head == "":
            base = self.get_var("HOME")
            repl = base.text if base is not None else None
        elif head == "+":
            repl = self.st.cwd
        elif head == "-":
            old = self.st.vars.get("OLDPWD")
            repl = old.text if old is not None else None
        else:
            return None, m
        if repl is None:
            return None, m
        return repl + tail, "q" * len(repl) + tail_m

    def _split(self, v: str, m: str) -> list[tuple[str, str]] | None:
        """Word splitting of the expanded parts (``s``) on ``$IFS``; ``None`` when IFS is
        unknown."""
        ifs_var = self.st.vars.get("IFS")
        if ifs_var is not None and ifs_var.text != " \t\n":
            if ifs_var.text is None:
                return None
            return split_ifs(v, m, ifs_var.text)
        words: list[tuple[str, str]] = []
        cur_v: list[str] = []
        cur_m: list[str] = []
        for ch, k in zip(v, m, strict=False):
            if k == "s" and ch in IFS:
                if cur_v:
                    words.append(("".join(cur_v), "".join(cur_m)))
                    cur_v, cur_m = [], []
                continue
            cur_v.append(ch)
            cur_m.append(k)
        if cur_v:
            words.append(("".join(cur_v), "".join(cur_m)))
        return words

    def _glob(
        self, w: str, wm: str, raw: str, obf: bool, flows: tuple[Flow, ...], dyn: bool
    ) -> list[Field]:
        opts = self.st.globopts
        if opts is None:
            # options set to something the analyser cannot name: which files match is unknown
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        if "noglob" in opts:
            return [Field(w, raw=raw, obfuscated=obf, dynamic=dyn, flows=flows)]
        magic = False
        pat: list[str] = []
        for ch, k in zip(w, wm, strict=False):
            if ch in _GLOB_CHARS:
                if k in "us":
                    magic = True
                    pat.append(ch)
                else:
                    pat.append("[" + ch + "]")
            else:
                pat.append(ch)
        if not magic:
            return [Field(w, raw=raw, obfuscated=obf, dynamic=dyn, flows=flows)]
        pattern = "".join(pat)
        if "nocaseglob" in opts:
            pattern = "/".join(
                nocase(part) if has_glob(part) else part for part in pattern.split("/")
            )
        if "extglob" in opts and _EXTGLOB.search(pattern):
            # +(a|b), !(x)...: Python's glob has no such patterns; the match is unknown
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        if len(pattern) > 4096 or sum(1 for part in pattern.split("/") if has_glob(part)) > 3:
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        if not pattern.startswith("/") and self.st.cwd is None:
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        self.st.run.globs += 1
        if self.st.run.globs > MAX_GLOBS or time.monotonic() > self.st.run.deadline:
            self.st.run.emit(
                EffectKind.UNKNOWN, certain=False, note="too many globs to expand", unseen=True
            )
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        pattern = self.st.map_abs(pattern)
        # As bash: ** spans folders only with globstar, * matches a leading dot with dotglob.
        # Folders are listed as the command will find them: with what earlier commands of the
        # line made in them, through its links, and never through the guard's own /proc.
        st = self.st
        # A non-empty GLOBIGNORE turns dotglob on; the names it drops are kept (more names is
        # the safe side).
        ignore = st.vars.get("GLOBIGNORE")
        if ignore is not None and ignore.text is None:
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        hits = glob(
            st.run,
            pattern,
            lambda text: st.local(text).path,
            deep="globstar" in opts,
            dots="dotglob" in opts or bool(ignore is not None and ignore.text),
        )
        if hits is None:
            return [Field(w, raw=raw, known=False, obfuscated=obf, flows=flows)]
        if not hits:
            if "nullglob" in opts:
                return []
            return [Field(w, raw=raw, obfuscated=obf, dynamic=dyn, flows=flows)]
        return [Field(h, raw=raw, obfuscated=obf, dynamic=dyn, flows=flows) for h in hits]
