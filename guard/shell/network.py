"""Commands that send or fetch over the network: curl and wget (with their config files),
netcat and socat, ftp clients, cloud storage copies, container copies and mail. What they
send to a host the guard does not map is a transfer to an invisible place.
"""

from __future__ import annotations

import os
import re
import shlex
from urllib.parse import urlsplit

from guard.shell.common import (
    TRANSFER,
    arg_flows,
    copy_effect,
    dest_for,
    invisible,
    send,
    split_remote,
)
from guard.shell.core import TABLE, Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.reentry import file_text
from guard.shell.words import OPAQUE, Field, Flow, names
from guard.types import EffectKind, Location


def _url(value: str) -> tuple[str, str | None]:
    """A URL's scheme and host (``example.com`` for ``example.com/x``)."""
    v = value if "://" in value else "http://" + value
    try:
        parts = urlsplit(v)
        return parts.scheme.lower(), parts.hostname
    except ValueError:
        return "", None


def _url_dest(c: Cmd, url: str) -> Location:
    scheme, host = _url(url)
    if scheme == "file":
        return c.st.local(urlsplit(url).path)
    if scheme in ("scp", "sftp") and host is not None and c.st.run.hosts.get(host) is not None:
        path = urlsplit(url).path
        return c.st.remote(host, path[1:] if path.startswith("/~/") else path)[0]
    return invisible(url, host)


_CURL_SPEC = Spec.of(
    "AbcCdDeEFHKmoPQrTtuUwxXyYz",
    (
        "data data-ascii data-binary data-raw data-urlencode form form-string upload-file "
        "output url header request user user-agent referer cookie cookie-jar config max-time "
        "connect-timeout proxy resolve connect-to cacert cert key output-dir retry range "
        "write-out json variable expect100-timeout retry-delay retry-max-time limit-rate "
        "max-filesize interface dns-servers oauth2-bearer proxy-user aws-sigv4 mail-from "
        "mail-rcpt ftp-port quote trace trace-ascii stderr dump-header netrc-file unix-socket "
        "abstract-unix-socket ciphers capath pinnedpubkey hostpubmd5 hostpubsha256 "
        "keepalive-time local-port socks5 socks5-hostname preproxy noproxy time-cond"
    ),
)


_CURLRC_LINE = re.compile(r"(-{0,2}[A-Za-z0-9][\w.-]*)\s*(?:[=:]\s*|\s+|$)(.*)")


_CURLRC_ESCAPES = {"\\": "\\", '"': '"', "t": "\t", "n": "\n", "r": "\r", "v": "\v"}


def _config_words(c: Cmd, where: Location, depth: int = 0) -> list[Field]:
    """The options a curl config file holds (``url = "..."``, ``-o x``, ``silent``), with the
    files its own ``config`` lines name; one the analyser cannot read is unseen."""
    exists, text = file_text(c, where)
    if not exists:
        return []
    if text is None or depth > 4:
        c.unseen("curl reads options from a config file the analyser cannot read", where)
        return []
    out: list[Field] = []
    for line in text.splitlines()[:1000]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = _CURLRC_LINE.match(line)
        if m is None:
            c.unseen("curl reads a config line the analyser cannot parse", where)
            continue
        name, value = m.group(1), m.group(2).strip()
        if not name.startswith("-"):
            name = "--" + name
        if value.startswith('"'):
            chars: list[str] = []
            k = 1
            while k < len(value) and value[k] != '"':
                if value[k] == "\\" and k + 1 < len(value):
                    k += 1
                    chars.append(_CURLRC_ESCAPES.get(value[k], value[k]))
                else:
                    chars.append(value[k])
                k += 1
            value = "".join(chars)
        if name in ("-K", "--config"):
            out.extend(_config_words(c, c.st.local(value), depth + 1))
            continue
        out.append(Field(name, raw=name))
        if value:
            out.append(Field(value, raw=value))
    return out


