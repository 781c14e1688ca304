"""Commands that edit files in place: sed (simulated, see :mod:`guard.shell.sed`), ed, jq,
yq, crudini, patch and the line-ending converters. An edit of a structured config is given as
the :class:`~guard.types.ConfigEdit` it makes, so a switch turned off is seen as such.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from guard.shell.common import (
    WRITE,
    copy_effect,
    run_shell_text,
)
from guard.shell.core import Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.sed import apply_sed, ere_script_to_bre
from guard.shell.words import OPAQUE, Field, Flow
from guard.types import ConfigEdit, Location

# An ed address (line numbers, ., $, marks, /re/, ?re?, offsets) before a command letter.
_ED_ADDRESS = re.compile(
    r"(?:[ \t0-9.$,;+^-]|'[a-z]|/(?:[^/\\\n]|\\.)*(?:/|$)|\?(?:[^?\\\n]|\\.)*(?:\?|$))*"
)


_ED_CHANGES = frozenset("acidjmstux")


@command("ed red")
def _ed(c: Cmd) -> tuple[Flow, ...]:
    """``ed [-s] [FILE]`` runs the commands on its standard input: ``!CMD`` (and ``r !CMD``,
    ``e !CMD``, ``w !CMD``) runs shell text; ``r FILE`` reads a file into the buffer and
    ``w [FILE]`` writes the buffer to FILE or to the file edited (``f FILE`` renames it).
    Commands the analyser cannot see are unseen."""
    o = parse(c.args, Spec.of("p", "prompt"))
    files = o.operands
    name: Field | None = files[0] if files else None
    buffer: tuple[Flow, ...] = ()
    if name is not None and name.known and name.value.startswith("!"):
        buffer = run_shell_text(c, name.value[1:], what="ed !command")
        name = None
    elif name is not None:
        c.read(name)
        buffer = c.content(name)
    texts: list[str] = []
    for fl in c.stdin:
        text = fl.text
        if text is None and fl.src is not None and fl.exact and not fl.names:
            text = c.st.run.read_text(fl.src)
        if text is None:
            c.unseen("ed runs commands from input the analyser cannot see", fl.src)
            return (OPAQUE,)
        texts.append(text)
    changed = False
    typing = False
    for line in "".join(texts).splitlines()[:4096]:
        if typing:
            typing = line != "."
            continue
        for cmd in _ed_commands(line):
            op, arg = cmd[0], cmd[1:].strip()
            if op in "aic" and not arg:
                typing = True
            changed = changed or op in _ED_CHANGES
            if op == "!":
                if name is not None and name.known:
                    arg = re.sub(r"(?<!\\)%", name.value.replace("\\", "\\\\"), cmd[1:])
                run_shell_text(c, cmd[1:] if name is None else arg, what="ed !command")
            elif op in "reE" and arg.startswith("!"):
                out = run_shell_text(c, arg[1:], what="ed !command")
                buffer = out if op != "r" else (*buffer, *out)
                changed = True
            elif op in "reE":
                f = Field(arg, raw=arg) if arg else name
                if f is None:
                    continue
                c.read(f)
                buffer = c.content(f) if op != "r" else (*buffer, *c.content(f))
                changed = changed or op == "r"
                if op != "r":
                    name = f
            elif op == "f" and arg:
                name = Field(arg, raw=arg)
            elif op in "wW":
                arg = arg.removeprefix("q").strip()
                data = tuple(fl.through("ed", transform=changed) for fl in buffer)
                if arg.startswith("!"):
                    run_shell_text(c, arg[1:], what="ed w !command", stdin=data)
                    continue
                target = Field(arg, raw=arg) if arg else name
                if target is not None:
                    c.write_to(target, (*data, OPAQUE) if changed else data, append=op == "W")
    return (OPAQUE,)


def _ed_commands(line: str) -> list[str]:
    """The commands of one ed line: the command after its address, and for ``g/re/cmd`` and
    its kin the command they run on each line that matches."""
    out: list[str] = []
    for _ in range(8):
        m = _ED_ADDRESS.match(line)
        cmd = line[m.end() :] if m is not None else line
        if not cmd:
            return out
        if cmd[0] not in "gGvV" or len(cmd) < 2:
            out.append(cmd)
            return out
        delim = cmd[1]
        end = 2
        while end < len(cmd) and cmd[end] != delim:
            end += 2 if cmd[end] == "\\" else 1
        line = cmd[end + 1 :] or "p"
    return out


@command("jq gojq jaq")
def _jq(c: Cmd) -> tuple[Flow, ...]:
    args = c.args
    ops: list[Field] = []
    named: list[Flow] = []  # --rawfile/--slurpfile: a file's content the filter can print
    filter_given = False
    i = 0
    while i < len(args):
        f = args[i]
        v = f.value if f.known else ""
        if v in ("--arg", "--argjson", "--slurpfile", "--rawfile"):
            if v in ("--slurpfile", "--rawfile") and i + 2 < len(args):
                c.read(args[i + 2])
                named.extend(c.content(args[i + 2], transform=True))
            i += 3
            continue
        if v in ("--args", "--jsonargs"):
            break
        if v in ("-f", "--from-file") and i + 1 < len(args):
            c.read(args[i + 1])
            filter_given = True
            i += 2
            continue
        if v in ("--indent", "--tab-width") and i + 1 < len(args):
            i += 2
            continue
        if v.startswith("-") and len(v) > 1:
            i += 1
            continue
        ops.append(f)
        i += 1
    files = ops if filter_given else ops[1:]
    out: list[Flow] = list(named)
    for f in files:
        c.read(f)
        out.extend(c.content(f, transform=True))
    return tuple(out) if files else (*named, *c.passthrough(transform=True))


@command("yq")
def _yq(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "pPoIs",
            "input-format output-format indent expression from-file split-exp front-matter",
        ),
    )
    ops = list(o.operands)
    if ops and ops[0].known and ops[0].value in ("e", "eval", "ea", "eval-all"):
        ops = ops[1:]
    given = o.value("--expression")
    program = given
    if given is None and o.value("--from-file") is None and ops:
        program = ops[0]
        ops = ops[1:]
    inplace = o.has("-i", "--inplace")
    if inplace:
        _yq_in_place(c, program, ops)
        return ()
    out: list[Flow] = []
    for f in ops:
        c.read(f)
        out.extend(c.content(f, transform=True))
    return tuple(out) if ops else c.passthrough(transform=True)


# Options of yq (mikefarah's and the jq wrapper's) that leave a plain program's edit as it
# reads: in-place, output style. Any other (-n, -s, --arg, -f...) changes what is written.
_YQ_PLAIN_LETTERS = frozenset("iyYPe")


_YQ_PLAIN_LONG = frozenset(["--inplace", "--yaml-output", "--yaml-roundtrip", "--prettyPrint"])


def _yq_in_place(c: Cmd, program: Field | None, ops: list[Field]) -> None:
    """``yq -i``: a program of plain assignments is simulated on each file like set_config.

    Anything else is an edit the guard cannot predict, made to every existing file the command
    names, whatever the option parser took it for (yq's two implementations disagree on
    which options take values).
    """
    plain = all(
        a.value in _YQ_PLAIN_LONG
        if a.value.startswith("--")
        else set(a.value[1:]) <= _YQ_PLAIN_LETTERS
        for a in c.args
        if a.known and a.value.startswith("-") and a.value != "-"
    )
    edits = (
        yq_edits(program.value)
        if plain and program is not None and program.known and not program.pipe
        else None
    )
    if edits is None:
        named = [a for a in c.args if not (a.known and a.value.startswith("-"))]
        targets = [f for f in named if f in ops or c.st.run.exists(c.loc(f).path or "")]
        for f in targets:
            c.emit(WRITE, c.loc(f))
        return
    for f in ops:
        for edit in edits:
            c.emit(WRITE, c.loc(f), edit=edit)


_YQ_PATH = r"\.[A-Za-z_][\w-]*(?:\.[A-Za-z_][\w-]*)*"


_YQ_SET = re.compile(rf"\s*({_YQ_PATH})\s*\|?=\s*(.+?)\s*")


_YQ_PIPE = re.compile(r"\|(?!=)")


_YQ_DEL = re.compile(rf"\s*del\(\s*({_YQ_PATH})\s*\)\s*")


def yq_edits(expression: str) -> list[ConfigEdit] | None:
    """The edits a ``yq``/``jq`` program of plain steps makes, or ``None`` for any other program.

    Understood: ``.a.b = VALUE`` and ``.a.b |= VALUE`` with a literal YAML value, and
    ``del(.a.b)``, joined with ``|``. Values are read as YAML reads them (``"no"`` stays a
    string, ``no`` and ``false`` are false), so the engine judges the switch yq would write.
    """
    edits: list[ConfigEdit] = []
    for step in _YQ_PIPE.split(expression):
        if (m := _YQ_DEL.fullmatch(step)) is not None:
            edits.append(ConfigEdit(op="remove", key=m.group(1)[1:]))
            continue
        m = _YQ_SET.fullmatch(step)
        if m is None:
            return None
        found, value = _yq_literal(m.group(2))
        if not found:
            return None  # a path, a function call or a structure: not a literal
        edits.append(ConfigEdit(op="set", key=m.group(1)[1:], value=value))
    return edits or None


_YQ_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def _yq_literal(raw: str) -> tuple[bool, Any]:
    """A yq expression literal's value: ``(True, value)``, or ``(False, None)`` for anything else."""
    if raw in ("true", "false"):
        return True, raw == "true"
    if raw in ("null", "~"):
        return True, None
    if _YQ_NUMBER.fullmatch(raw):
        return True, float(raw) if any(ch in raw for ch in ".eE") else int(raw)
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        try:
            value = json.loads(raw) if raw[0] == '"' else raw[1:-1]
        except ValueError:
            return False, None
        return (True, value) if isinstance(value, str) else (False, None)
    return False, None


