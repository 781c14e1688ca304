"""Word expansion as bash does it: quotes, escapes, parameters, substitutions, braces, ``~``, globs.

A word is first cut into *parts*, each tagged with how it was written: ``u`` unquoted literal,
``q`` quoted literal, ``s`` unquoted expansion result, ``e`` quoted expansion result, ``x``
unknown (an unset variable, a command's unknown output), ``B`` a break between the words of
``"$@"``. The tags then drive the later steps exactly as in bash: brace expansion and ``~`` only
on ``u``, word splitting only on ``s``, globbing on ``u`` and ``s``. A word with an ``x`` part is
one unresolved field.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Protocol

import tree_sitter as ts

from guard.shell.fields import Acc, WordFields
from guard.shell.record import MAX_NEST, MAX_TEXT, Run
from guard.shell.wordops import (
    MAX_PATTERN_TEXT,
    _longest_prefix,
    _longest_suffix_start,
    glob_pattern,
    strip_pattern,
    unescape_dq,
)
from guard.shell.words import OPAQUE, Field, Flow, Var, ansi_c_decode
from guard.types import Location

__all__ = [
    "Expander",
    "ShellState",
]


class ShellState(Protocol):
    """What the word expander, the condition evaluator and the variable rules need of the
    shell they work for (:class:`guard.shell.core.State` is one): its variables and options,
    its source text, and re-entry into it for substitutions, ``eval`` and functions. They
    depend on this, not on the walker, so the walker can import them."""

    run: Run
    cwd: str | None
    home: str | None
    nest: int
    src: bytes
    pos: list[str] | None
    vars: dict[str, Var]
    exported: set[str]
    attrs: dict[str, str]
    namerefs: dict[str, str | None]
    scope: dict[str, tuple[Var | None, str | None]] | None
    temp: dict[str, tuple[Var | None, str | None]] | None
    funcs: dict[str, tuple[ts.Node, bytes]]
    exported_funcs: set[str]
    aliases: dict[str, str]
    hashed: dict[str, str]
    globopts: frozenset[str] | None
    allexport: bool
    arg0: str

    @property
    def x(self) -> Expander:
        """A word expander for this shell."""
        ...

    def text(self, node: ts.Node) -> str:
        """The text of ``node`` in the source being walked."""
        ...

    def local(self, value: str) -> Location:
        """A path as this shell names it, resolved from its working directory."""
        ...

    def map_abs(self, value: str) -> str:
        """An absolute path as seen from this shell's host."""
        ...

    def set_var(self, name: str, var: Var) -> None:
        """Assign a variable as bash does."""
        ...

    def var_name(self, text: str | None, *, what: str, subscripts: bool = True) -> str | None:
        """The variable a name argument names (``declare``, ``read``, ``printf -v``)."""
        ...

    def subscript(self, name: str, index: ts.Node, *, x: Expander | None = None) -> str | None:
        """An array subscript's key."""
        ...

    def arith(self, text: str, *, what: str = "arithmetic") -> int | None:
        """The value of an arithmetic expression; ``None`` when unknown."""
        ...

    def arith_node(
        self, node: ts.Node, *, what: str = "arithmetic", x: Expander | None = None
    ) -> int | None:
        """The value of a parsed arithmetic expression; ``None`` when unknown."""
        ...

    def substitution(self, node: ts.Node) -> tuple[Flow, ...] | None:
        """Run a command substitution; what it prints."""
        ...

    def parse_word(self, text: str) -> tuple[ts.Tree, bytes, list[ts.Node]] | None:
        """Parse text as the words of a command."""
        ...

    def eval_text(self, text: str, *, what: str) -> None:
        """Run text as shell code in this shell (``eval``)."""
        ...

    def run_nested_text(self, text: str, *, what: str) -> tuple[Flow, ...]:
        """Run text as shell code one level deeper."""
        ...

    def run_seq(self, nodes: Iterable[ts.Node]) -> tuple[Flow, ...]:
        """Run statements in order."""
        ...

    def command_words(
        self, node: ts.Node, extra: list[ts.Node]
    ) -> tuple[list[ts.Node], list[ts.Node], list[list[ts.Node]]]:
        """A command's redirects, assignments and argument words."""
        ...

    def scope_save(self, name: str) -> None:
        """Keep a variable's value to restore when the function returns (``local``)."""
        ...

    def define_function(self, name: str, body: str) -> None:
        """Define a function from its body's text."""
        ...