def _curl_args(c: Cmd) -> list[Field]:
    """curl's arguments after those of its config files: the default one (``.curlrc`` in
    CURL_HOME, XDG_CONFIG_HOME or HOME, unless ``-q`` comes first) and those ``-K`` names."""
    args = list(c.args)
    words: list[Field] = []
    if not (args and args[0].known and args[0].value in ("-q", "--disable")):
        st = c.st
        for var, name in (
            ("CURL_HOME", ".curlrc"),
            ("XDG_CONFIG_HOME", "curlrc"),
            ("HOME", ".curlrc"),
        ):
            v = st.vars.get(var)
            folder = v.text if v is not None else (st.home if var == "HOME" else None)
            if v is not None and v.text is None:
                c.unseen(f"curl reads a config file from ${var}, which the analyser cannot see")
                continue
            if folder:
                where = st.local(os.path.join(folder, name))
                if where.path is not None and file_text(c, where)[0]:
                    words = _config_words(c, where)
                    break
    named = any(
        a.known and a.value.startswith("-") and ("K" in a.value or a.value.startswith("--con"))
        for a in args
    )
    for f in parse(args, _CURL_SPEC).values("-K", "--config") if named else ():
        if f.known and f.value == "-":
            c.unseen("curl reads options from its standard input")
        elif f.known:
            words.extend(_config_words(c, c.loc(f)))
        else:
            c.unseen("curl reads options from a config file the analyser cannot name")
    return words + args


@command("curl")
def _curl(c: Cmd) -> tuple[Flow, ...]:
    o = parse(_curl_args(c), _CURL_SPEC)
    urls = [f.value for f in o.operands if f.known] + [
        f.value for f in o.values("--url") if f.known
    ]
    if any(not f.known for f in o.operands):
        urls.append("<unknown url>")
    dest = _url_dest(c, urls[0]) if urls else invisible("<curl>", None)
    sent: list[tuple[Location | None, str]] = []
    for f in o.values("-T", "--upload-file"):
        sent.append((None, "-") if f.known and f.value in ("-", ".") else (c.loc(f), f.value))
    for name in names("-d --data --data-binary --data-ascii --json --data-urlencode"):
        for f in o.values(name):
            if not f.known:
                continue
            v = f.value
            at = v.find("@") if name == "--data-urlencode" else (0 if v.startswith("@") else -1)
            if at >= 0:
                path = v[at + 1 :]
                sent.append((None, "-") if path == "-" else (c.st.local(path), path))
    for f in o.values("-F", "--form"):
        if not f.known or "=" not in f.value:
            continue
        val = f.value.split("=", 1)[1]
        if val[:1] in ("@", "<"):
            path = val[1:].split(";", 1)[0]
            sent.append((None, "-") if path == "-" else (c.st.local(path), path))
    for loc, _raw in sent:
        if loc is None:
            send(c, c.stdin, dest)
            continue
        if dest.visible:
            copy_effect(c, loc, dest, recursive=False)
        else:
            c.emit(TRANSFER, loc, dest)
    send(c, arg_flows(c, list(c.args)), dest)
    out_f = o.value("-o", "--output")
    scheme = _url(urls[0])[0] if urls else ""
    incoming: tuple[Flow, ...] = (
        (Flow(src=_url_dest(c, urls[0]), via="curl"),) if scheme == "file" else (OPAQUE,)
    )
    if scheme == "file" and urls:
        c.emit(EffectKind.READ, _url_dest(c, urls[0]))
    if out_f is not None:
        if out_f.known and out_f.value == "-":
            return incoming
        c.write_to(out_f, incoming, append=False)
        return ()
    if o.has("-O", "--remote-name", "--remote-name-all") and urls:
        name = (
            os.path.basename(urlsplit(urls[0] if "://" in urls[0] else "http://" + urls[0]).path)
            or "index.html"
        )
        c.write_to(c.st.local(name), incoming, append=False)
        return ()
    return incoming


# wgetrc commands (and `wget -e`) that name files or run programs, as the options they are.
_WGETRC = {
    "outputdocument": "--output-document",
    "postfile": "--post-file",
    "bodyfile": "--body-file",
    "input": "--input-file",
    "dirprefix": "--directory-prefix",
}


_WGETRC_UNSEEN = names("background useaskpass")


