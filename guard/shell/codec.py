"""Codecs, encoders and ciphers: gzip and kin, base64 and kin, xxd, openssl and gpg. Data
that goes through them is still the same data: a flow keeps its source through any number of
encodings (a copy of weights gzipped and base64-encoded is still a copy of the weights), and
text they decode that the analyser can compute is known text.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from guard.shell.common import (
    DELETE,
    READ,
    byte_count,
    copy_effect,
    isdir,
    source_places,
)
from guard.shell.core import Cmd, command
from guard.shell.options import Spec, parse
from guard.shell.words import OPAQUE, Field, Flow, names
from guard.types import EffectKind, Location


@dataclass(frozen=True, slots=True)
class _Codec:
    suffix: str
    decompress: bool = False
    stdout: bool = False
    keep: bool = False  # keeps the input by default (zstd, lz4, brotli)


_CODECS: dict[str, _Codec] = {
    "gzip": _Codec(".gz"),
    "pigz": _Codec(".gz"),
    "gunzip": _Codec(".gz", decompress=True),
    "unpigz": _Codec(".gz", decompress=True),
    "zcat": _Codec(".gz", decompress=True, stdout=True),
    "gzcat": _Codec(".gz", decompress=True, stdout=True),
    "bzip2": _Codec(".bz2"),
    "pbzip2": _Codec(".bz2"),
    "lbzip2": _Codec(".bz2"),
    "bunzip2": _Codec(".bz2", decompress=True),
    "bzcat": _Codec(".bz2", decompress=True, stdout=True),
    "xz": _Codec(".xz"),
    "pxz": _Codec(".xz"),
    "unxz": _Codec(".xz", decompress=True),
    "xzcat": _Codec(".xz", decompress=True, stdout=True),
    "lzma": _Codec(".lzma"),
    "unlzma": _Codec(".lzma", decompress=True),
    "lzcat": _Codec(".lzma", decompress=True, stdout=True),
    "zstd": _Codec(".zst", keep=True),
    "zstdmt": _Codec(".zst", keep=True),
    "unzstd": _Codec(".zst", decompress=True, keep=True),
    "zstdcat": _Codec(".zst", decompress=True, stdout=True),
    "lz4": _Codec(".lz4", keep=True),
    "unlz4": _Codec(".lz4", decompress=True, keep=True),
    "lz4cat": _Codec(".lz4", decompress=True, stdout=True),
    "brotli": _Codec(".br", keep=True),
    "compress": _Codec(".Z"),
    "uncompress": _Codec(".Z", decompress=True),
    "lzop": _Codec(".lzo", keep=True),
}


@command(*_CODECS)
def _codec(c: Cmd) -> tuple[Flow, ...]:
    k = _CODECS[c.name]
    o = parse(c.args, Spec.of("SoLTbB", "suffix output threads memlimit format level"))
    decompress = k.decompress or o.has("-d", "--decompress", "--uncompress")
    to_stdout = k.stdout or o.has("-c", "--stdout", "--to-stdout")
    keep = (k.keep and not o.has("--rm")) or o.has("-k", "--keep")
    rec = o.has("-r", "--recursive")
    suffix_f = o.value("-S", "--suffix")
    suffix = suffix_f.value if suffix_f is not None and suffix_f.known else k.suffix
    files = [f for f in o.operands if not (f.known and f.value == "-")]
    if o.has("-t", "--test", "-l", "--list"):
        for f in files:
            c.read(f)
        return (OPAQUE,)
    outf = (
        o.value("-o", "--output")
        if c.name in ("zstd", "zstdmt", "unzstd", "lz4", "brotli")
        else None
    )
    if c.name == "lz4" and len(files) == 2 and outf is None:
        files, outf = files[:1], files[1]
    if not files:
        flows = c.passthrough(transform=True)
        if outf is not None:
            c.write_to(outf, flows, append=False)
            return ()
        return flows
    out: list[Flow] = []
    for f in files:
        for src, frec, _contents in source_places(c, f):
            r = (rec and isdir(c, src)) or frec
            c.emit(READ, src, recursive=r)
            flow = Flow(src=src, recursive=r, exact=False, via=c.name)
            if to_stdout:
                out.append(flow)
                continue
            if outf is not None:
                c.write_to(outf, (flow,), append=False)
            else:
                copy_effect(c, src, _renamed(c, src, suffix, decompress, r), recursive=r)
            if not keep and not f.pipe:
                form = "decompressed" if decompress else "compressed"
                c.emit(DELETE, src, recursive=r, note=f"{c.name} replaces it with its {form} form")
    return tuple(out)


def _renamed(c: Cmd, src: Location, suffix: str, decompress: bool, folder: bool) -> Location:
    """The file gzip and kin write beside their input: ``x`` -> ``x.gz``, ``x.gz`` -> ``x``."""
    if folder:  # -r works file by file, in place
        return src

    def rename(name: str) -> str:
        if not decompress:
            return name + suffix
        if name.endswith(suffix):
            return name[: -len(suffix)]
        return name[:-4] + ".tar" if name.endswith(".tgz") else name + ".out"

    if src.path is None:
        return Location(raw=rename(src.raw))
    return c.st.run.at(rename(src.path), rename(src.raw), src.visible)


def _decode_text(kind: str, text: str) -> str | None:
    try:
        if kind == "base64":
            raw = base64.b64decode("".join(text.split()) + "===", validate=False)
        elif kind == "base32":
            data = "".join(text.split()).upper()
            raw = base64.b32decode(data + "=" * (-len(data) % 8))
        elif kind == "hex":
            raw = binascii.unhexlify("".join(text.split()))
        else:
            return None
    except (ValueError, binascii.Error):
        return None
    return raw.decode("utf-8", "replace")


def _encode_text(kind: str, text: str) -> str | None:
    data = text.encode()
    if kind == "base64":
        return base64.b64encode(data).decode() + "\n"
    if kind == "base32":
        return base64.b32encode(data).decode() + "\n"
    if kind == "hex":
        return data.hex() + "\n"
    return None


def _codec_flows(c: Cmd, inputs: tuple[Flow, ...], kind: str, decode: bool) -> tuple[Flow, ...]:
    out: list[Flow] = []
    for fl in inputs:
        nf = fl.through(c.name, transform=True)
        # an encoding of the first N bytes of a file still holds nothing past them
        limit = fl.limit
        if fl.text is not None:
            text = _decode_text(kind, fl.text) if decode else _encode_text(kind, fl.text)
            out.append(
                Flow(
                    src=fl.src,
                    text=text,
                    exact=False,
                    decoded=decode or fl.decoded,
                    via=nf.via,
                    limit=limit,
                )
            )
        elif decode and fl.src is not None:
            # an encoded file decoded now tells what a later `| sh` would run
            data = c.st.run.read_text(fl.src)
            text = _decode_text(kind, data) if data is not None else None
            out.append(
                Flow(
                    src=fl.src,
                    recursive=fl.recursive,
                    exact=False,
                    decoded=True,
                    via=nf.via,
                    limit=limit,
                )
            )
            if text is not None:
                out.append(Flow(text=text, decoded=True, via=nf.via))
        else:
            out.append(
                Flow(
                    src=nf.src,
                    recursive=nf.recursive,
                    names=nf.names,
                    exact=False,
                    decoded=decode or nf.decoded,
                    via=nf.via,
                    limit=limit,
                )
            )
    return tuple(out)


@command("base64 base32 basenc uuencode uudecode")
def _base64(c: Cmd) -> tuple[Flow, ...]:
    o = parse(c.args, Spec.of("wo", "wrap output"))
    decode = o.has("-d", "-D", "--decode") or c.name == "uudecode"
    kind = {"base64": "base64", "base32": "base32"}.get(
        c.name, "base64" if o.has("--base64") else "other"
    )
    files = [f for f in o.operands if not (f.known and f.value == "-")]
    if c.name == "uuencode":
        files = files[:1]
    inputs: tuple[Flow, ...] = ()
    for f in files:
        c.read(f)
        inputs += tuple(
            Flow(src=fl.src, text=fl.text, recursive=fl.recursive, via="") for fl in c.content(f)
        )
    if not files:
        inputs = c.stdin
    flows = _codec_flows(c, inputs, kind, decode)
    target = o.value("-o", "--output")
    if target is not None:
        c.write_to(target, flows, append=False)
        return ()
    return flows


# xxd's options that take a value, with the rest of their long spelling (-l, -len)
_XXD_VALUES = {
    "c": "ols",
    "g": "roupsize",
    "o": "ffset",
    "s": "eek",
    "l": "en",
    "n": "ame",
    "R": "",
}


def _xxd_args(args: list[Field]) -> tuple[set[str], dict[str, Field], list[Field]]:
    """xxd's own option syntax: flags, values (``-l 64``, ``-l64``, ``-len 64``), operands."""
    flags: set[str] = set()
    values: dict[str, Field] = {}
    ops: list[Field] = []
    i = 0
    while i < len(args):
        f = args[i]
        v = f.value
        i += 1
        if not f.known or len(v) < 2 or not v.startswith("-"):
            ops.append(f)
            continue
        if v == "--":
            ops.extend(args[i:])
            break
        letter, rest = v[1], v[2:]
        if letter not in _XXD_VALUES or (letter == "c" and rest == "apitalize"):
            flags.add(letter)
            continue
        if rest and rest != _XXD_VALUES[letter]:
            values[letter] = Field(rest, raw=rest)
        elif i < len(args):
            values[letter] = args[i]
            i += 1
    return flags, values, ops