@command("dos2unix unix2dos mac2unix unix2mac")
def _dos2unix(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("", ""))
    ops = list(o.operands)
    if o.has("-n", "--newfile") and len(ops) >= 2:
        for a, b in zip(ops[::2], ops[1::2], strict=False):
            c.read(a)
            c.write_to(b, c.content(a, transform=True), append=False)
        return ()
    for f in ops:
        c.emit(WRITE, c.loc(f))
    return () if ops else c.passthrough(transform=True)


@command("patch")
def _patch(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "iopdDBFgrVxYzX",
            "input output strip directory reject-file prefix suffix fuzz backup-if-mismatch",
        ),
    )
    for pf in o.values("-i", "--input"):
        c.read(pf)
    out = o.value("-o", "--output")
    if out is not None:
        c.emit(WRITE, c.loc(out))
    if o.operands:
        c.emit(WRITE, c.loc(o.operands[0]))
    elif out is None:
        c.emit(
            WRITE,
            Location(raw="<files named in the patch>"),
            certain=False,
            note="patch changes the files its input names",
        )
    return ()


@command("crudini")
def _crudini(c: Cmd) -> tuple[Flow, ...]:
    args = [f for f in c.args if f.known]
    modes = {"--set", "--del", "--merge", "--get", "--ini-options"}
    mode = next((f.value.split("=")[0] for f in args if f.value.split("=")[0] in modes), "--get")
    ops = [f for f in c.args if not (f.known and f.value.startswith("--"))]
    if ops:
        if mode == "--get":
            c.read(ops[0])
            return c.content(ops[0], transform=True)
        c.emit(WRITE, c.loc(ops[0]))
    return ()


