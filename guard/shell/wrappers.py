"""Commands that run the command after them: sudo, env, nice, timeout, flock, strace and
other tracers, watch, trap... The command they wrap is analysed as if run directly, with what
the wrapper adds (an environment, a trace file, a repeat).
"""

from __future__ import annotations

import re
import shlex

from guard.shell.core import TABLE, Cmd, command, joined_script
from guard.shell.options import Opts, Spec, parse
from guard.shell.reentry import (
    run_stdin_script,
    run_text_in,
)
from guard.shell.words import OPAQUE, Field, Flow, Var, names, short
from guard.types import EffectKind, Location


def _run_rest(c: Cmd, rest: list[Field], extra: dict[str, Var] | None = None) -> tuple[Flow, ...]:
    if not rest:
        return (OPAQUE,)
    st = c.st
    if extra:
        st = st.fork()
        st.vars.update(extra)
        st.exported.update(extra)
    return st.dispatch(rest, c.stdin)


def _assignments(rest: list[Field]) -> tuple[dict[str, Var], list[Field]]:
    extra: dict[str, Var] = {}
    k = 0
    while (
        k < len(rest)
        and rest[k].known
        and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=.*", rest[k].value, re.S)
    ):
        name, _, val = rest[k].value.partition("=")
        extra[name] = Var(val)
        k += 1
    return extra, rest[k:]


@command("sudo doas pkexec")
def _sudo(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "ugCDhprtUTc",
            (
                "user group close-from chdir host prompt role type other-user command-timeout "
                "preserve-env"
            ),
            permute=False,
            optional="preserve-env",
        ),
    )
    extra, rest = _assignments(o.rest)
    if o.has("-e", "--edit"):
        for f in rest:
            c.emit(EffectKind.WRITE, c.loc(f))
        return ()
    if not rest and o.has("-s", "--shell", "-i", "--login"):
        return run_stdin_script(c, "shell", what="sudo shell")
    chdir = o.value("-D", "--chdir")
    if chdir is not None:
        sub = c.st.fork()
        sub.cwd = c.loc(chdir).path
        return sub.dispatch(rest, c.stdin) if rest else (OPAQUE,)
    return _run_rest(c, rest, extra)


@command("env")
def _env(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "uCSP",
            "unset chdir split-string block-signal default-signal ignore-signal",
            permute=False,
        ),
    )
    split = o.value("-S", "--split-string")
    rest = list(o.rest)
    if split is not None:
        if not split.known:
            c.unknown("env -S with a command the analyser cannot see")
            return (OPAQUE,)
        try:
            words = shlex.split(split.value)
        except ValueError:
            words = split.value.split()
        rest = [Field(w, raw=w) for w in words] + rest
    extra, rest = _assignments(rest)
    if o.has("-i", "--ignore-environment"):
        pass
    chdir = o.value("-C", "--chdir")
    if not rest:
        return (OPAQUE,)
    st = c.st.fork()
    if chdir is not None:
        st.cwd = c.st.loc(chdir).path
    st.vars.update(extra)
    st.exported.update(extra)
    return st.dispatch(rest, c.stdin)


_WRAPPERS: dict[str, Spec] = {
    "nohup": Spec.of(permute=False),
    "time": Spec.of("fo", "format output", permute=False),
    "nice": Spec.of("n", "adjustment", permute=False),
    "ionice": Spec.of("cnp", "class classdata pid", permute=False),
    "stdbuf": Spec.of("ioe", "input output error", permute=False),
    "unbuffer": Spec.of(permute=False),
    "chrt": Spec.of("T", "sched-runtime", permute=False),
    "taskset": Spec.of(permute=False),
    "caffeinate": Spec.of("t", permute=False),
    "torsocks": Spec.of(permute=False),
    "proxychains": Spec.of("f", permute=False),
    "proxychains4": Spec.of("f", permute=False),
    "faketime": Spec.of(permute=False),
    "catchsegv": Spec.of(permute=False),
    "strace": Spec.of("oepsSEIuaX", "output trace", permute=False),
    "ltrace": Spec.of("oepsSEu", "output", permute=False),
    "firejail": Spec.of(permute=False),
}


@command(*_WRAPPERS)
def _wrapper(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _WRAPPERS[c.name])
    rest = list(o.rest)
    if c.name == "nice" and rest and rest[0].known and rest[0].value.lstrip("-+").isdigit():
        rest = rest[1:]
    if c.name == "taskset" and rest:
        rest = rest[1:]
    if c.name == "chrt" and rest:
        rest = rest[1:]
    if c.name == "faketime" and rest:
        rest = rest[1:]
    if c.name in ("strace", "ltrace"):
        return _tracer(c, o, rest)
    return _run_rest(c, rest)


