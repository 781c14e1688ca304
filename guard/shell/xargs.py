"""``xargs`` and ``parallel``: the command they run once per item, with the items read from
standard input or a file as its arguments.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from guard.shell.core import Cmd, command, joined_script
from guard.shell.options import Opts, Spec, parse
from guard.shell.record import MAX_LOOP
from guard.shell.reentry import (
    run_text_in,
)
from guard.shell.words import OPAQUE, Field, Flow


def _xargs_input(c: Cmd, infile: Field | None) -> tuple[Flow, ...]:
    """What xargs reads its arguments from: the ``-a`` file, else its standard input."""
    if infile is None:
        return c.stdin
    c.read(infile)
    return c.content(infile)


def _xargs_items(c: Cmd, sep: str | None, lines: bool, flows: tuple[Flow, ...]) -> list[Field]:
    items: list[Field] = []
    for fl in flows:
        text: str | None = None
        if fl.names and fl.src is not None:
            items.append(Field(fl.src.raw, raw="<find output>", loc=fl.src, recursive=True))
            continue
        if fl.text is not None:
            text = fl.text
        elif fl.src is not None and fl.exact:
            text = c.st.run.read_text(fl.src)
        if text is None:
            items.append(Field("<xargs input>", raw="<xargs input>", known=False, flows=(fl,)))
            continue
        if sep is not None:
            words = [w for w in text.split(sep) if w]
        elif lines:
            words = [w.strip() for w in text.splitlines() if w.strip()]
        else:
            try:
                words = shlex.split(text)
            except ValueError:
                words = text.split()
        items.extend(Field(w, raw=w) for w in words[: MAX_LOOP * 4])
    if not flows:
        items.append(Field("<xargs input>", raw="<xargs input>", known=False))
    return items


@command("xargs")
def _xargs(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "ILnPsdEaei",
            (
                "replace max-lines max-args max-procs max-chars delimiter eof arg-file "
                "process-slot-var"
            ),
            permute=False,
            optional="replace eof",
        ),
    )
    repl_f = o.value("-I", "--replace", "-i")
    repl = repl_f.value if repl_f is not None else ("{}" if o.has("-i", "--replace") else None)
    delim = o.value("-d", "--delimiter")
    sep = (
        "\0"
        if o.has("-0", "--null")
        else (delim.value if delim is not None and delim.known else None)
    )
    data = _xargs_input(c, o.value("-a", "--arg-file"))
    items = _xargs_items(c, sep, repl is not None or o.has("-L"), data)
    rest = list(o.rest) or [Field("echo", raw="echo")]
    # input of unknown length (`yes | xargs`), or more runs than the loop bound: a file the
    # command runs may change between runs
    per_run = 1 if repl is not None else _xargs_batch(o)
    runs = -(-len(items) // per_run) if per_run else 1
    st = c.st
    was = st.looping
    st.looping = was or runs > MAX_LOOP or any(not f.known for f in items)
    try:
        out = _xargs_run(c, rest, items, repl)
    finally:
        st.looping = was
    # The arguments are the data read: a command that prints them (printf, echo, one that
    # names them in errors) passes that content on, however it splits it.
    carried = (replace(fl, exact=False, text=None) for fl in data if fl.src and not fl.names)
    return (*out, *carried)


def _xargs_batch(o: Opts) -> int:
    """How many items one run of xargs takes (0: as many as fit on a command line)."""
    for f in (o.value("-n", "--max-args"), o.value("-L", "--max-lines")):
        if f is not None:
            return int(f.value) if f.known and f.value.isdigit() and int(f.value) > 0 else 1
    return 0


def _xargs_run(c: Cmd, rest: list[Field], items: list[Field], repl: str | None) -> tuple[Flow, ...]:
    out: list[Flow] = []
    if repl is None:
        return c.st.dispatch(rest + items[: MAX_LOOP * 4], ())
    for item in items[:MAX_LOOP]:
        argv: list[Field] = []
        for a in rest:
            if a.known and repl in a.value:
                if a.value == repl:
                    argv.append(item)
                elif item.known and item.loc is None:
                    v = a.value.replace(repl, item.value)
                    argv.append(Field(v, raw=a.raw))
                else:
                    argv.append(
                        Field(
                            a.value.replace(repl, item.raw),
                            raw=a.raw,
                            known=False,
                            flows=item.flows,
                        )
                    )
            else:
                argv.append(a)
        out.extend(c.st.dispatch(argv, ()))
    return tuple(out)


@command("parallel")
def _parallel(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    cut = next((k for k, f in enumerate(args) if f.known and f.value in (":::", "::::")), len(args))
    cmd = [f for f in args[:cut] if not (f.known and f.value.startswith("-"))]
    inputs = args[cut + 1 :]
    if not cmd:
        return (OPAQUE,)
    items = inputs or [Field("<parallel input>", raw="<parallel input>", known=False)]
    was = c.st.looping  # as for xargs: runs of unknown number may each see another file
    c.st.looping = was or len(items) > MAX_LOOP or any(not f.known for f in items)
    try:
        return _parallel_run(c, cmd, items)
    finally:
        c.st.looping = was


def _parallel_run(c: Cmd, cmd: list[Field], items: list[Field]) -> tuple[Flow, ...]:
    out: list[Flow] = []
    for item in items[:MAX_LOOP]:
        argv = [item if (a.known and a.value == "{}") else a for a in cmd]
        if not any(a.known and a.value == "{}" for a in cmd):
            argv = [*cmd, item]
        text, ph = joined_script(argv)
        out.extend(
            run_text_in(
                c, Field(text, raw=text, known=not ph, flows=item.flows), what="parallel", stdin=()
            )
        )
    return tuple(out)