@command("xxd")
def _xxd(c: Cmd) -> tuple[Flow, ...]:
    flags, values, ops = _xxd_args(list(c.args))
    decode = "r" in flags
    plain = "p" in flags
    count = None
    seek = values.get("s")
    length = values.get("l")
    if not decode and length is not None and length.known:
        from_start = seek is None or (seek.known and byte_count(seek.value.lstrip("+")) == 0)
        count = byte_count(length.value) if from_start else None
    infile = ops[0] if ops and not (ops[0].known and ops[0].value == "-") else None
    inputs: tuple[Flow, ...]
    if infile is not None:
        c.read(infile)
        inputs = tuple(
            Flow(src=fl.src, text=fl.text, via="", limit=fl.limit) for fl in c.content(infile)
        )
        if count is not None and not infile.pipe and c.fd_of(infile) is None:
            inputs = tuple(fl.first(count) for fl in inputs)
    else:
        inputs = tuple(fl.first(count) for fl in c.stdin)
    flows = _codec_flows(c, inputs, "hex" if plain else "other", decode)
    if len(ops) >= 2:
        c.write_to(ops[1], flows, append=False)
        return ()
    return flows


_OPENSSL_DIGESTS = names(
    "dgst md5 sha1 sha224 sha256 sha384 sha512 sha3-256 sha3-512 blake2b512 blake2s256 sm3 rmd160"
)


