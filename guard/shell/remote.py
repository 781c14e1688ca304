"""Commands that move data between hosts: ssh, scp, rsync, sftp, curl, wget, netcat and kin.

``HOST:PATH`` on a host the guard sees resolves below that host's folder (``HostMap.remote``), so a
copy between two visible hosts is an ordinary COPY whose Locations name both hosts. ``ssh HOST CMD``
runs CMD in a new shell whose working directory and home are the host's home, with the data of the
local pipeline on its standard input. A host the guard cannot see gets the data as a TRANSFER (or a
COPY to an invisible Location for scp-like tools) and nothing that runs there can touch files the
guard protects.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Callable
from urllib.parse import urlsplit

from guard.shell.attributes import mode_edit
from guard.shell.common import (
    META,
    arg_flows,
    copy_effect,
    dest_for,
    invisible,
    send,
    split_remote,
)
from guard.shell.core import Cmd, State, command, joined_script
from guard.shell.filters import Drop, RsyncRules, kept
from guard.shell.hooks import env_value, hidden_options, run_hook, ssh_hooks, ssh_runs
from guard.shell.options import Opts, Spec, parse
from guard.shell.record import MAX_LOOP
from guard.shell.reentry import run_stdin_script
from guard.shell.words import OPAQUE, Field, Flow, short
from guard.types import EffectKind, Location

__all__: list[str] = []


# ---------------------------------------------------------------------- ssh

_SSH_SPEC = Spec.of("BbcDEeFIiJLlmOoPpQRSWw", permute=False)


def _host_name(value: str) -> str:
    if value.startswith("ssh://"):
        value = value[6:].split("/", 1)[0]
        value = value.rsplit("@", 1)[-1]
        return value.rsplit(":", 1)[0] if value.count(":") == 1 else value
    return value


@command("ssh autossh mosh")
def _ssh(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _SSH_SPEC, stop_at_operand=True)
    if c.name == "autossh":
        o = parse(
            [f for f in c.args if not (f.known and f.value.startswith("-M"))],
            _SSH_SPEC,
            stop_at_operand=True,
        )
    host_f = o.rest[0] if o.rest else None
    words = list(o.rest[1:])
    session = () if o.has("-n", "-f", "-N") else c.stdin
    _ssh_options(c, o, lambda: host_f, port="-p", session=lambda: session + arg_flows(c, words))
    if c.name == "mosh":
        run_hook(c, o.value("--ssh"), what="mosh --ssh", stdin=session)
    if host_f is None:
        return ()
    for v in o.values("-o"):
        if v.known and v.value.lower().startswith("remotecommand="):
            words = [Field(v.value.split("=", 1)[1], raw=v.raw), *words]
    stdin = () if o.has("-n", "-f", "-N") else tuple(fl.through("ssh") for fl in c.stdin)
    if not host_f.known:
        c.unknown(f"ssh to a host the analyser cannot see ({short(host_f.raw)})")
        send(c, c.stdin + arg_flows(c, words), invisible(host_f.raw, None), via="ssh")
        return (OPAQUE,)
    host = _host_name(host_f.value)
    st = c.st
    info = st.run.hosts.get(host)
    if info is None:
        name = host.rsplit("@", 1)[-1]
        send(c, stdin, invisible(f"{host}:<stdin>", name), via=None)
        send(c, arg_flows(c, words), invisible(f"{host}:<command line>", name))
        return (OPAQUE,)
    name = host.rsplit("@", 1)[-1]
    if not words:
        if not stdin:
            return ()

        def run(text: str) -> tuple[Flow, ...]:
            sub = st.new_shell(cwd=info.home, home=info.home, host=name, stdin=(), pos=[])
            return sub.run_text(text, what=f"ssh {name} script") if sub is not None else (OPAQUE,)

        return run_stdin_script(
            Cmd(st, "ssh", [], stdin, c.via), "shell", what=f"ssh {name}", run=run
        )
    text, ph = joined_script(words)
    if any(w.obfuscated for w in words):
        c.unknown("ssh command text was decoded (obfuscation)")
    sub = st.new_shell(cwd=info.home, home=info.home, host=name, stdin=stdin, variables=ph, pos=[])
    if sub is None:
        return (OPAQUE,)
    out = sub.run_text(text, what=f"ssh {name} command")
    return tuple(fl.through("ssh") for fl in out)


def _ssh_options(
    c: Cmd,
    o: Opts,
    target: Callable[[], Field | None],
    *,
    port: str,
    session: Callable[[], tuple[Flow, ...]] = tuple,
) -> None:
    """The commands that ssh's options make it run here (scp and sftp pass them to ssh);
    ``target`` gives the word that names the host, ``session`` the data a ``ProxyCommand``
    carries (both asked only when an option needs them)."""
    if c.name in ("ssh", "autossh", "mosh"):
        # ssh's own options end at the host (a word the guard cannot read that starts with
        # a dash is no host); scp and sftp take options anywhere
        hidden_options(c, list(c.args)[: len(c.args) - len(o.rest)] + o.rest[:1])
    else:
        hidden_options(c)
    # the program ssh runs to ask for a passphrase
    run_hook(c, env_value(c, "SSH_ASKPASS"), what="ssh $SSH_ASKPASS")
    given = {g for g, _ in o.items}  # short options: no prefixes to match
    options = o.values("-o") if "-o" in given else []
    config = o.value("-F") if "-F" in given else None
    library = o.value("-I") if "-I" in given and c.name in ("ssh", "autossh") else None
    if config is None and library is None and not ssh_runs(options):
        return
    host_f = target()
    host = "host"
    if host_f is not None and host_f.known:
        rem = split_remote(host_f.value)
        host = _host_name(rem[0] if rem is not None else host_f.value).rsplit("@", 1)[-1]
    port_f = o.value(port)
    user_f = o.value("-l")
    ssh_hooks(
        c,
        options,
        config,
        host=host,
        port=port_f.value if port_f is not None and port_f.known else "22",
        user=user_f.value if user_f is not None and user_f.known else "user",
        session=session(),
        library=library,
    )


def _remote_hook(
    c: Cmd, hook: Field | None, hosts: list[str], *, what: str, stdin: tuple[Flow, ...] = ()
) -> None:
    """A command the remote side of a transfer runs (``rsync --rsync-path``, ``sftp -s``):
    analysed on each remote host the guard sees (where it can reach protected files), here
    when the transfer names no remote host."""
    if hook is None:
        return
    if not hosts:
        run_hook(c, hook, what=what, stdin=stdin)
        return
    st = c.st
    for name in dict.fromkeys(hosts):
        info = st.run.hosts.get(name)
        if info is None:
            continue  # it runs where the guard protects nothing
        if not hook.known:
            c.unseen(f"{what} runs a command the guard cannot see on {name}")
            continue
        sub = st.new_shell(cwd=info.home, home=info.home, host=name, stdin=stdin, pos=[])
        if sub is not None:
            sub.run_text(hook.value, what=f"{what} on {name}")


def _local_flows(c: Cmd, fields: list[Field]) -> tuple[Flow, ...]:
    """The content of the local files among ``fields``: what a copier sends."""
    out: list[Flow] = []
    for f in fields:
        if f.known and f.loc is None and not f.pipe and split_remote(f.value) is not None:
            continue
        loc = c.loc(f)
        out.append(Flow(src=loc, recursive=_is_dir(c, loc) or loc.path is None, exact=False))
    return tuple(out)


# ---------------------------------------------------------------- scp, rsync


def _locations(c: Cmd, f: Field, *, rsync: bool = False) -> list[Location]:
    if f.loc is not None:
        return [f.loc]
    if f.pipe:
        return [fl.src for fl in f.flows if fl.src is not None] or [c.loc(f)]
    if not f.known:
        return [c.loc(f)]
    v = f.value
    if rsync and (v.startswith("rsync://") or "::" in v.split("/", 1)[0]):
        host = (
            urlsplit(v).hostname
            if v.startswith("rsync://")
            else v.split("::", 1)[0].rsplit("@", 1)[-1]
        )
        return [invisible(v, host)]
    rem = split_remote(v)
    if rem is not None:
        return c.st.remote(rem[0], rem[1])
    return [c.loc(f)]


def _is_dir(c: Cmd, loc: Location) -> bool:
    return loc.path is not None and loc.visible and c.st.run.isdir(loc.path)


def _below(c: Cmd, d: Location, rel: str) -> Location:
    """The place ``rel`` lands below the destination ``d`` of a copy."""
    raw = d.raw.rstrip("/") + "/" + rel
    if d.path is None:
        return Location(raw=raw, path=None, host=d.host, visible=d.visible)
    return c.st.run.at(os.path.join(d.path, rel), raw, d.visible)


def _rsync_name(f: Field, loc: Location) -> tuple[str | None, bool]:
    """rsync's name for a source at the root of the transfer, and whether the source itself is
    matched: ``dir/`` (and ``.``) stand for their content, so names start below them."""
    if f.loc is not None or not f.known:
        return None, False
    v = f.value
    rem = split_remote(v)
    if rem is not None:
        v = rem[1] or "."
    if v.endswith(("/", "/.")) or v in (".", ""):
        return "", False
    base = os.path.basename(v)
    if base == ".." or loc.path is None:
        return None, False
    return base, True


def _copy_all(
    c: Cmd,
    srcs: list[Field],
    dst: Field,
    *,
    recursive: bool,
    rsync: bool = False,
    remove_source: bool = False,
    delete_extra: bool = False,
    drop: Drop | None = None,
) -> None:
    dlocs = _locations(c, dst, rsync=rsync)
    dloc = dlocs[0]
    locs: list[tuple[Location, bool, bool, Field]] = []
    for f in srcs:
        # a trailing slash (rsync) or a find placeholder stands for what is inside the folder
        contents = (rsync and f.known and f.value.endswith("/")) or f.loc is not None
        for loc in _locations(c, f, rsync=rsync):
            locs.append((loc, contents, f.recursive, f))
    many = len(locs) > 1
    for loc, contents, whole, f in locs:
        rec = whole or (recursive and (_is_dir(c, loc) or loc.path is None or not loc.visible))
        if contents or (
            rsync and not many and not dst.value.endswith("/") and not _is_dir(c, dloc)
        ):
            d = dloc
        else:
            d = dest_for(c.st, loc, dloc, dst.value if dst.known else "", into=many)
        parts = None
        if drop is not None and (rec or not _is_dir(c, loc)):
            name, check_root = _rsync_name(f, loc)
            parts = kept(c.st.run, loc, name, drop, check_root=check_root)
        for ploc, rel, prec in parts if parts is not None else [(loc, "", rec)]:
            copy_effect(c, ploc, _below(c, d, rel) if rel else d, recursive=prec)
            if remove_source:
                c.emit(EffectKind.DELETE, ploc, recursive=prec, note="rsync --remove-source-files")
        if delete_extra:
            c.emit(
                EffectKind.DELETE,
                d,
                recursive=True,
                certain=False,
                note="rsync --delete removes files at the destination that the source lacks",
            )


_SCP_SPEC = Spec.of("cDFiJlmoPSX")


@command("scp")
def _scp(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _SCP_SPEC)
    ops = list(o.operands)
    _ssh_options(
        c,
        o,
        lambda: next((f for f in ops if f.known and split_remote(f.value) is not None), None),
        port="-P",
        session=lambda: _local_flows(c, ops[:-1]),
    )
    for given, prog in o.items:
        if given in ("-S", "-D"):  # a program in place of ssh, a local sftp server program
            run_hook(c, prog, what=f"scp {given}", stdin=_local_flows(c, ops[:-1]))
    if len(ops) < 2:
        for f in ops:
            c.unknown("scp with a single operand", c.loc(f))
        return ()
    _copy_all(c, ops[:-1], ops[-1], recursive=o.has("-r"))
    return ()


_RSYNC_LONG = [
    "rsh",
    "rsync-path",
    "filter",
    "exclude",
    "include",
    "exclude-from",
    "include-from",
    "files-from",
    "partial-dir",
    "backup-dir",
    "suffix",
    "log-file",
    "log-file-format",
    "password-file",
    "port",
    "timeout",
    "contimeout",
    "chmod",
    "chown",
    "usermap",
    "groupmap",
    "temp-dir",
    "compare-dest",
    "copy-dest",
    "link-dest",
    "out-format",
    "bwlimit",
    "max-size",
    "min-size",
    "max-delete",
    "block-size",
    "skip-compress",
    "compress-level",
    "compress-choice",
    "checksum-choice",
    "modify-window",
    "iconv",
    "sockopts",
    "address",
    "write-batch",
    "only-write-batch",
    "read-batch",
    "protocol",
    "outbuf",
    "info",
    "debug",
    "stop-after",
    "stop-at",
    "remote-option",
    "early-input",
    "config",
    "dparam",
]
_RSYNC_SPEC = Spec.of("eBfMT", _RSYNC_LONG)


def _rsync_filter(c: Cmd, o: Opts) -> Drop | None:
    """rsync's include/exclude/filter rules in command-line order; ``None`` when there are none
    or one cannot be read (rules from merge files, an unreadable list, an unknown word)."""
    rules = RsyncRules()
    if any(not f.known for f in c.args):
        rules.known = False
    for given, value in o.items:
        if given in ("-F", "-C", "--cvs-exclude", "-R", "--relative", "--files-from"):
            rules.known = False  # per-folder rule files, or names that are not the walk's
        elif given not in _RSYNC_FILTERS:
            continue
        elif value is None or not value.known:
            rules.known = False
        elif given in ("--exclude", "--include"):
            rules.add_exclude(value.value, include=given == "--include")
        elif given in ("--exclude-from", "--include-from"):
            text = None
            if value.value != "-":  # the list on standard input: not read here
                c.read(value)
                text = c.st.run.read_text(c.loc(value))
            if text is None:
                rules.known = False
            else:
                rules.add_lines(text, include=given == "--include-from")
        else:
            rules.add_filter(value.value)
    return rules.drop()


_RSYNC_FILTERS = frozenset(
    ("--exclude", "--include", "--exclude-from", "--include-from", "--filter", "-f")
)


def _rsync_hooks(c: Cmd, o: Opts, ops: list[Field]) -> None:
    """rsync's remote shell (``-e``), run here with the transfer on its standard input, and
    ``--rsync-path``, run by that shell on the other side: analysed there when the guard sees
    that host, here when the copy is local."""
    hidden_options(c)
    rsh = o.value("-e", "--rsh") or env_value(c, "RSYNC_RSH")
    path = o.value("--rsync-path")
    if rsh is None and path is None:
        return
    sent = _local_flows(c, ops[:-1])
    run_hook(c, rsh, what="rsync -e", stdin=sent)
    hosts = [
        rem[0].rsplit("@", 1)[-1]
        for f in ops
        if f.known and "::" not in f.value and not f.value.startswith("rsync://")
        for rem in (split_remote(f.value),)
        if rem is not None
    ]
    _remote_hook(c, path, hosts, what="rsync --rsync-path", stdin=sent)


@command("rsync")
def _rsync(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, _RSYNC_SPEC)
    ops = list(o.operands)
    _rsync_hooks(c, o, ops)
    if o.has("-n", "--dry-run") or len(ops) < 2:
        for f in ops:
            for loc in _locations(c, f, rsync=True):
                c.emit(EffectKind.LIST, loc, recursive=True)
        return (OPAQUE,)
    recursive = o.has("-a", "-r", "--archive", "--recursive", "-d", "--dirs")
    files_from = o.value("--files-from")
    srcs = ops[:-1]
    if files_from is not None:
        c.read(files_from)
        text = c.st.run.read_text(c.loc(files_from))
        base = srcs[0] if srcs else Field(".", raw=".")
        names = [ln.strip() for ln in (text or "").splitlines() if ln.strip()][: MAX_LOOP * 8]
        if text is None:
            srcs = [Field(f"<files listed in {files_from.raw}>", raw=files_from.raw, known=False)]
        elif base.known:
            srcs = [Field(base.value.rstrip("/") + "/" + n, raw=n) for n in names]
    _copy_all(
        c,
        srcs,
        ops[-1],
        recursive=recursive,
        rsync=True,
        remove_source=o.has("--remove-source-files", "--remove-sent-files"),
        delete_extra=o.has(
            "--delete",
            "--del",
            "--delete-before",
            "--delete-during",
            "--delete-delay",
            "--delete-after",
            "--delete-excluded",
            "--delete-missing-args",
        ),
        drop=_rsync_filter(c, o),
    )
    return (OPAQUE,)


# -------------------------------------------------------------------- sftp


class _Sftp:
    def __init__(self, c: Cmd, host: str, rpath: str) -> None:
        self.c = c
        self.host = host
        self.rcwd = rpath
        self.local_st: State = c.st.fork()
        self.visible = c.st.run.hosts.get(host) is not None

    def rjoin(self, p: str) -> str:
        if p.startswith(("/", "~")) or not self.rcwd:
            return p
        return self.rcwd.rstrip("/") + "/" + p

    def rlocs(self, p: str) -> list[Location]:
        return self.c.st.remote(self.host, self.rjoin(p))

    def llocs(self, p: str) -> list[Location]:
        field_list = [Field(p, raw=p)]
        st = self.local_st
        if set(p) & set("*?["):
            import glob

            base = st.cwd or "/"
            hits = (
                sorted(glob.glob(p, root_dir=base))[:1000]
                if not p.startswith("/")
                else sorted(glob.glob(p))[:1000]
            )
            field_list = [Field(h, raw=h) for h in hits] or field_list
        return [st.loc(f) for f in field_list]

    def line(self, words: list[str]) -> None:
        c = self.c
        if not words:
            return
        cmd = words[0].lstrip("-@")
        flags = [w for w in words[1:] if w.startswith("-") and len(w) > 1]
        args = [w for w in words[1:] if not (w.startswith("-") and len(w) > 1)]
        rec = any("r" in f or "R" in f for f in flags)
        if cmd in ("put", "mput", "reput"):
            if not args:
                return
            for src in self.llocs(args[0]):
                if len(args) > 1:
                    dst = self.rlocs(args[1])[0]
                    dst = dest_for(c.st, src, dst, args[1], into=cmd == "mput")
                else:
                    base = os.path.basename((src.path or src.raw).rstrip("/"))
                    dst = self.rlocs(base)[0]
                copy_effect(
                    c, src, dst, recursive=rec and (_is_dir(c, src) or src.path is None), via="sftp"
                )
        elif cmd in ("get", "mget", "reget"):
            if not args:
                return
            for src in self.rlocs(args[0]):
                base = os.path.basename((src.path or args[0]).rstrip("/"))
                if len(args) > 1:
                    dst = self.local_st.local(args[1])
                    dst = dest_for(c.st, src, dst, args[1])
                else:
                    dst = self.local_st.local(base)
                copy_effect(c, src, dst, recursive=rec, via="sftp")
        elif cmd in ("rm", "rmdir", "del", "delete"):
            for a in args:
                for loc in self.rlocs(a):
                    c.emit(EffectKind.DELETE, loc, via="sftp", recursive=cmd == "rmdir")
        elif cmd == "rename" and len(args) >= 2:
            for loc in self.rlocs(args[0]):
                copy_effect(
                    c,
                    loc,
                    self.rlocs(args[1])[0],
                    recursive=_is_dir(c, loc),
                    kind=EffectKind.MOVE,
                    via="sftp",
                )
        elif cmd in ("ln", "symlink") and len(args) >= 2:
            dst = self.rlocs(args[1])[0]
            if "-s" in flags or cmd == "symlink":
                c.emit(EffectKind.WRITE, dst, via="sftp", note="symbolic link")
            else:
                for loc in self.rlocs(args[0]):
                    copy_effect(c, loc, dst, recursive=False, via="sftp", note="hard link")
        elif cmd in ("chmod", "chown", "chgrp") and len(args) >= 2:
            for loc in self.rlocs(args[1]):
                # sftp's chmod takes an octal mode: one that takes read access away makes
                # a config unreadable
                edit = mode_edit(c, loc, args[0], recursive=False) if cmd == "chmod" else META
                c.emit(EffectKind.WRITE, loc, edit=edit, via="sftp")
        elif cmd == "cd" and args:
            self.rcwd = self.rjoin(args[0])
        elif cmd == "lcd" and args:
            self.local_st.cwd = self.local_st.local(args[0]).path
        elif cmd.startswith("!") or words[0].startswith("!"):
            text = " ".join(words)[1:]
            sub = self.local_st.fork()
            sub.run_nested_text(text, what="sftp !command")


def _sftp_batch(c: Cmd, sftp: _Sftp, text: str) -> None:
    for raw_line in text.splitlines()[:1000]:
        line = raw_line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("!"):
            sftp.line(["!" + line[1:]])
            continue
        try:
            words = shlex.split(line)
        except ValueError:
            words = line.split()
        sftp.line(words)


@command("sftp")
def _sftp(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("BbcDFiJloPRSsX"))
    _ssh_options(c, o, lambda: o.operands[0] if o.operands else None, port="-P")
    run_hook(c, o.value("-S"), what="sftp -S")
    # -D runs a local program as the server, in place of ssh and the remote sftp-server
    run_hook(c, o.value("-D"), what="sftp -D")
    server = o.value("-s")  # a subsystem name, or (with a slash) a program the remote runs
    if server is not None and (not server.known or "/" in server.value):
        hosts: list[str] = []
        if o.operands and o.operands[0].known:
            first = o.operands[0].value
            rem = split_remote(first)
            hosts.append((rem[0] if rem is not None else first).rsplit("@", 1)[-1])
        _remote_hook(c, server, hosts, what="sftp -s")
    if not o.operands or not o.operands[0].known:
        c.unknown("sftp to a host the analyser cannot see")
        return (OPAQUE,)
    target = o.operands[0].value
    rem = split_remote(target)
    host, rpath = rem if rem is not None else (target, "")
    host = host.rsplit("@", 1)[-1]
    sftp = _Sftp(c, host, rpath)
    batch = o.value("-b")
    texts: list[str] = []
    if batch is not None and not (batch.known and batch.value == "-"):
        c.read(batch)
        text = c.st.run.read_text(c.loc(batch))
        if text is None:
            c.unknown("sftp batch file cannot be read", c.loc(batch))
            return (OPAQUE,)
        texts.append(text)
    else:
        for fl in c.stdin:
            if fl.text is not None:
                texts.append(fl.text)
            elif fl.src is not None and fl.exact:
                text = c.st.run.read_text(fl.src)
                if text is None:
                    c.unknown("sftp batch cannot be read", fl.src)
                else:
                    texts.append(text)
            else:
                c.unknown("sftp batch of unknown content")
        if not c.stdin:
            c.unknown(f"interactive sftp session to {host} cannot be analysed")
    if rem is not None and rpath and not texts:
        # `sftp host:file [local]` downloads the file
        dst = (
            c.st.local(o.operands[1].value)
            if len(o.operands) > 1 and o.operands[1].known
            else c.st.local(".")
        )
        for src in c.st.remote(host, rpath):
            copy_effect(c, src, dest_for(c.st, src, dst, "."), recursive=False, via="sftp")
    for text in texts:
        _sftp_batch(c, sftp, text)
    return (OPAQUE,)


# ------------------------------------------------------------- curl, wget


# ---------------------------------------------------------- raw sockets


# ------------------------------------------------------------ cloud copies