_SPECIAL_WORD = re.compile(r"[\\{~*?\[$`]")
_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ALL_ITEMS = re.compile(r"\[[@*]\]")
_SUBST = frozenset(("command_substitution", "process_substitution"))
# Text the grammar leaves unparsed inside ${...} (a pattern, a word) that holds a substitution.
_CODE_TEXT = re.compile(r"\$[({\[]|`|[<>]\(")


_NAME_START = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]")


def _flatten(nodes: list[ts.Node]) -> list[ts.Node]:
    """A word's pieces with concatenations opened, so pieces that meet across them line up."""
    out: list[ts.Node] = []
    for n in nodes:
        if n.type == "concatenation":
            out.extend(_flatten(list(n.children)))
        else:
            out.append(n)
    return out


class Expander(WordFields):
    """Expands the words of one shell (:class:`~guard.shell.core.State`)."""

    __slots__ = ("keep", "ran", "st")
    st: ShellState

    def __init__(self, st: ShellState) -> None:
        self.st = st
        # While a ${...} is expanded: the substitutions it ran (by node id), so that the ones
        # its operator skipped are run too, and the trees parsed meanwhile (kept alive so that
        # node ids stay unique).
        self.ran: set[int] | None = None
        self.keep: list[ts.Tree] = []

    def get_var(self, name: str) -> Var | None:
        """A variable's value; ``None`` when unknown."""
        v = self.st.vars.get(name)
        if v is not None:
            return v
        if self.st.namerefs and name in self.st.namerefs:
            target = self.st.namerefs[name]
            if target is None or target in self.st.namerefs:
                return Var(None)  # a reference the analyser cannot follow
            return self.get_var(target)
        if name.isdigit():
            if name == "0":
                return Var(self.st.arg0)
            if self.st.pos is None:
                return None
            k = int(name)
            return Var(self.st.pos[k - 1] if k <= len(self.st.pos) else "")
        if name in ("@", "*"):
            if self.st.pos is None:
                return None
            return Var(" ".join(self.st.pos), items=tuple(self.st.pos))
        if name == "#":
            return Var(str(len(self.st.pos))) if self.st.pos is not None else None
        if name == "HOME":
            return Var(self.st.home) if self.st.home is not None else None
        if name == "PWD":
            return Var(self.st.cwd) if self.st.cwd is not None else None
        if name == "?":
            return Var("0")
        if name == "IFS":
            return Var(" \t\n")
        return None

    def expand(self, node: ts.Node) -> list[Field]:
        """One word as bash expands it: possibly several fields (splitting, braces, globs)."""
        acc = Acc()
        self.seg(node, acc, quoted=False)
        return self._finish(acc, self.st.text(node))

    def expand_group(
        self, nodes: list[ts.Node], *, sinks: list[tuple[ts.Node, bytes]] | None = None
    ) -> list[Field]:
        """Adjacent word nodes that bash reads as one word (``a\\<newline>b``, ``$"x"``)."""
        if len(nodes) == 1:
            # most words are plain: skip the general machinery (this is the hot path)
            n = nodes[0]
            t = n.type
            if t == "word":
                text = self.st.src[n.start_byte : n.end_byte].decode("utf-8", "replace")
                if not _SPECIAL_WORD.search(text):
                    return [Field(text, text)]
            elif t == "raw_string":
                text = self.st.src[n.start_byte : n.end_byte].decode("utf-8", "replace")
                return [Field(text[1:-1], text)]
        acc = Acc()
        if any(n.type == "concatenation" for n in nodes):
            nodes = _flatten(nodes)
        skip = False
        for i, n in enumerate(nodes):
            if skip:
                skip = False
                continue
            if n.type == "$" and i + 1 < len(nodes):
                after = nodes[i + 1]
                if after.type in ("string", "raw_string"):
                    continue
                if after.type == "word" and after.start_byte == n.end_byte:
                    # tree-sitter-bash splits `$a/$b/c` into `$a/$` and `b/c`; bash reads one
                    # word with two expansions. Expand the name the word starts with.
                    text = self.st.text(after)
                    m = _NAME_START.match(text)
                    if m is not None:
                        self._seg_name(m.group(), acc)
                        self._seg_word(text[m.end() :], acc, False)
                        skip = True
                        continue
            self.seg(n, acc, quoted=False)
        raw = self.st.src[nodes[0].start_byte : nodes[-1].end_byte].decode("utf-8", "replace")
        if sinks is not None:
            sinks.extend(acc.sinks)
        return self._finish(acc, raw)

    def expand_one(self, node: ts.Node, *, assignment: bool = False) -> Field:
        """A word expanded without splitting or globbing (assignments, redirect targets)."""
        acc = Acc()
        self.seg(node, acc, quoted=False)
        fields = self._finish(
            acc, self.st.text(node), split=False, glob=False, assignment=assignment
        )
        return fields[0] if fields else Field("", raw=self.st.text(node))

    def seg(self, node: ts.Node, acc: Acc, *, quoted: bool) -> None:
        t = node.type
        if t == "word":
            self._seg_word(self.st.text(node), acc, quoted)
        elif t == "raw_string":
            acc.add(self.st.text(node)[1:-1], "q")
        elif t in ("string", "translated_string"):
            self._seg_string(node, acc)
        elif t == "ansi_c_string":
            decoded, used = ansi_c_decode(self.st.text(node)[2:-1])
            acc.add(decoded, "q")
            if used:
                acc.obf = True
        elif t in ("simple_expansion", "expansion"):
            self._seg_param(node, acc, quoted)
        elif t == "command_substitution":
            if self._misparsed_arith(node, acc, quoted):
                return
            self._seg_cmdsub(node, acc, quoted)
        elif t == "process_substitution":
            self.procsub(node, acc)
        elif t == "arithmetic_expansion":
            # evaluated as bash does: expansions first, then the text, with its assignments
            value = self.st.arith_node(node, what="$((...))", x=self)
            if value is None:
                acc.unknown(self.st.text(node))
            else:
                acc.add(str(value), "e" if quoted else "s")
        elif t == "concatenation":
            kids = node.children
            for i, c in enumerate(kids):
                if (
                    c.type == "$"
                    and i + 1 < len(kids)
                    and kids[i + 1].type in ("string", "raw_string")
                ):
                    continue
                self.seg(c, acc, quoted=quoted)
        else:
            acc.add(self.st.text(node), "q" if quoted else "u")
            if node.named_child_count:
                self._run_inside(node)

    @staticmethod
    def _seg_word(text: str, acc: Acc, quoted: bool) -> None:
        if quoted:
            acc.add(text, "q")
            return
        if "\\" not in text:
            acc.add(text, "u")
            return
        i = 0
        buf: list[str] = []
        while i < len(text):
            ch = text[i]
            if ch == "\\" and i + 1 < len(text):
                if buf:
                    acc.add("".join(buf), "u")
                    buf = []
                if text[i + 1] != "\n":
                    acc.add(text[i + 1], "q")
                i += 2
                continue
            buf.append(ch)
            i += 1
        if buf:
            acc.add("".join(buf), "u")

    def _seg_string(self, node: ts.Node, acc: Acc) -> None:
        src = self.st.src
        pos = node.start_byte
        acc.add("", "q")
        for c in node.children:
            if c.start_byte > pos:
                gap = src[pos : c.start_byte].decode("utf-8", "replace")
                acc.add(unescape_dq(gap), "q")
            pos = max(pos, c.end_byte)
            ct = c.type
            if ct in ('"', '$"'):
                continue
            if ct == "string_content":
                acc.add(unescape_dq(self.st.text(c)), "q")
            elif ct == "$":
                acc.add("$", "q")
            elif ct == "string":
                self._seg_string(c, acc)
            else:
                self.seg(c, acc, quoted=True)

    def _seg_param(self, node: ts.Node, acc: Acc, quoted: bool) -> None:
        if self.st.nest >= MAX_NEST:
            acc.unknown(self.st.text(node))
            return
        self.st.nest += 1
        outer = self.ran
        try:
            if node.type == "expansion" and _CODE_TEXT.search(self.st.text(node), 2):
                # Whatever its operator does, every substitution inside ${...} is run.
                if outer is None:
                    self.ran = set()
                v = self._param(node)
                self._run_inside(node)
            else:
                v = self._param(node)
        finally:
            self.st.nest -= 1
            if outer is None:
                self.ran = None
                self.keep.clear()
        if v is None or v.text is None:
            acc.unknown(self.st.text(node), v.flows if v is not None else ())
            return
        if v.obfuscated:
            acc.obf = True
        acc.flows.extend(v.flows)
        text = self.st.text(node)
        if v.items is not None and (
            text in ("$@", "$*", "${@}", "${*}") or _ALL_ITEMS.search(text)
        ):
            # "$@" and "${a[@]}" give one word per item; "$*" and "${a[*]}" join them
            if quoted and "*" not in text:
                for k, item in enumerate(v.items):
                    if k:
                        acc.add("", "B")
                    acc.add(item, "e")
                return
            sep = " "
            if quoted:
                # "$*" joins with the first character of IFS
                ifs = self.get_var("IFS")
                if ifs is None or ifs.text is None:
                    acc.unknown(text, v.flows)
                    return
                sep = ifs.text[:1]
            acc.add(sep.join(v.items), "e" if quoted else "s")
            return
        acc.add(v.text, "e" if quoted else "s")

    def _seg_name(self, name: str, acc: Acc) -> None:
        """An unquoted ``$name`` the parser left as a bare ``$`` and a word."""
        v = self.get_var(name)
        if v is None or v.text is None:
            acc.unknown("$" + name, v.flows if v is not None else ())
            return
        if v.obfuscated:
            acc.obf = True
        acc.flows.extend(v.flows)
        acc.add(v.text, "s")

    def _param(self, node: ts.Node) -> Var | None:
        if node.type == "simple_expansion":
            named = [c for c in node.children if c.type != "$"]
            if not named:
                return Var("$")
            return self.get_var(self.st.text(named[0]))
        kids = [c for c in node.children if c.type not in ("${", "}")]
        if not kids:
            return None
        prefix = ""
        if kids[0].type in ("#", "!") and len(kids) > 1:
            prefix = kids[0].type
            kids = kids[1:]
        head = kids[0]
        var: Var | None
        if head.type in ("variable_name", "special_variable_name"):
            var = self.get_var(self.st.text(head))
        elif head.type == "subscript":
            var = self._subscript(head)
        else:
            return None
        rest = kids[1:]
        if prefix == "#":
            if rest or var is None or var.text is None:
                return None
            return Var(
                str(
                    len(var.items)
                    if var.items is not None and self.st.text(head).endswith("]")
                    else len(var.text)
                )
            )
        if prefix == "!":
            if rest or var is None:
                return None
            # ${!x}: the variable x names, a subscript of which is evaluated (it may run code)
            target = self.st.var_name(var.text, what="${!...}")
            if target is None or target != var.text:
                return None
            return self.get_var(target)
        if not rest:
            return var
        op = self.st.text(rest[0])
        operands = rest[1:]
        if op in (":-", "-", ":=", "=", ":+", "+", ":?", "?"):
            if var is None or var.text is None:
                # the operand may or may not be expanded at run time
                self._maybe(operands)
                if op in (":=", "=") and head.type == "variable_name":
                    self.st.set_var(self.st.text(head), Var(None))
                return None
            empty = var.text == "" and op.startswith(":")
            if op in (":+", "+"):
                return self._operand(operands) if not empty else Var("")
            if not empty:
                return var
            alt = self._operand(operands)
            if op in (":=", "=") and head.type == "variable_name":
                self.st.set_var(self.st.text(head), alt)
            return alt
        if op == "@":
            return self._transform(var, operands)
        if var is None or var.text is None:
            return None
        text = var.text
        if op in ("#", "##", "%", "%%", "/", "//", "/#", "/%") and len(text) > MAX_PATTERN_TEXT:
            return None
        if op in ("#", "##", "%", "%%"):
            pat_v = self._operand(operands, pattern=True)
            if pat_v.text is None:
                return None
            pat = glob_pattern(pat_v.text)
            if pat is None:
                return None
            return Var(strip_pattern(text, pat, op), flows=var.flows, obfuscated=var.obfuscated)
        if op in ("/", "//", "/#", "/%"):
            pat_nodes: list[ts.Node] = []
            rep_nodes: list[ts.Node] = []
            cur = pat_nodes
            for c in operands:
                if c.type == "/" and cur is pat_nodes:
                    cur = rep_nodes
                    continue
                cur.append(c)
            pat_v = self._operand(pat_nodes, pattern=True)
            rep_v = self._operand(rep_nodes)
            if pat_v.text is None or rep_v.text is None:
                return None
            pat = glob_pattern(pat_v.text)
            if pat is None:
                return None
            rep = rep_v.text
            if len(rep) * (len(text) + 1) > MAX_TEXT:
                return None
            if op == "/#":
                k = _longest_prefix(text, pat)
                new = rep + text[k:] if k is not None else text
            elif op == "/%":
                k = _longest_suffix_start(text, pat)
                new = text[:k] + rep if k is not None else text
            else:
                new = pat.sub(lambda _m: rep, text, count=0 if op == "//" else 1)
            return Var(
                new, flows=var.flows + rep_v.flows, obfuscated=var.obfuscated or rep_v.obfuscated
            )
        if op == ":":
            nums: list[int] = []
            for c in operands:
                if c.type == ":":
                    continue
                # offset and length are arithmetic
                val = self._operand([c])
                n = self.st.arith(val.text, what="${x:...}") if val.text is not None else None
                if n is None:
                    return None
                nums.append(n)
            if not nums:
                return None
            start = nums[0] if nums[0] >= 0 else max(len(text) + nums[0], 0)
            if len(nums) > 1:
                end = start + nums[1] if nums[1] >= 0 else len(text) + nums[1]
                return Var(text[start:end], flows=var.flows, obfuscated=var.obfuscated)
            return Var(text[start:], flows=var.flows, obfuscated=var.obfuscated)
        if op in ("^^", "^"):
            return Var(text.upper() if op == "^^" else text[:1].upper() + text[1:], flows=var.flows)
        if op in (",,", ","):
            return Var(text.lower() if op == ",," else text[:1].lower() + text[1:], flows=var.flows)
        return None

    def _subscript(self, node: ts.Node) -> Var | None:
        name = node.child_by_field_name("name")
        index = node.child_by_field_name("index")
        if name is None or index is None:
            return None
        base = self.st.text(name)
        idx = self.st.text(index)
        key = None if idx in ("@", "*") else self.st.subscript(base, index, x=self)
        var = self.get_var(base)
        if var is None or var.text is None:
            return None
        items = var.items if var.items is not None else (var.text,)
        if idx in ("@", "*"):
            return Var(" ".join(items), items=items, flows=var.flows, obfuscated=var.obfuscated)
        if key is None or "A" in self.st.attrs.get(base, ""):
            return None
        n = int(key)
        return Var(items[n] if -len(items) <= n < len(items) else "", flows=var.flows)

    def _transform(self, var: Var | None, operands: list[ts.Node]) -> Var | None:
        """``${x@P}`` expands x's text as a prompt: the substitutions in it run."""
        letter = self.st.text(operands[0]) if operands else ""
        if letter != "P" or var is None:
            return None
        if var.text is None:
            self.st.var_name(None, what="${x@P}")  # reported: text it cannot see is run
            return None
        self.st.eval_text(var.text, what="${x@P}")
        return var if not any(c in var.text for c in "\\$`") else None

    def _maybe(self, nodes: list[ts.Node]) -> None:
        """Expand operands that may or may not be expanded at run time: what they run is
        analysed, and the variables they assign become unknown."""
        before = dict(self.st.vars)
        self._operand(nodes)
        for k, v in list(self.st.vars.items()):
            if before.get(k) is not v:
                self.st.vars[k] = Var(None)

    def _operand(self, nodes: list[ts.Node], *, pattern: bool = False) -> Var:
        acc = Acc()
        for n in nodes:
            if n.type in ("regex", "word") and not n.child_count and self._reparse(n, acc):
                continue
            if pattern and n.type == "regex":
                text = self.st.text(n)
                if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
                    text = text[1:-1]
                acc.add(text, "u")
            else:
                self.seg(n, acc, quoted=True)
        if not acc.known:
            return Var(None, flows=tuple(acc.flows))
        return Var("".join(t for t, _ in acc.parts), flows=tuple(acc.flows), obfuscated=acc.obf)

    def _misparsed_arith(self, node: ts.Node, acc: Acc, quoted: bool) -> bool:
        """``$((x=9))`` that the grammar read as ``$( (x=9) )`` (it does inside ``${...}``):
        bash reads arithmetic."""
        text = self.st.text(node)
        if not (text.startswith("$((") and text.endswith("))")):
            return False
        parsed = self.st.parse_word(text)
        if parsed is None or len(parsed[2]) != 1 or parsed[2][0].type != "arithmetic_expansion":
            return False
        if self.ran is not None:
            self.ran.add(node.id)
        self._seg_parsed(parsed, acc, quoted)
        return True

    def _seg_parsed(
        self, parsed: tuple[ts.Tree, bytes, list[ts.Node]], acc: Acc, quoted: bool
    ) -> None:
        """Expand words parsed from text (see :meth:`ShellState.parse_word`), blanks kept."""
        tree, data, words = parsed
        self.keep.append(tree)
        st = self.st
        saved = st.src
        st.src = data
        try:
            pos = words[0].start_byte
            for w in words:
                if w.start_byte > pos:
                    acc.add(data[pos : w.start_byte].decode("utf-8", "replace"), "q")
                self.seg(w, acc, quoted=quoted)
                pos = w.end_byte
        finally:
            st.src = saved

    def _reparse(self, node: ts.Node, acc: Acc) -> bool:
        """Expand text the grammar left unparsed in ``${...}`` (``${x#*$(cmd)}``,
        ``${x:-`cmd`}``) as bash does; False when it holds no expansion."""
        text = self.st.text(node)
        if "$" not in text and "`" not in text:
            return False
        if self.ran is not None:
            self.ran.add(node.id)
        parsed = self.st.parse_word(text)
        if parsed is None:
            # not words the analyser can expand: what it holds is run, its value unknown
            self.st.eval_text(text, what="an operand of ${...}")
            acc.unknown(text)
            return True
        self._seg_parsed(parsed, acc, True)
        return True

    def _run_inside(self, node: ts.Node) -> None:
        """Run the substitutions inside ``node`` that its expansion did not run."""
        ran = self.ran
        stack = list(node.children)
        while stack:
            n = stack.pop()
            if n.type in _SUBST:
                if ran is None or n.id not in ran:
                    self.seg(n, Acc(), quoted=True)
                continue
            if not n.child_count:
                if n.type in ("regex", "word") and (ran is None or n.id not in ran):
                    self._reparse(n, Acc())
                continue
            stack.extend(n.children)

    def _seg_cmdsub(self, node: ts.Node, acc: Acc, quoted: bool) -> None:
        if self.ran is not None:
            self.ran.add(node.id)
        out = self.st.substitution(node)
        if out is None:
            acc.unknown(self.st.text(node))
            return
        texts = [f.text for f in out if not f.names]
        size = sum(len(t) for t in texts if t is not None)
        if (
            out
            and all(f.text is not None for f in out)
            and not any(f.names for f in out)
            and size <= MAX_TEXT
        ):
            value = "".join(t for t in texts if t is not None).rstrip("\n")
            if any(f.decoded for f in out):
                acc.obf = True
            acc.add(value, "e" if quoted else "s")
            return
        if not out:
            acc.add("", "e" if quoted else "s")
            return
        acc.unknown(self.st.text(node), out)

    def procsub(self, node: ts.Node, acc: Acc) -> None:
        if self.ran is not None:
            self.ran.add(node.id)
        acc.known = False
        acc.pipe = True
        acc.parts.append((self.st.text(node), "x"))
        if self.st.text(node).startswith(">("):
            acc.sinks.append((node, self.st.src))
            return
        out = self.st.substitution(node)
        acc.flows.extend(out if out is not None else (OPAQUE,))
