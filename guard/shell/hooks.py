"""Commands that archivers and copiers run on the user's behalf: their hook options.

tar runs ``--checkpoint-action=exec=CMD``, ``--to-command``, ``-I``/``--use-compress-program``,
``--info-script``/``-F`` and ``--rsh-command``; zip runs ``-TT``; rsync runs ``-e``/``--rsh``
here and ``--rsync-path`` on the other side; ssh (and scp and sftp, which run ssh) runs
``ProxyCommand``, ``LocalCommand`` and ``KnownHostsCommand``, from ``-o`` or from the file
``-F`` names, and loads the libraries ``PKCS11Provider`` and ``SecurityKeyProvider`` name;
scp and sftp ``-S`` and sftp ``-D`` run a program in place of ssh.

:func:`run_hook` analyses a hook's command as shell text in a new shell, as ``bash -c`` is
(tar and ssh hand these commands to a shell), with the data the tool gives it on its standard
input: tar's ``--to-command`` gets each member's content, a compressor the archive stream, a
proxy or a remote shell the session. A hook whose text the guard cannot see (an unknown
variable, an option it cannot read, a config file it cannot open or that includes others) is
code the guard cannot read: an ``unseen`` effect.
"""

from __future__ import annotations

import re
import shlex

from guard.shell.core import Cmd
from guard.shell.reentry import run_text_in
from guard.shell.words import OPAQUE, Field, Flow, short

__all__ = ["env_options", "env_value", "hidden_options", "run_hook", "ssh_hooks", "ssh_runs"]

# ssh options whose value is a command ssh runs locally, through the user's shell
_SSH_COMMANDS = frozenset(("proxycommand", "localcommand", "knownhostscommand"))
# ssh options whose value is a library ssh loads into itself
_SSH_LIBRARIES = frozenset(("pkcs11provider", "securitykeyprovider"))
_SSH_RUNNING = _SSH_COMMANDS | _SSH_LIBRARIES | {"permitlocalcommand", "match"}
_SSH_OPTION = re.compile(r"\s*([A-Za-z][A-Za-z0-9]*)(?:\s*=\s*|\s+)(.*?)\s*", re.S)
_SSH_TOKEN = re.compile(r"%(.)")


def run_hook(
    c: Cmd, hook: Field | str | None, *, what: str, stdin: tuple[Flow, ...] = ()
) -> tuple[Flow, ...]:
    """Analyse the command a tool's hook option runs, in a new shell fed ``stdin``.

    Args:
        c: The tool's command.
        hook: The hook's command text (``None``: no hook).
        what: How to name the hook in notes (``tar --to-command``).
        stdin: The data the tool writes to the hook.

    Returns:
        What the hook writes to its standard output.
    """
    if hook is None:
        return ()
    field = Field(hook, raw=hook) if isinstance(hook, str) else hook
    if not field.known:
        c.unseen(f"{what} runs a command the guard cannot see ({short(field.raw)})")
        return (OPAQUE,)
    return run_text_in(c, field, what=what, stdin=stdin)


def env_value(c: Cmd, name: str) -> Field | None:
    """An exported variable the tool reads as options or a program (``TAR_OPTIONS``,
    ``RSYNC_RSH``); one set to a value the guard cannot see is code it cannot read."""
    var = c.st.vars.get(name)
    if var is None or name not in c.st.exported:
        return None
    if var.text is None:
        c.unseen(f"{c.name} reads ${name}, whose value the guard cannot see")
        return None
    return Field(var.text, raw="$" + name)


def env_options(c: Cmd, name: str) -> list[Field]:
    """The words of an exported variable a tool prepends to its options (``TAR_OPTIONS``)."""
    value = env_value(c, name)
    if value is None:
        return []
    try:
        words = shlex.split(value.value)
    except ValueError:
        c.unseen(f"{c.name} reads ${name}, which the guard cannot split into options")
        return []
    return [Field(w, raw=w) for w in words]


def hidden_options(c: Cmd, args: list[Field] | None = None) -> None:
    """An option word the guard cannot read (``--to-command=$X``, ``-I$X``) may be any option,
    a hook among them: code the guard cannot read (``args``: the words that may be options)."""
    for f in c.args if args is None else args:
        if not f.known and f.value.startswith("-"):
            c.unseen(f"{c.name}: an option the guard cannot see may run a command ({short(f.raw)})")