def _wgetrc_words(c: Cmd, lines: list[str], where: Location | None) -> list[Field]:
    """The options that wgetrc commands (``output_document = x``) amount to."""
    out: list[Field] = []
    for line in lines[:1000]:
        key, eq, value = line.strip().partition("=")
        key = key.strip().lower().replace("_", "").replace("-", "")
        if not eq or key.startswith("#"):
            continue
        value = value.strip()
        if key in _WGETRC_UNSEEN:
            c.unseen(f"wget {key}: it goes on or runs a program after the call", where)
        elif key in ("logfile", "appendoutput", "savecookies"):
            c.write_to(Field(value, raw=value), (OPAQUE,))
        elif key in _WGETRC:
            out.extend((Field(_WGETRC[key], raw=key), Field(value, raw=value)))
    return out


def _wget_args(c: Cmd) -> list[Field]:
    """wget's arguments after what its startup file (WGETRC, else ~/.wgetrc, unless
    --no-config) and its ``-e`` commands add."""
    args = list(c.args)
    known = [a.value for a in args if a.known]
    words: list[Field] = []
    st = c.st
    if "--no-config" not in known:
        var = st.vars.get("WGETRC")
        home = st.vars.get("HOME")
        folder = home.text if home is not None else st.home
        raw = var.text if var is not None else (os.path.join(folder, ".wgetrc") if folder else None)
        if raw is None:
            c.unseen("wget reads a startup file the analyser cannot name")
        else:
            where = st.local(raw)
            exists, text = file_text(c, where)
            if exists and text is None:
                c.unseen("wget reads a startup file the analyser cannot read", where)
            elif text is not None:
                words = _wgetrc_words(c, text.splitlines(), where)
    for k, v in enumerate(known):
        if v in ("-e", "--execute") and k + 1 < len(known):
            words.extend(_wgetrc_words(c, [known[k + 1]], None))
        elif v.startswith(("--execute=", "-e")) and v not in ("-e", "--execute="):
            words.extend(_wgetrc_words(c, [v.split("=", 1)[1] if v[1] == "-" else v[2:]], None))
    return words + args


@command("wget", "wget2")
def _wget(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        _wget_args(c),
        Spec.of(
            "OoaPiUeTtwQlADRIX",
            (
                "output-document output-file append-output directory-prefix input-file "
                "user-agent execute timeout tries wait quota level accept reject domains "
                "include-directories exclude-directories post-data post-file body-data "
                "body-file method header user password http-user http-password load-cookies "
                "save-cookies referer ca-certificate certificate private-key limit-rate "
                "bind-address base config"
            ),
        ),
    )
    urls = [f.value for f in o.operands if f.known]
    dest = _url_dest(c, urls[0]) if urls else invisible("<wget>", None)
    if o.has("-b", "--background"):
        c.unseen("wget -b goes on in the background after the call")
    for f in o.values("--post-file", "--body-file"):
        loc = c.loc(f)
        c.emit(TRANSFER, loc, dest)
    send(c, arg_flows(c, list(c.args)), dest)
    for f in o.values("-i", "--input-file"):
        c.read(f)
    out_f = o.value("-O", "--output-document")
    if out_f is not None:
        if out_f.known and out_f.value == "-":
            return (OPAQUE,)
        c.write_to(out_f, (OPAQUE,), append=False)
        return ()
    prefix = o.value("-P", "--directory-prefix")
    for u in urls:
        name = os.path.basename(urlsplit(u if "://" in u else "http://" + u).path) or "index.html"
        where = (
            (prefix.value.rstrip("/") + "/" + name) if prefix is not None and prefix.known else name
        )
        c.write_to(c.st.local(where), (OPAQUE,), append=False)
    return ()


@command("nc ncat netcat telnet nc.openbsd nc.traditional pwncat cryptcat")
def _nc(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "IiMmOPpqsTVWwXxecolgGbr",
            (
                "exec sh-exec lua-exec output hex-dump proxy proxy-type source source-port "
                "wait idle-timeout max-conns allow deny"
            ),
        ),
    )
    if o.values("-e", "-c", "--exec", "--sh-exec", "--lua-exec"):
        c.unknown(f"{c.name} runs a command for a network peer")
    for f in o.values("-o", "--output"):
        c.emit(EffectKind.WRITE, c.loc(f))
    hosts = [f.value for f in o.operands if f.known and not f.value.isdigit()]
    listen = o.has("-l", "--listen")
    host = hosts[0] if hosts else None
    dest = invisible(
        " ".join(f.value for f in o.operands if f.known) or c.name, host if not listen else None
    )
    send(c, c.stdin, dest)
    send(c, arg_flows(c, list(c.args)), dest)
    return (OPAQUE,)


