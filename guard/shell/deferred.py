"""Work the guard cannot see at decision time: jobs that outlive the call, and programs that run code
written in a language the analyser does not read.

A command that starts something in the background (``setsid``, ``screen -dm``, ``at``, ``crontab``,
``systemd-run``...) lets it run after the guard has decided and after the call has returned: by
then the files it reads may hold something else, and what it writes is never looked at. A command
that hands code to an editor, a debugger or a shell the analyser does not model (``vim -c``,
``gdb -ex``, ``fish -c``) runs code nobody read. Both are *unseen* (see :meth:`Cmd.unseen`): the
engine confirms them and raises an enforcement-gap alert. Where the command text is at hand (the
job ``at`` or ``screen`` will run), it is analysed too, so that a copy of a peer's weights inside it
is denied outright rather than only confirmed.
"""

from __future__ import annotations

from guard.shell.core import TABLE, Cmd, command, joined_script
from guard.shell.options import Spec, parse
from guard.shell.reentry import run_stdin_script, run_text_in
from guard.shell.words import OPAQUE, Field, Flow, names

__all__: list[str] = []

# Programs that run code given to them (arguments, scripts, their own startup files) in a
# language the analyser does not read.
_CODE_RUNNERS = names(
    "vim vi nvim ex view vimdiff rvim gvim evim emacs emacsclient gdb lldb expect "
    "csh tcsh fish nu xonsh elvish pwsh powershell ion rc es osascript run-parts "
    "sudoedit"
)


_SYSTEMD_RUN = Spec.of(
    "pEMuH",
    "property setenv unit machine working-directory host description slice uid gid",
    permute=False,
)


_EDITORS = names("vim vi nvim view vimdiff rvim gvim evim emacs emacsclient")
_INERT_EDITOR_FLAGS = frozenset(("-R", "-n", "-N", "--nofork", "--no-splash", "-nw"))


def _later(c: Cmd, how: str) -> None:
    c.unseen(f"{c.name} {how}: what it does after the call returns is not seen")


def _rest(c: Cmd, args: list[Field]) -> tuple[Flow, ...]:
    """Analyse the command a deferring program will run (as if it ran now)."""
    if not args:
        return ()
    return c.st.fork().dispatch(args, ())


def _text(c: Cmd, args: list[Field], what: str) -> tuple[Flow, ...]:
    """Analyse a command given as words to be joined into shell text."""
    if not args:
        return ()
    text, ph = joined_script(args)
    return run_text_in(c, Field(text, raw=text, known=not ph), what=what, stdin=())


@command(*_CODE_RUNNERS)
def _code_runner(c: Cmd) -> tuple[Flow, ...]:
    if c.name not in _EDITORS or _editor_runs_code(c):
        c.unseen(f"{c.name} runs code the analyser does not read")
    # The paths it is given are still places it may change: judged as an unknown program's.
    TABLE["/unknown"](c)
    return (OPAQUE,)


def _editor_runs_code(c: Cmd) -> bool:
    """An editor runs commands when given options (``-c``, ``+cmd``, ``-S``, ``--eval``, a
    script mode) or a script on its input; opening files to edit is judged on the files."""
    if any(fl.src is not None or fl.text is not None for fl in c.stdin):
        return True
    for a in c.args:
        if not a.known:
            return True
        v = a.value
        if v == "--":
            break
        if v.startswith("+") or (v.startswith("-") and v not in _INERT_EDITOR_FLAGS):
            return True
    return False


@command("setsid")
def _setsid(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    wait = False
    while args and args[0].known and args[0].value.startswith("-"):
        flag = args.pop(0).value
        wait = wait or flag in ("-w", "--wait")
    if not wait:
        _later(c, "starts a process in a new session that the call does not wait for")
    return _rest(c, args)


@command("disown")
def _disown(c: Cmd) -> tuple[Flow, ...]:
    _later(c, "lets background jobs outlive the call")
    return ()


@command("coproc")
def _coproc(c: Cmd) -> tuple[Flow, ...]:
    _later(c, "runs a command alongside the shell")
    return _rest(c, list(c.args))


@command("at batch")
def _at(c: Cmd) -> tuple[Flow, ...]:
    _later(c, "schedules commands to run later")
    if any(a.known and a.value in ("-l", "-r", "-d", "-c") for a in c.args):
        return (OPAQUE,)  # list, remove or show jobs
    return run_stdin_script(c, "shell", what=f"{c.name} job")


@command("crontab")
def _crontab(c: Cmd) -> tuple[Flow, ...]:
    if any(a.known and a.value in ("-l", "-r") for a in c.args) and len(c.args) <= 2:
        return (OPAQUE,)
    _later(c, "installs commands that run on a schedule")
    return ()


@command("screen")
def _screen(c: Cmd) -> tuple[Flow, ...]:
    args = list(c.args)
    detached = False
    while args and args[0].known and args[0].value.startswith("-"):
        flag = args.pop(0).value
        if "X" in flag:
            _later(c, "sends commands to a running session")
            return ()
        if (flag == "-Logfile" or flag[-1] in "SclpTest") and args:
            args.pop(0)  # the option's value
        detached = detached or "d" in flag.lstrip("-")
    if detached:
        _later(c, "starts a detached session")
    return _rest(c, args)


@command("tmux")
def _tmux(c: Cmd) -> tuple[Flow, ...]:
    words = [a for a in c.args if a.known]
    sub = next((a.value for a in words if not a.value.startswith("-")), "")
    if sub in ("ls", "list-sessions", "list-windows", "list-panes", "has-session", "kill-server"):
        return (OPAQUE,)
    _later(c, "runs commands in a terminal session that outlives the call")
    cmd = c.args[-1:] if sub in ("new", "new-session", "new-window", "neww", "send-keys") else []
    return _text(c, cmd, what="tmux command")


@command("systemd-run")
def _systemd_run(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _SYSTEMD_RUN)
    if not o.has("--wait", "-P", "--pipe", "-t", "--pty", "--scope"):
        _later(c, "runs a command as a service the call does not wait for")
    return _rest(c, list(o.rest))


@command("daemonize start-stop-daemon")
def _daemon(c: Cmd) -> tuple[Flow, ...]:
    _later(c, "runs a command as a daemon")
    return (OPAQUE,)


@command("systemctl service")
def _systemctl(c: Cmd) -> tuple[Flow, ...]:
    verbs = {a.value for a in c.args if a.known}
    if verbs & {"start", "restart", "reload", "try-restart", "reload-or-restart", "enable"}:
        c.unseen(f"{c.name} starts a service whose code lives in unit files and scripts")
    return (OPAQUE,)
