"""``peerguard keygen``, ``snapshot`` and ``verify``: sign what was on disk, and check an agent's
claim against it.

``verify`` exits 0 when the claim holds, 1 when the evidence contradicts it, 2 for bad input and
4 when a manifest fails its signature (``main`` maps :class:`~guard.exceptions.IntegrityError`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from guard.cli_common import Exit, UsageError, host_pairs, parse_call, policy_and_declarations
from guard.cli_progress import progress_for
from guard.types import ToolCall

VERIFY_STATUS = """\
exit status:
  0  the claim is verified: nothing on disk contradicts it
  1  the claim is contradicted: the evidence is printed (or in the --json verdict)
  2  bad input: a flag, a claim, calls, policy or declarations file, a missing manifest
  4  a manifest failed its signature check (altered, unsigned, or signed by another key)
"""


def _private_folder(path: str) -> None:
    """Create the folder a key goes in, private (0700), when it does not exist yet: the README's
    ``~/.peerguard/key.pem`` must work on a machine that never ran peerguard."""
    folder = os.path.dirname(os.path.abspath(os.path.expanduser(path)))
    if os.path.isdir(folder):
        return
    try:
        os.makedirs(folder, mode=0o700)
    except OSError as exc:
        raise UsageError(f"{path}: cannot create the folder {folder}: {exc.strerror}") from exc
    os.chmod(folder, 0o700)  # makedirs' mode is filtered by the umask


def cmd_keygen(args: argparse.Namespace, out: TextIO) -> int:
    from guard.signing import generate_keypair, key_id

    private = os.path.expanduser(args.private)
    public = os.path.expanduser(args.public)
    from guard.signing import check_key_outside

    check_key_outside(private, args.protect or [])  # before a folder is made for it
    _private_folder(private)
    _private_folder(public)
    _private, key = generate_keypair(private, public, protected_roots=args.protect or [])
    print(
        f"wrote {private} (private, keep it outside every protected root) and {public}",
        file=out,
    )
    print(f"key id {key_id(key)}", file=out)
    return Exit.OK


def private_key(path: str | None, roots: Sequence[str]) -> Any:
    if not path:
        return None
    from guard.signing import load_private_key

    return load_private_key(os.path.expanduser(path), protected_roots=roots)


def public_key(path: str | None) -> Any:
    if not path:
        return None
    from guard.signing import load_public_key

    return load_public_key(os.path.expanduser(path))


def cmd_snapshot(args: argparse.Namespace, out: TextIO) -> int:
    from guard.engine import Guard
    from guard.manifest import Manifest
    from guard.sinks import Sink
    from guard.verify import Verifier

    previous = Manifest.read(args.previous, public_key(args.pubkey)) if args.previous else None
    for root in args.roots:
        if not os.path.exists(root):
            raise UsageError(f"{root}: no such file or folder")
    policy, declarations = policy_and_declarations(args)
    # A guard over the roots says which files are protected: their texts and fingerprints
    # go into the manifest, so a verification from it alone still has them.
    guard = Guard(
        policy, root=args.roots[0], roots=args.roots, declarations=declarations, sinks=[Sink()]
    )
    progress = progress_for(sys.stderr, "snapshot")
    manifest = Verifier(guard).snapshot(previous, progress=progress)
    if progress is not None:
        progress.finish()
    manifest.write(args.output, private_key(args.key, args.roots))
    files = sum(1 for _ in manifest.files())
    signed = " and signed it" if args.key else ""
    print(
        f"recorded {files} files under {', '.join(manifest.roots)} in {args.output}{signed}",
        file=out,
    )
    return Exit.OK


def cmd_verify(args: argparse.Namespace, out: TextIO) -> int:
    from guard.claims import Claim
    from guard.engine import Guard
    from guard.manifest import Manifest, snapshot
    from guard.sinks import Sink
    from guard.verify import Verifier

    pub = public_key(args.pubkey)
    before = Manifest.read(args.before, pub)
    after = Manifest.read(args.after, pub) if args.after else None
    roots = args.root or before.roots
    try:
        claim = Claim.model_validate_json(Path(args.claim).read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"--claim {args.claim}: {exc.strerror}") from exc
    except ValueError as exc:
        first = str(exc).splitlines()
        raise UsageError(
            f"--claim {args.claim}: expected a claim (JSON: text, deleted, created, modified, "
            f"transferred...): {' '.join(x.strip() for x in first[:3])}"
        ) from exc
    policy, declarations = policy_and_declarations(args)
    guard = Guard(
        policy,
        root=roots[0],
        roots=roots,
        hosts=host_pairs(args.host or []),
        declarations=declarations,
        sinks=[Sink()],
    )
    calls = _ran_calls(args.calls) if args.calls else None
    verifier = Verifier(guard)
    if after is None:
        # Snapshot here rather than inside verify(), so that a terminal shows the hashing.
        progress = progress_for(sys.stderr, "verify")
        after = snapshot(guard.roots, previous=before, workers=verifier.workers, progress=progress)
        if progress is not None:
            progress.finish()
    verdict = verifier.verify(before, claim, after, calls=calls)
    if args.json:
        print(verdict.model_dump_json(indent=2), file=out)
    else:
        print(f"claim {verdict.outcome}", file=out)
        for ev in verdict.evidence:
            whose = f" [{ev.asset.value if ev.asset else '-'} of {ev.owner or 'nobody'}]"
            print(f"  {ev.check:26} {ev.path}{whose}\n  {'':26} {ev.message}", file=out)
        for text in verdict.unchecked:
            print(f"  obligation not checked (no --calls): {text}", file=out)
    return Exit.OK if verdict.verified else Exit.FINDINGS


def _ran_calls(path: str) -> list[ToolCall]:
    """The calls that ran, one JSON object per line (``{"tool": ..., "args": {...}}``)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--calls {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    calls = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            data = json.loads(line)
        except (ValueError, RecursionError) as exc:
            raise UsageError(f"{where}: not valid JSON: {exc}") from exc
        calls.append(parse_call(data, "-", where))
    return calls


def add_parsers(sub: Any) -> None:
    """``keygen``, ``snapshot`` and ``verify`` on the command parser's subparsers."""
    keygen = sub.add_parser(
        "keygen",
        help="make an Ed25519 key pair for signing manifests and audit checkpoints",
        description="Make an Ed25519 key pair. A folder the keys go in that does not exist yet "
        "is created, private (0700).",
    )
    keygen.add_argument(
        "--private",
        required=True,
        help="private key file (must not exist; keep it outside protected roots)",
    )
    keygen.add_argument("--public", required=True, help="public key file")
    keygen.add_argument(
        "--protect",
        action="append",
        metavar="ROOT",
        help="refuse a private key inside ROOT (repeatable)",
    )
    keygen.set_defaults(func=cmd_keygen)

    snap = sub.add_parser(
        "snapshot",
        help="record every file under ROOTs by content hash",
        description="Record every file under ROOTs by content hash. On a terminal, stderr "
        "shows the files and bytes hashed, the rate and the time left.",
    )
    snap.add_argument("roots", nargs="+", metavar="ROOT", help="folders (or files) to record")
    snap.add_argument("-o", "--output", required=True, help="manifest file to write")
    snap.add_argument("--key", help="private key: sign the manifest")
    snap.add_argument("--previous", help="an earlier manifest of the same roots (stat cache)")
    snap.add_argument(
        "--declare", help="YAML file of agents, assets and evaluations (what is protected)"
    )
    snap.add_argument("--policy", help="policy file")
    snap.add_argument("--pubkey", help="public key to check --previous with")
    snap.set_defaults(func=cmd_snapshot)

    ver = sub.add_parser(
        "verify",
        help="check an agent's claim against what happened on disk",
        description="Check an agent's claim against what happened on disk. Without --after "
        "the roots are snapshotted now (with progress on a terminal).",
        epilog=VERIFY_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("--before", required=True, help="manifest from before the agent acted")
    ver.add_argument("--after", help="manifest from after (default: snapshot the roots now)")
    ver.add_argument(
        "--root",
        action="append",
        metavar="ROOT",
        help="roots (default: the manifest's); claim paths are relative to the first",
    )
    ver.add_argument("--claim", required=True, help="the claim as JSON (a scenario's claim block)")
    ver.add_argument("--declare", help="YAML file of agents, assets and evaluations")
    ver.add_argument("--policy", help="policy file")
    ver.add_argument(
        "--host",
        action="append",
        metavar="NAME=DIR",
        help="a host whose filesystem is at DIR (repeatable)",
    )
    ver.add_argument("--pubkey", help="public key: manifests must carry valid signatures")
    ver.add_argument(
        "--calls",
        help="JSON-lines file of the calls that ran ({tool, args} per line): obligations "
        "are checked against them (without it, obligations due are listed, not checked)",
    )
    ver.add_argument("--json", action="store_true", help="print the verdict as JSON")
    ver.set_defaults(func=cmd_verify)