def _socat_addr(c: Cmd, f: Field) -> tuple[str, Location | None, str]:
    """An address: kind (stdio, file, net, exec), its Location, and the command for exec."""
    if not f.known:
        return "file", c.loc(f), ""
    v = f.value
    head, _, rest = v.partition(":")
    kind = head.upper()
    if v in ("-", "STDIO", "STDIN", "STDOUT") or (
        kind in ("STDIO", "STDIN", "STDOUT", "FD", "PIPE") and not rest
    ):
        return "stdio", None, ""
    if kind in ("FILE", "OPEN", "GOPEN", "CREATE", "CREAT"):
        return "file", c.st.local(rest.split(",", 1)[0]), ""
    if kind in ("EXEC", "SYSTEM"):
        return "exec", None, rest.split(",", 1)[0]
    if "/" in head or not rest:
        return "file", c.st.local(v.split(",", 1)[0]), ""
    host = (
        rest.split(":", 1)[0]
        if kind.startswith(("TCP", "UDP", "OPENSSL", "SSL", "SCTP", "DCCP", "SOCKS", "PROXY"))
        else None
    )
    return "net", invisible(v, host), ""


@command("socat")
def _socat(c: Cmd) -> tuple[Flow, ...]:
    ops = [f for f in c.args if not (f.known and f.value.startswith("-") and f.value != "-")]
    if len(ops) < 2:
        return (OPAQUE,)
    a = _socat_addr(c, ops[0])
    b = _socat_addr(c, ops[1])
    out: list[Flow] = []
    for src, dst in ((a, b), (b, a)):
        kind, loc, cmd = src
        flows: tuple[Flow, ...]
        if kind == "stdio":
            flows = c.passthrough()
        elif kind == "file" and loc is not None:
            c.emit(EffectKind.READ, loc)
            flows = (Flow(src=loc, via="socat"),)
        elif kind == "exec":
            sub = c.st.new_shell(cwd=c.st.cwd, home=c.st.home, host=c.st.host, stdin=(), pos=[])
            flows = sub.run_text(cmd, what="socat EXEC") if sub is not None else (OPAQUE,)
        else:
            flows = (OPAQUE,)
        dkind, dloc, dcmd = dst
        if dkind == "stdio":
            out.extend(flows)
        elif dkind == "file" and dloc is not None:
            c.write_to(dloc, flows, append=False)
        elif dkind == "exec":
            sub = c.st.new_shell(cwd=c.st.cwd, home=c.st.home, host=c.st.host, stdin=flows, pos=[])
            if sub is not None:
                sub.run_text(dcmd, what="socat EXEC")
        elif dloc is not None:
            send(c, flows, dloc)
    return tuple(out)


@command("ftp lftp tftp pftp ncftp ncftpput")
def _ftp(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("ecfuUpPo", "user port"))
    hosts = [f.value for f in o.operands if f.known]
    host = _url(hosts[0])[1] if hosts else None
    dest = invisible(hosts[0] if hosts else c.name, host)
    texts = [f.value for f in o.values("-e", "-c", "-f") if f.known]
    texts += [fl.text for fl in c.stdin if fl.text is not None]
    if c.name == "ncftpput" and len(hosts) >= 3:
        for p in o.operands[2:]:
            c.emit(TRANSFER, c.loc(p), dest)
        return (OPAQUE,)
    if not texts:
        for f in o.operands[1:]:
            c.unknown(f"{c.name} given a path", c.loc(f))
        return (OPAQUE,)
    for text in texts:
        for line in text.replace(";", "\n").splitlines()[:1000]:
            try:
                words = shlex.split(line)
            except ValueError:
                words = line.split()
            if not words:
                continue
            verb = words[0].lower()
            if verb in ("put", "mput", "send", "append", "reput") and len(words) > 1:
                for w in words[1:2] if verb != "mput" else words[1:]:
                    if not w.startswith("-"):
                        c.emit(TRANSFER, c.st.local(w), dest)
            elif verb in ("get", "mget", "recv", "reget") and len(words) > 1:
                local = (
                    words[2] if len(words) > 2 and verb != "mget" else os.path.basename(words[1])
                )
                c.write_to(c.st.local(local), (OPAQUE,), append=False)
            elif verb == "open" and len(words) > 1:
                dest = invisible(words[1], _url(words[1])[1])
    return (OPAQUE,)