def ssh_runs(options: list[Field]) -> bool:
    """Whether any of ssh's ``-o`` options may make it run something (a cheap first look)."""
    for v in options:
        if not v.known:
            return True
        m = _SSH_OPTION.fullmatch(v.value)
        if m is not None and m.group(1).lower() in _SSH_RUNNING:
            return True
    return False


def ssh_hooks(
    c: Cmd,
    options: list[Field],
    config: Field | None,
    *,
    host: str = "host",
    port: str = "22",
    user: str = "user",
    session: tuple[Flow, ...] = (),
    library: Field | None = None,
) -> None:
    """The commands ssh's options make it run here: ``-o KEY=VALUE``, the ``-F`` file, ``-I``.

    Args:
        c: The ssh (or scp, sftp) command.
        options: The values of its ``-o`` options.
        config: The file ``-F`` names (``None``: ssh reads the user's own config, which the
            guard does not; only a ``PermitLocalCommand`` that may use it is reported).
        host: The host, for ``%h`` in a command.
        port: The port, for ``%p``.
        user: The remote user, for ``%r``.
        session: The data of the session: what a ``ProxyCommand`` carries.
        library: The value of ``-I`` (a PKCS#11 library ssh loads).
    """
    tokens = {"h": host, "n": host, "p": port, "r": user, "%": "%"}
    settings: list[tuple[str, str]] = []
    for v in options:
        if not v.known:
            c.unseen(f"ssh -o with an option the guard cannot see ({short(v.raw)})")
            continue
        m = _SSH_OPTION.fullmatch(v.value)
        if m is not None:
            settings.append((m.group(1).lower(), m.group(2)))
    from_file = _config(c, config) if config is not None else []
    if from_file is None:
        return
    settings.extend(from_file)
    if library is not None:
        settings.append(("pkcs11provider", library.value if library.known else "?"))
    local = any(k == "localcommand" for k, _ in settings)
    for key, value in settings:
        if key in _SSH_COMMANDS and value.lower() != "none":
            text = _SSH_TOKEN.sub(lambda m: tokens.get(m.group(1), "x"), value)
            stdin = session if key == "proxycommand" else ()
            run_hook(c, text, what=f"ssh {key}", stdin=stdin)
        elif key in _SSH_LIBRARIES and value.lower() != "none":
            c.unseen(f"ssh loads the library {short(value)} ({key})")
        elif key == "permitlocalcommand" and value.lower() == "yes" and not local:
            if config is None:
                c.unseen("ssh may run a LocalCommand from the user's ssh configuration")
        elif key == "match":
            _match_exec(c, value, tokens)


def _config(c: Cmd, config: Field) -> list[tuple[str, str]] | None:
    """The settings of an ssh config file (every ``Host`` block: any may apply)."""
    if config.known and config.value in ("/dev/null", "none"):
        return []
    if not config.known:
        c.unseen(f"ssh reads a config file the guard cannot see ({short(config.raw)})")
        return None
    c.read(config)
    text = c.st.run.read_text(c.loc(config))
    if text is None:
        c.unseen("ssh reads a config file the guard cannot read", c.loc(config))
        return None
    out: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        m = _SSH_OPTION.fullmatch(line)
        if m is None:
            continue
        key = m.group(1).lower()
        if key == "include":
            c.unseen("ssh config includes other files", c.loc(config))
            return None
        out.append((key, m.group(2)))
    return out


def _match_exec(c: Cmd, criteria: str, tokens: dict[str, str]) -> None:
    """``Match ... exec "CMD"``: ssh runs CMD to decide whether the block applies."""
    try:
        words = shlex.split(criteria)
    except ValueError:
        c.unseen(f"ssh Match line the guard cannot read ({short(criteria)})")
        return
    for k, word in enumerate(words[:-1]):
        if word.lower() in ("exec", "!exec"):
            text = _SSH_TOKEN.sub(lambda m: tokens.get(m.group(1), "x"), words[k + 1])
            run_hook(c, text, what="ssh Match exec")