_SED_EXEC = re.compile(
    r"(?:^|[;\n{}])\s*(?:[0-9$]+|/(?:[^/\\\n]|\\.)*/)?\s*(?:,\s*(?:[0-9$]+|/(?:[^/\\\n]|\\.)*/))?\s*!?\s*[ewWrR](?:\s|$)"
)


_SED_SFLAG = re.compile(r"s(.)(?:(?!\1)[^\\]|\\.)*\1(?:(?!\1)[^\\]|\\.)*\1[gpiImM0-9]*[ew]", re.S)


def _sed_parse(c: Cmd) -> tuple[list[str | None], str | None, bool, bool, list[Field]]:
    """sed's options by hand: ``-i`` takes an optional attached suffix, which getopt cannot say."""
    scripts: list[str | None] = []
    inplace: str | None = None
    ere = False
    exact = True
    operands: list[Field] = []
    args = c.args
    i = 0
    while i < len(args):
        a = args[i]
        v = a.value
        if not a.known or not v.startswith("-") or v == "-":
            operands.append(a)
            i += 1
            continue
        if v == "--":
            operands.extend(args[i + 1 :])
            break
        if v.startswith("--"):
            name, eq, val = v.partition("=")
            if "--in-place".startswith(name) and len(name) > 4:
                inplace = val if eq else ""
            elif "--expression".startswith(name) and len(name) > 3:
                if eq:
                    scripts.append(val)
                elif i + 1 < len(args):
                    i += 1
                    scripts.append(args[i].value if args[i].known else None)
            elif "--file".startswith(name) and len(name) > 3:
                if not eq and i + 1 < len(args):
                    i += 1
                    val = args[i].value
                c.read(Field(val, raw=val))
                scripts.append(c.st.run.read_text(c.st.local(val), 64 * 1024))
            elif "--regexp-extended".startswith(name) and len(name) > 3:
                ere = True
            elif name in ("--quiet", "--silent", "--null-data", "--zero-terminated", "--separate"):
                exact = exact and name == "--separate"
            elif "--line-length".startswith(name) and not eq and len(name) > 3:
                i += 1
            i += 1
            continue
        j = 1
        while j < len(v):
            ch = v[j]
            if ch == "i":
                inplace = v[j + 1 :]
                break
            if ch in "efl":
                val_s: str | None = v[j + 1 :]
                if not val_s and i + 1 < len(args):
                    i += 1
                    val_s = args[i].value if args[i].known else None
                if ch == "e":
                    scripts.append(val_s)
                elif ch == "f" and val_s is not None:
                    c.read(Field(val_s, raw=val_s))
                    scripts.append(c.st.run.read_text(c.st.local(val_s), 64 * 1024))
                elif ch == "f":
                    scripts.append(None)
                break
            if ch in "Er":
                ere = True
            elif ch in "nz":
                exact = False
            j += 1
        i += 1
    if not scripts and operands:
        first = operands.pop(0)
        scripts.append(first.value if first.known else None)
    return scripts, inplace, ere, exact, operands