@command("openssl")
def _openssl(c: Cmd) -> tuple[Flow, ...]:
    if not c.args or not c.args[0].known:
        c.unknown("openssl with an unknown subcommand")
        return (OPAQUE,)
    sub = c.args[0].value
    args = c.args[1:]
    # openssl options are single-dash words, some with a value
    vals: dict[str, Field] = {}
    flags: set[str] = set()
    ops: list[Field] = []
    takes = {
        "-in",
        "-out",
        "-k",
        "-K",
        "-iv",
        "-pass",
        "-kfile",
        "-md",
        "-S",
        "-connect",
        "-inkey",
        "-key",
        "-passin",
        "-passout",
        "-signkey",
        "-CAfile",
        "-cert",
        "-servername",
        "-port",
        "-accept",
        "-certfile",
        "-recip",
        "-inform",
        "-outform",
        "-keyform",
        "-cipher",
        "-iter",
        "-bufsize",
    }
    i = 0
    while i < len(args):
        f = args[i]
        v = f.value if f.known else ""
        if v in takes and i + 1 < len(args):
            vals[v] = args[i + 1]
            i += 2
            continue
        if v.startswith("-"):
            flags.add(v)
        else:
            ops.append(f)
        i += 1
    if sub in ("s_client", "s_server"):
        conn = vals.get("-connect")
        host = conn.value.rsplit(":", 1)[0] if conn is not None and conn.known else "<network>"
        dest = Location(
            raw=conn.value if conn is not None else "openssl s_client",
            path=None,
            host=host,
            visible=False,
        )
        for fl in c.stdin:
            if fl.src is not None and not fl.names:
                c.emit(
                    EffectKind.TRANSFER,
                    fl.src,
                    dest,
                    recursive=fl.recursive,
                    via=(fl.via + "|" if fl.via else "") + "openssl",
                )
        return (OPAQUE,)
    if sub in _OPENSSL_DIGESTS:
        for f in ops:
            c.read(f)
        if "-in" in vals:
            c.read(vals["-in"])
        if "-out" in vals:
            c.write_to(vals["-out"], (OPAQUE,), append=False)
        return (OPAQUE,)
    inputs: tuple[Flow, ...]
    if "-in" in vals:
        c.read(vals["-in"])
        inputs = tuple(Flow(src=fl.src, text=fl.text, via="") for fl in c.content(vals["-in"]))
    else:
        inputs = c.stdin
    decode = "-d" in flags
    kind = (
        "base64"
        if sub == "base64"
        or (
            ("-a" in flags or "-base64" in flags)
            and sub == "enc"
            and "-pass" not in vals
            and "-k" not in vals
            and "-K" not in vals
        )
        else "other"
    )
    flows = _codec_flows(c, inputs, kind, decode)
    if "-out" in vals:
        c.write_to(vals["-out"], flows, append=False)
        return ()
    return flows


@command("gpg", "gpg2")
def _gpg(c: Cmd) -> tuple[Flow, ...]:
    o = parse(
        c.args,
        Spec.of(
            "oruk",
            (
                "output recipient local-user homedir passphrase passphrase-file cipher-algo "
                "keyring default-key trust-model pinentry-mode compress-algo"
            ),
        ),
    )
    files = list(o.operands)
    outf = o.value("-o", "--output")
    decode = o.has("-d", "--decrypt")
    armor = o.has("-a", "--armor")
    if not o.has(
        "-c",
        "--symmetric",
        "-e",
        "--encrypt",
        "-s",
        "--sign",
        "-d",
        "--decrypt",
        "--clearsign",
        "-b",
        "--detach-sign",
    ):
        for f in files:
            c.read(f)
        return (OPAQUE,)
    inputs: list[Flow] = []
    for f in files:
        c.read(f)
        inputs.extend(c.content(f, transform=True))
    if not files:
        inputs.extend(c.passthrough(transform=True))
    if outf is not None:
        if outf.known and outf.value == "-":
            return tuple(inputs)
        c.write_to(outf, tuple(inputs), append=False)
        return ()
    if decode or not files:
        return tuple(inputs)
    for f, fl in zip(files, inputs, strict=False):
        if fl.src is not None and f.known:
            copy_effect(
                c, fl.src, c.st.local(f.value + (".asc" if armor else ".gpg")), recursive=False
            )
    return ()
