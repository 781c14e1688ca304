"""``echo`` and ``printf``: the text they print, computed as bash would, so that what a line
writes to a config or a score file is known before it runs.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from guard.shell.core import Cmd, command
from guard.shell.words import OPAQUE, Field, Flow, Var, ansi_c_decode

_ECHO_ESC = re.compile(
    r"\\(0[0-7]{0,3}|x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|.)", re.S
)


def _echo_escapes(s: str) -> tuple[str, bool]:
    """``echo -e`` / ``%b`` escapes; the flag is true when ``\\c`` cut the output."""
    cut = s.find("\\c")
    if cut >= 0:
        s = s[:cut]

    def sub(m: re.Match[str]) -> str:
        e = m.group(1)
        if e[0] == "0":
            return chr(int(e[1:] or "0", 8) & 0xFF)
        decoded, _ = ansi_c_decode("\\" + e)
        return decoded

    return _ECHO_ESC.sub(sub, s), cut >= 0


@command("echo")
def _echo(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    newline, escapes = True, False
    while args and args[0].known and re.fullmatch(r"-[neE]+", args[0].value):
        flags = args.pop(0).value
        newline = newline and "n" not in flags
        for ch in flags[1:]:
            if ch == "e":
                escapes = True
            elif ch == "E":
                escapes = False
    return _text_out(c, args, lambda vals: _echo_text(vals, newline, escapes))


def _echo_text(vals: list[str], newline: bool, escapes: bool) -> str:
    s = " ".join(vals)
    if escapes:
        s, cut = _echo_escapes(s)
        if cut:
            return s
    return s + ("\n" if newline else "")


def _text_out(
    c: Cmd, args: list[Field], render: Callable[[list[str]], str | None]
) -> tuple[Flow, ...]:
    """What echo and printf print: known text, or the data that went into their arguments."""
    obf = any(f.obfuscated for f in args)
    flows = tuple(fl.through(c.name) for f in args for fl in f.flows if fl.src is not None)
    if all(f.known for f in args):
        text = render([f.value for f in args])
        if text is not None:
            return (Flow(text=text, decoded=obf),)
    return (*flows, OPAQUE)


_PRINTF_SPEC = re.compile(r"%([-+ #0]*)(\d*)(?:\.(\d+))?([sbdiouxXcfgeE%])")


def _printf(fmt: str, args: list[str]) -> str | None:
    fmt, _ = _echo_escapes(fmt) if "\\" in fmt else (fmt, False)
    out: list[str] = []
    k = 0
    for _round in range(64):
        pos = 0
        used = False
        for m in _PRINTF_SPEC.finditer(fmt):
            out.append(fmt[pos : m.start()])
            pos = m.end()
            flags, width, prec, conv = m.groups()
            if conv == "%":
                out.append("%")
                continue
            used = True
            arg = args[k] if k < len(args) else ""
            k += 1
            if conv == "b":
                arg, _ = _echo_escapes(arg)
                conv = "s"
            if conv in "diouxXc":
                if conv == "c":
                    piece = arg[:1]
                else:
                    try:
                        num = int(arg or "0", 0)
                    except ValueError:
                        return None
                    piece = format(num, {"i": "d", "u": "d", "o": "o"}.get(conv, conv))
            elif conv in "fgeE":
                if prec and int(prec) > 64:
                    return None
                try:
                    piece = format(float(arg or "0"), "." + (prec or "6") + conv)
                except ValueError:
                    return None
            else:
                piece = arg[: int(prec)] if prec else arg
            if width:
                if int(width) > 4096:
                    return None
                piece = piece.ljust(int(width)) if "-" in flags else piece.rjust(int(width))
            out.append(piece)
        out.append(fmt[pos:])
        if not used or k >= len(args):
            break
    return "".join(out)


@command("printf")
def _printf_cmd(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    setting = len(args) >= 2 and args[0].known and args[0].value == "-v"
    target: str | None = None
    whole = True
    if setting:
        # `printf -v 'a[$(cmd)]'` evaluates the subscript: it may run code
        target = c.st.var_name(args[1].value if args[1].known else None, what="printf -v")
        whole = target == args[1].value  # not one element of an array
        args = args[2:]
    if args and args[0].known and args[0].value == "--":
        args = args[1:]
    if not args:
        return ()
    fmt = args[0]
    out = _text_out(c, args, lambda vals: _printf(vals[0], vals[1:]) if fmt.known else None)
    if setting:
        if target is not None:
            text = out[0].text if len(out) == 1 and whole else None
            c.st.set_var(
                target,
                Var(
                    text,
                    flows=tuple(f for f in out if f.src is not None),
                    obfuscated=any(f.decoded for f in out),
                ),
            )
        return ()
    return out