# What a traced command touches whose data its trace may show (the buffers of its reads and
# writes: ``strace -e read=all``, ``-s 1000000``, ltrace's string arguments).
_TRACED = frozenset((EffectKind.READ, EffectKind.COPY, EffectKind.MOVE, EffectKind.TRANSFER))


def _tracer(c: Cmd, o: Opts, rest: list[Field]) -> tuple[Flow, ...]:
    """``strace``/``ltrace``: the traced command runs, and the trace, written to the ``-o``
    file (``|CMD``/``!CMD``: piped to a shell command) or to standard error, may carry any
    data the command reads or writes: a flow from every file it reads, its input and its
    output."""
    seen: list[tuple[EffectKind, Location, bool]] = []
    run = c.st.run
    run.taps.append(seen)
    try:
        out = _run_rest(c, rest)
    finally:
        run.taps.remove(seen)
    touched = {(loc.raw, loc.path, loc.host): (loc, rec) for k, loc, rec in seen if k in _TRACED}
    trace = (
        *(Flow(src=loc, recursive=rec, exact=False, via=c.name) for loc, rec in touched.values()),
        *(fl.through(c.name, transform=True) for fl in (*c.stdin, *out) if fl.src is not None),
        OPAQUE,
    )
    outputs = o.values("-o", "--output")
    if not outputs:
        return (*out, *c.st.write_fd(2, trace))
    for f in outputs:
        if f.known and f.value[:1] in ("|", "!"):
            text = f.value[1:]
            run_text_in(c, Field(text, raw=text), what=f"{c.name} -o", stdin=trace, arg0="sh")
        elif o.has("--output-separately") or [n for n, _ in o.items].count("-f") > 1:
            # -ff: one file per process, named FILE.PID
            c.write_to(Location(raw=f"{f.raw}.<pid>", path=None), trace)
        else:
            c.write_to(f, trace)
    return out


# Wrappers whose first operand is not the command: setarch ARCH, prlimit/unshare/setpriv
# options then the command. Without a command, they start a shell (setarch, unshare) that
# reads standard input.
_RUNNERS: dict[str, Spec] = {
    "setarch": Spec.of(permute=False),
    "linux32": Spec.of(permute=False),
    "linux64": Spec.of(permute=False),
    "unshare": Spec.of(
        "RwSG",
        "root wd setuid setgid propagation setgroups map-user map-group map-users map-groups "
        "monotonic boottime load-interp",
        permute=False,
        optional="mount uts ipc net pid user cgroup time kill-child map-auto",
    ),
    "prlimit": Spec.of(
        "po",
        "pid output",
        permute=False,
        optional=(
            "core data fsize memlock rss nofile stack cpu nproc as locks sigpending msgqueue "
            "nice rtprio rttime"
        ),
    ),
    "setpriv": Spec.of(
        "",
        "ruid euid rgid egid reuid regid groups inh-caps ambient-caps bounding-set securebits "
        "pdeathsig selinux-label apparmor-profile landlock-access landlock-rule seccomp-filter",
        permute=False,
    ),
    "ssh-agent": Spec.of("aEPtO", permute=False),
    "dbus-run-session": Spec.of("", "config-file dbus-daemon", permute=False),
    "dbus-launch": Spec.of("", "config-file autolaunch", permute=False),
}


@command(*_RUNNERS)
def _runner(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _RUNNERS[c.name])
    rest = list(o.rest)
    if c.name == "setarch":
        rest = rest[1:]  # the architecture
        while rest and rest[0].known and rest[0].value.startswith("-"):
            rest = rest[1:]  # personality flags, which take no value
    for f in o.values("--dbus-daemon", "--config-file", "--load-interp"):
        c.unseen(f"{c.name} runs a program or service named in {short(f.raw)}", c.loc(f))
    if o.has("-R", "--root", "-w", "--wd"):
        c.unseen(
            f"{c.name} runs the command in another root or folder the analyser does not follow"
        )
    if c.name == "prlimit" and o.has("-p", "--pid"):
        return (OPAQUE,)
    if not rest:
        if c.name in ("setarch", "linux32", "linux64", "unshare"):
            return run_stdin_script(c, "shell", what=f"{c.name} shell")
        return (OPAQUE,)
    return _run_rest(c, rest)