@command("sed", "gsed")
def _sed(c: Cmd) -> tuple[Flow, ...]:
    scripts, inplace, ere, exact, files = _sed_parse(c)
    script: str | None = None
    if scripts and all(s is not None for s in scripts):
        script = "\n".join(s for s in scripts if s is not None)
    if script is not None and (_SED_EXEC.search(script) or _SED_SFLAG.search(script)):
        c.unknown("sed script runs commands or writes other files")
    if inplace is None:
        out: list[Flow] = []
        for f in files:
            c.read(f)
            out.extend(c.content(f, transform=True))
        return tuple(out) if files else c.passthrough(transform=True)
    edit: ConfigEdit | None = None
    if script is not None and exact:
        bre = ere_script_to_bre(script) if ere else script
        if bre is not None and (apply_sed(bre, "") is not None or not ere):
            edit = ConfigEdit(op="sed", script=bre)
    for f in files:
        loc = c.loc(f)
        if inplace:
            base = os.path.basename(f.value)
            backup = inplace.replace("*", base) if "*" in inplace else f.value + inplace
            if "*" in inplace and "/" not in inplace:
                backup = os.path.join(os.path.dirname(f.value), backup)
            copy_effect(
                c,
                loc,
                c.st.local(backup) if f.known else Location(raw=backup),
                recursive=False,
                note="sed backup",
            )
        c.emit(WRITE, loc, edit=edit)
    return ()