def _cloudish(value: str) -> bool:
    return "://" in value or (split_remote(value) is not None)


def _cloud_copy(c: Cmd, verb: str, ops: list[Field], *, recursive: bool) -> None:
    if len(ops) < 2:
        return
    srcs, dst = ops[:-1], ops[-1]
    move = verb in ("mv", "move", "moveto")
    for s in srcs:
        if s.known and _cloudish(s.value) and not (dst.known and _cloudish(dst.value)):
            c.write_to(dst, (OPAQUE,), append=False)
            continue
        loc = c.loc(s)
        rec = recursive or (loc.path is not None and c.st.run.isdir(loc.path))
        if dst.known and _cloudish(dst.value):
            host = _url(dst.value)[1] if "://" in dst.value else dst.value.split(":", 1)[0]
            c.emit(TRANSFER, loc, invisible(dst.value, host), recursive=rec)
        else:
            copy_effect(c, loc, dest_for(c.st, loc, c.loc(dst), dst.value), recursive=rec)
        if move:
            c.emit(EffectKind.DELETE, loc, recursive=rec)


@command("aws gsutil gcloud rclone azcopy s3cmd mc b2")
def _cloud(c: Cmd) -> tuple[Flow, ...]:
    words = [f for f in c.args if not (f.known and f.value.startswith("-"))]
    flags = {f.value for f in c.args if f.known and f.value.startswith("-")}
    verbs = {"cp", "mv", "sync", "rsync", "copy", "copyto", "move", "moveto", "put", "upload"}
    k = next((i for i, f in enumerate(words) if f.known and f.value in verbs), None)
    if k is None:
        return TABLE["/unknown"](c)
    verb = words[k].value
    ops = words[k + 1 :]
    if verb in ("put", "upload") and ops:
        ops = ops if len(ops) > 1 else [*ops, Field(f"{c.name}:<remote>", raw=c.name)]
    _cloud_copy(
        c,
        verb,
        ops,
        recursive=verb in ("sync", "rsync") or bool(flags & {"-r", "-R", "--recursive"}),
    )
    return (OPAQUE,)


@command("docker podman kubectl oc lxc incus")
def _containers(c: Cmd) -> tuple[Flow, ...]:
    words = [f for f in c.args if not (f.known and f.value.startswith("-"))]
    if (words and words[0].known and words[0].value in ("cp", "copy")) or (
        len(words) > 1
        and words[0].known
        and words[0].value == "container"
        and words[1].value == "cp"
    ):
        ops = words[1:] if words[0].value != "container" else words[2:]
        if len(ops) >= 2:
            src, dst = ops[0], ops[-1]
            if dst.known and split_remote(dst.value) is not None:
                c.emit(
                    TRANSFER,
                    c.loc(src),
                    invisible(dst.value, dst.value.split(":", 1)[0]),
                    recursive=c.st.run.isdir(c.loc(src).path or ""),
                )
            elif src.known and split_remote(src.value) is not None:
                c.write_to(dst, (OPAQUE,), append=False)
        return (OPAQUE,)
    return TABLE["/unknown"](c)


@command("mail mailx mutt sendmail msmtp ssmtp s-nail neomutt swaks")
def _mail(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("aAsbcrfSFiC", "attach subject from to server attach-type"))
    rcpts = [f.value for f in o.operands if f.known]
    domain = rcpts[0].rsplit("@", 1)[-1] if rcpts else None
    dest = invisible(", ".join(rcpts) or c.name, domain)
    for f in o.values("-a", "-A", "--attach"):
        if (
            c.name in ("mail", "mailx", "s-nail")
            and o.has("-a")
            and f.known
            and ":" in f.value
            and not c.st.run.exists(c.loc(f).path or "")
        ):
            continue  # mailx -a is a header there
        c.emit(TRANSFER, c.loc(f), dest)
    send(c, c.stdin, dest)
    send(c, arg_flows(c, list(c.args)), dest)
    return (OPAQUE,)