@command("ip")
def _ip(c: Cmd) -> tuple[Flow, ...]:
    """``ip netns exec NS COMMAND`` and ``ip vrf exec VRF COMMAND`` run the command (ip takes
    any prefix of an object or verb); ``ip -batch FILE`` runs ip commands read from a file.
    The rest prints or changes network settings."""
    args = list(c.args)
    k = 0
    while k < len(args) and args[k].known and args[k].value.startswith("-"):
        flag = args[k].value.lstrip("-")
        if flag and "batch".startswith(flag):
            c.unseen(
                "ip -batch runs commands read from a file",
                c.loc(args[k + 1]) if k + 1 < len(args) else None,
            )
            return (OPAQUE,)
        # options with a value: -f FAMILY, -n NETNS, -rc FILE, -l N, -color WHEN
        k += 2 if flag in ("f", "family", "n", "netns", "rc", "rcvbuf", "l", "loops") else 1
    if k + 2 >= len(args):
        return (OPAQUE,)
    obj, verb = args[k], args[k + 1]
    if not (obj.known and verb.known):
        c.unseen("ip runs a subcommand the analyser cannot see")
        return (OPAQUE,)
    runs = (len(obj.value) >= 3 and "netns".startswith(obj.value)) or "vrf".startswith(obj.value)
    if runs and verb.value and "exec".startswith(verb.value):
        return _run_rest(c, args[k + 3 :])
    return (OPAQUE,)


# perf's subcommands that run a command, with their options that take a value.
_PERF_RUNS: dict[str, Spec] = {
    "stat": Spec.of(
        "eprtxoGCMIjD",
        "event pid repeat tid field-separator output cgroup cpu metrics interval-print delay "
        "post pre log-fd control topdown iostat",
        permute=False,
    ),
    "record": Spec.of(
        "epotCcFmGgrIDbjSkUW",
        "event pid output tid cpu count freq mmap-pages cgroup call-graph realtime delay "
        "branch-filter clockid affinity user-regs intr-regs aux-sample control switch-output "
        "max-size proc-map-timeout num-thread-synthesize threads",
        permute=False,
        optional="switch-output",
    ),
    "trace": Spec.of(
        "eoptuCFmG", "event output pid tid uid cpu pf mmap-pages cgroup expr", permute=False
    ),
}


# perf's subcommands that only read what an earlier run recorded or list what it knows.
_PERF_READS = names("list report annotate diff evlist version help buildid-list top")


@command("perf")
def _perf(c: Cmd) -> tuple[Flow, ...]:
    """``perf stat|record|trace [OPTIONS] COMMAND``: the command runs (``--pre``/``--post``
    run shell text too); reports and listings read; anything else runs code the analyser
    does not follow (``perf script -s`` runs a script)."""
    sub = c.args[0].value if c.args and c.args[0].known else None
    if sub in _PERF_READS:
        return (OPAQUE,)
    spec = _PERF_RUNS.get(sub or "")
    if spec is None:
        c.unseen(f"perf {short(sub or '?')} runs code the analyser does not follow")
        return TABLE["/unknown"](c)
    o = parse(c.args[1:], spec)
    for f in o.values("--pre", "--post"):
        run_text_in(c, f, what=f"perf {sub} --pre/--post", stdin=())
    for f in o.values("-o", "--output"):
        c.write_to(f, (OPAQUE,))
    return _run_rest(c, list(o.rest))


@command("timeout")
def _timeout(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("sk", "signal kill-after", permute=False))
    return _run_rest(c, list(o.rest[1:]))


@command("flock")
def _flock(c: Cmd) -> tuple[Flow, ...]:
    """``flock [OPTIONS] LOCK COMMAND...`` or ``flock [OPTIONS] LOCK -c TEXT`` (the ``-c``
    comes after the lock file); ``flock FD`` alone runs nothing."""
    o = parse(c.args, Spec.of("wEc", "timeout wait conflict-exit-code command", permute=False))
    cmd = o.value("-c", "--command")
    rest = list(o.rest[1:])
    if cmd is None and rest and rest[0].known and rest[0].value in ("-c", "--command"):
        cmd = rest[1] if len(rest) > 1 else None
    if cmd is not None:
        return run_text_in(c, cmd, what="flock -c", stdin=c.stdin)
    return _run_rest(c, rest)


@command("command builtin exec noglob nocorrect")
def _command(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    while args and args[0].known and args[0].value.startswith("-") and len(args[0].value) > 1:
        flag = args.pop(0).value
        if c.name == "command" and flag in ("-v", "-V"):
            return (OPAQUE,)
        if c.name == "exec" and flag == "-a" and args:
            args.pop(0)
    if not args:
        return ()
    return c.st.dispatch(args, c.stdin)


@command("watch")
def _watch(c: Cmd) -> tuple[Flow, ...]:
    c.unseen("watch runs its command again and again: what it runs later is not seen")
    o = parse(c.args, Spec.of("nd", "interval differences", permute=False), stop_at_operand=True)
    text, ph = joined_script(o.rest)
    return run_text_in(c, Field(text, raw=text, known=not ph), what="watch", stdin=c.stdin)


@command("trap")
def _trap(c: Cmd) -> tuple[Flow, ...]:
    args = [a for a in c.args if not (a.known and a.value in ("-p", "-l", "--"))]
    if args:
        return run_text_in(c, args[0], what="trap", stdin=(), same=True)
    return ()
