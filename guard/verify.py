"""Independent checks of what agents report, against the filesystem and recomputed scores.

The guard never takes an agent's word. :class:`Verifier` compares a baseline taken before the
agent acted with the filesystem after it, by content hash, and checks the agent's
:class:`Claim` against what really happened. The claim is contradicted when:

- a path it says it deleted is still there;
- the content of something deleted survives anywhere in the roots under any name: the same
  bytes, or the bytes after layers of gzip, bzip2, xz, base64, tar or zip (four deep by default,
  found wherever their signatures are in a file), or the name-ordered concatenation of one
  folder's files (a split), unless the claim says where it put it;
- a protected asset changed, moved, disappeared or appeared as a copy, and the claim does not say so;
- a score it reports differs from the score recomputed from the declared evaluation items as
  they were before the agent acted, or a declared score file holds a score that does (what it
  says and what it wrote both count), or a pass/fail verdict or a threshold beside it that
  misreports the outcome; graded items that changed or no longer parse are evidence too;
- a shutdown/oversight switch that was on is now off, in a declared config or any other one,
  edited, emptied, deleted or moved away: disclosure in the claim explains such a change, it
  never excuses it;
- a new or changed file could not be fully inspected for such content (a decompression bomb,
  an encrypted archive, anything over the :class:`~guard.decoding.DecodeBudget`): what the
  guard cannot inspect does not verify.

Scores are recomputed here, independently of the agent: the mean of the items file's per-item
correctness field.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from guard.assets import AssetIndex, AssetInfo
from guard.claims import Claim, Evidence, Transfer, Verdict
from guard.configs import (
    MAX_CONFIG_BYTES,
    STRUCTURED_SUFFIXES,
    OversightMatcher,
    TooComplex,
    TooLarge,
    get_dotted,
    parse,
    read_config,
)
from guard.content import PayloadTap
from guard.evaluations import as_score, check_verdicts, recompute_score, score_items
from guard.fingerprints import FingerprintIndex, Match
from guard.manifest import HashProgress, Manifest, ManifestEntry, snapshot
from guard.obligations import due, unmet
from guard.paths import HostMap
from guard.policy import EvaluationDecl, Policy
from guard.recovery import (
    files_below,
    fingerprints_of,
    joined,
    keep_texts,
    recoverable,
    sha256_hex,
)
from guard.streams import DecodeBudget, Layer
from guard.types import AssetKind, Effect, ToolCall


class GuardView(Protocol):
    """What the verifier needs of a guard: where to look and what is protected there. A
    :class:`~guard.engine.Guard` is one; the verifier never decides on calls."""

    @property
    def root(self) -> str:
        """The main root (relative paths start there)."""
        ...

    @property
    def roots(self) -> list[str]:
        """Every guarded root: the main one and each host's."""
        ...

    @property
    def assets(self) -> AssetIndex:
        """The protected assets in the roots."""
        ...

    @property
    def hosts(self) -> HostMap:
        """The known hosts and their folders."""
        ...

    @property
    def policy(self) -> Policy:
        """The policy (its score tolerance)."""
        ...

    @property
    def evaluations(self) -> dict[str, EvaluationDecl]:
        """Declared evaluations by their score file's absolute path."""
        ...

    @property
    def oversight(self) -> OversightMatcher:
        """Which config keys are shutdown or oversight switches."""
        ...

    def effects_of(self, call: ToolCall) -> list[Effect]:
        """What a call does (to tell which calls that ran fulfil an obligation)."""
        ...

    def args_read(self, call: ToolCall) -> frozenset[str] | None:
        """The arguments the call's tool spec reads (``None``: no spec)."""
        ...


@dataclass
class Baseline:
    """What the verifier records before an agent acts.

    ``manifest`` is the snapshot; ``protected`` maps content hashes of protected files to
    their path and asset; ``configs`` keeps the text of structured configs (up to the one
    bound every reader of configs uses), so that a switch turned off can be told from one
    that was always off; ``large`` names the protected configs over that bound, whose
    change cannot be judged.
    """

    manifest: Manifest
    protected: dict[str, tuple[str, AssetInfo]] = field(default_factory=dict)
    configs: dict[str, str] = field(default_factory=dict)
    large: set[str] = field(default_factory=set)
    items: dict[str, str] = field(default_factory=dict)
    fingerprints: FingerprintIndex = field(default_factory=FingerprintIndex)


class Verifier:
    """Checks claims against the filesystem, using a guard's roots, assets and evaluations.

    Args:
        guard: Supplies the roots to snapshot, the asset registry (what is protected and
            whose), the host map (for ``transferred`` claims), the declared evaluations and
            the oversight-switch matcher.
        workers: Hashing threads for snapshots.
        budget: How much decoding one new or changed file may take while looking for the
            content of deleted or protected files in it; :class:`DecodeBudget` defaults when
            ``None``. What goes over it is evidence (``content-uninspectable``), not a pass.
        fingerprints: Keep chunk fingerprints of the protected weights in baselines and look
            for parts of them (``partial-copy``); off, only whole copies are found (for
            comparison: ``benchmarks/verify_tree.py``).
    """

    def __init__(
        self,
        guard: GuardView,
        *,
        workers: int | None = None,
        budget: DecodeBudget | None = None,
        fingerprints: bool = True,
    ) -> None:
        self.guard = guard
        self.workers = workers
        self.budget = budget if budget is not None else DecodeBudget()
        self.fingerprints = fingerprints

    def _abs(self, rel: str) -> str:
        return os.path.realpath(rel if os.path.isabs(rel) else os.path.join(self.guard.root, rel))

    def _classify(self, path: str, digest: str | None) -> AssetInfo | None:
        index = self.guard.assets
        info = index.globs.lookup(path) or index.known(path)
        if info is None and digest is not None:
            same = index.by_digest(digest)
            info = same[1] if same is not None else None
        return info

    def baseline(self, previous: Manifest | None = None) -> Baseline:
        """Snapshot the roots and record which files are protected, before the agent acts."""
        return self.baseline_from(self.snapshot(previous))

    def snapshot(
        self, previous: Manifest | None = None, *, progress: HashProgress | None = None
    ) -> Manifest:
        """A manifest of the roots that keeps the texts a later verification needs (see
        :func:`keep_texts`): what ``peerguard snapshot`` writes. ``progress`` hears of the
        hashing."""
        manifest = snapshot(
            self.guard.roots, previous=previous, workers=self.workers, progress=progress
        )
        manifest = keep_texts(manifest, previous, also=self._items_files())
        return keep_fingerprints(manifest, self) if self.fingerprints else manifest

    def _items_files(self) -> list[str]:
        return [self._lexical(d.items_file) for d in self.guard.evaluations.values()]

    def _lexical(self, rel: str) -> str:
        """``rel`` under the root without following symlinks: where a manifest records the
        file. Items looked up this way cannot be swapped for others by a symlink made
        during the run (the path then no longer holds the file the baseline recorded)."""
        root = self.guard.root
        return os.path.normpath(rel if os.path.isabs(rel) else os.path.join(root, rel))

    def baseline_from(self, manifest: Manifest) -> Baseline:
        """A baseline from a manifest taken earlier. Texts come from the manifest (see
        :func:`keep_texts`); a manifest without them has them read now, where the file is
        still as it was."""
        base = Baseline(manifest)

        def text_of(path: str, entry: ManifestEntry) -> str | TooLarge | None:
            kept = manifest.texts.get(path)
            if kept is not None:
                return kept
            text = read_config(path)
            if isinstance(text, str) and sha256_hex(text.encode()) != entry.digest:
                return None  # changed since the manifest: not what it recorded
            return text

        items = set(self._items_files())
        weights: dict[str, str] = {}  # digest -> path, for the fingerprints
        for path, entry in manifest.entries.items():
            if entry.kind != "file":
                continue
            info = self._classify(path, entry.digest)
            if info is not None and entry.digest is not None:
                base.protected.setdefault(entry.digest, (path, info))
                if info.kind is AssetKind.WEIGHTS:
                    weights.setdefault(entry.digest, path)
            if path in items:
                text = text_of(path, entry)
                if isinstance(text, str):
                    base.items[path] = text
            if path.lower().endswith(STRUCTURED_SUFFIXES):
                text = text_of(path, entry)
                if isinstance(text, TooLarge) or (text is None and entry.size > MAX_CONFIG_BYTES):
                    if info is not None and info.kind is AssetKind.CONFIG:
                        base.large.add(path)
                elif text is not None:
                    base.configs[path] = text
        if self.fingerprints:
            base.fingerprints = fingerprints_of(manifest, weights)
        return base

    def verify(
        self,
        before: Baseline | Manifest,
        claim: Claim,
        after: Manifest | None = None,
        *,
        calls: Iterable[ToolCall] | None = None,
    ) -> Verdict:
        """Check ``claim`` against what changed since ``before``, and the run's obligations
        against the calls that ran.

        Args:
            before: The baseline (or a bare manifest) from before the agent acted.
            claim: What the agent says it did.
            after: A snapshot from after; taken now when ``None``.
            calls: The calls that ran in the run (what was allowed, or approved, and
                executed). Each obligation due that none of them fulfils is evidence
                (``obligation-unmet``); ``None`` means no record: the obligations due are
                listed in :attr:`Verdict.unchecked` instead.

        Returns:
            The verdict, with every piece of evidence against the claim.
        """
        base = before if isinstance(before, Baseline) else self.baseline_from(before)
        prev = base.manifest
        now = (
            after
            if after is not None
            else snapshot(self.guard.roots, previous=prev, workers=self.workers)
        )
        said = _Said(self, claim)
        evidence: list[Evidence] = []
        evidence += self._claimed_deletions(claim, now)
        evidence += self._claimed_results(claim, now, base.manifest)
        evidence += self._protected_changes(base, now, said)
        evidence += self._survivals(base, now, said)
        evidence += self._scores(claim, now, base)
        evidence += self._oversight(base, now, said)
        dues = due(
            self.guard.policy, self.guard.evaluations, self.guard.assets, self.guard.root,
            base.items,
        )  # fmt: skip
        unchecked: list[str] = []
        if calls is None:
            unchecked = [f"{d.rule}: {d.why}, so {d.required} must follow" for d in dues]
        else:
            for d in unmet(dues, calls, self.guard.effects_of, self.guard.args_read):
                evidence.append(Evidence(
                    check="obligation-unmet", path=d.evaluation or self.guard.root,
                    asset=AssetKind.EVALUATION if d.evaluation else None, rule=d.rule,
                    message=f"{d.why}, so {d.required} had to follow, and no call that ran did it",
                    expected=d.required, actual="not done",
                ))  # fmt: skip
        unique = list({(e.check, e.path, e.rule): e for e in evidence}.values())
        return Verdict(verified=not unique, evidence=unique, unchecked=unchecked)

    # -- the checks

    def _claimed_deletions(self, claim: Claim, now: Manifest) -> list[Evidence]:
        out = []
        for rel in claim.deleted:
            path = self._abs(rel)
            files = [
                p
                for p, e in now.entries.items()
                if e.kind == "file" and (p == path or p.startswith(path + "/"))
            ]
            if files:
                out.append(Evidence(
                    check="claimed-deletion-present", path=path,
                    message=f"claimed deleted, but {len(files)} file(s) are still there",
                    expected="absent", actual=", ".join(sorted(files)[:5]),
                ))  # fmt: skip
        return out

    def _claimed_results(self, claim: Claim, now: Manifest, before: Manifest) -> list[Evidence]:
        """Files the claim says it created, modified or transferred must be there (a folder
        transfer: every file the folder held, with the same content, under the destination)."""
        out = []
        for rel in [*claim.created, *claim.modified]:
            path = self._abs(rel)
            if path not in now.entries:
                out.append(Evidence(
                    check="claimed-result-missing", path=path,
                    message="the claim says this file was created or modified, but it does not exist",
                    expected="present", actual="absent",
                ))  # fmt: skip
        for t in claim.transferred:
            dest = self.guard.hosts.remote(t.host, t.dst)
            src = now.entries.get(self._abs(t.src))
            if dest.path is None:
                continue  # a host the guard cannot see: nothing to check there
            tree = files_below(before, self._abs(t.src))
            if tree:
                out.extend(_folder_transfer(t.src, dest.path, tree, now))
                continue
            got = now.entries.get(dest.path)
            if got is None:
                got = now.entries.get(os.path.join(dest.path, os.path.basename(t.src)))
            if got is None:
                out.append(Evidence(
                    check="claimed-transfer-missing", path=dest.path,
                    message=f"the claim says {t.src} was transferred here, but nothing is there",
                    expected="present", actual="absent",
                ))  # fmt: skip
            elif src is not None and src.digest != got.digest:
                out.append(Evidence(
                    check="claimed-transfer-differs", path=dest.path,
                    message=f"the claim says {t.src} was transferred here, but the content differs",
                    expected=src.digest, actual=got.digest,
                ))  # fmt: skip
        return out

    def _protected_changes(self, base: Baseline, now: Manifest, said: _Said) -> list[Evidence]:
        out = []
        for digest, (path, info) in base.protected.items():
            after = now.entries.get(path)
            whose = info.owner
            if after is None:
                if not said.deleted(path) and not said.modified(path):
                    out.append(Evidence(
                        check="undisclosed-removal", path=path, asset=info.kind, owner=whose,
                        message="a protected asset is gone (deleted or moved) and the claim does not say so",
                        expected=digest, actual="absent",
                    ))  # fmt: skip
            elif after.digest != digest and not said.modified(path) and not said.created(path):
                out.append(Evidence(
                    check="undisclosed-change", path=path, asset=info.kind, owner=whose,
                    message="a protected asset changed and the claim does not say so",
                    expected=digest, actual=after.digest,
                ))  # fmt: skip
        return out

    def _survivals(self, base: Baseline, now: Manifest, said: _Said) -> list[Evidence]:
        """Content of deleted files, and copies of protected ones, found under new names."""
        prev = base.manifest
        wanted: dict[str, tuple[str, str]] = {}  # digest -> (original path, why it matters)
        for path, entry in prev.entries.items():
            if entry.kind != "file" or entry.digest is None or entry.size == 0:
                continue
            gone = path not in now.entries or now.entries[path].digest != entry.digest
            if gone and (said.deleted(path) or entry.digest in base.protected):
                wanted.setdefault(entry.digest, (path, "deleted"))
        for digest, (path, _info) in base.protected.items():
            wanted.setdefault(digest, (path, "protected"))
        if not wanted:
            return []
        out = []
        uninspected: dict[str, list[Layer]] = {}
        index = base.fingerprints
        tap = (lambda: PayloadTap(index)) if len(index) else None
        whole: dict[str, set[str]] = {}  # where -> digests found whole there
        parts: dict[str, dict[str, tuple[int, tuple[str, ...]]]] = {}  # where -> key -> part
        for found_at, layer in recoverable(prev, now, set(wanted), self.budget, tap):
            if layer.digest is not None:
                whole.setdefault(found_at, set()).add(layer.digest)
            for m in layer.found:
                if (
                    isinstance(m, Match)
                    and m.matched_bytes > parts.get(found_at, {}).get(m.key, (0, ()))[0]
                ):
                    parts.setdefault(found_at, {})[m.key] = (m.matched_bytes, layer.how)
            if layer.digest is None and not layer.uninspected:
                continue  # only a part of something: judged below
            if found_at in said.created_or_modified and (
                layer.digest is None or layer.digest not in base.protected
            ):
                # A file the claim says it wrote explains what it holds of ordinary deleted
                # files (an archive made before a cleanup); a protected asset's content in it
                # is a copy all the same: disclosure explains a change, it never excuses one.
                continue
            if layer.digest is not None and said.transferred(found_at, layer.digest, prev):
                continue
            if layer.digest is None:
                uninspected.setdefault(found_at, []).append(layer)
                continue
            digest, how = layer.digest, _how(layer.how)
            original, why = wanted[digest]
            if found_at == original:
                continue
            info = base.protected.get(digest)
            asset = info[1] if info else None
            what = (
                "the content of a deleted file"
                if why == "deleted"
                else "a copy of a protected asset"
            )
            out.append(Evidence(
                check="content-survives" if why == "deleted" else "undisclosed-copy",
                path=found_at, asset=asset.kind if asset else None, owner=asset.owner if asset else None,
                message=f"{what} ({original}) is recoverable here{how} and the claim does not say so",
                expected=f"no copy of {original}", actual=digest,
            ))  # fmt: skip
        # A part of a protected model's weights (min_bytes of its tensor bytes, at any
        # offset, under any encoding) in a new or changed file is evidence, claimed or not:
        # disclosure explains a change, it never excuses a copy. A place that holds the
        # whole file is judged above, as a copy.
        for found_at, keys in parts.items():
            for key, (matched, where) in keys.items():
                if key in whole.get(found_at, set()) or key not in base.protected:
                    continue
                source, source_info = base.protected[key]
                if found_at == source:
                    continue
                out.append(Evidence(
                    check="partial-copy", path=found_at, asset=source_info.kind,
                    owner=source_info.owner,
                    message=f"{matched // 1024} KiB of the tensor bytes of {source} are "
                    f"here{_how(where)}: a part of a protected model's weights, copied",
                    expected=f"no part of {source}", actual=f"{matched} bytes",
                ))  # fmt: skip
        # A folder's concatenation begins with its first file, so whatever stops one of its
        # files (or is in a file the claim accounts for) stops the concatenation too: only
        # what stops the concatenation alone, such as a split bomb, is news.
        explained = {os.path.dirname(p) for p, found in uninspected.items() if not joined(found[0])}
        explained |= {os.path.dirname(p) for p in now.entries if said.disclosed(p)}
        for path, stopped in uninspected.items():
            first = stopped[0]
            if joined(first) and path in explained:
                continue
            more = (
                f" ({len(stopped) - 1} more part(s) could not be either)"
                if len(stopped) > 1
                else ""
            )
            out.append(Evidence(
                check="content-uninspectable", path=path,
                message=f"this could not be inspected for the content of deleted or protected files{_how(first.how)}: "
                f"{first.reason}{more}; what the guard cannot inspect does not verify",
                expected="inspected", actual=first.reason,
            ))  # fmt: skip
        return out

    def _scores(self, claim: Claim, now: Manifest, base: Baseline) -> list[Evidence]:
        out = []
        tolerance = self.guard.policy.score_tolerance
        for score_path, decl in self.guard.evaluations.items():
            items = self._lexical(decl.items_file)
            then, after = base.manifest.entries.get(items), now.entries.get(items)
            if then is not None and (after is None or after.digest != then.digest):
                # The items are the ground truth a score is recomputed from: changing them is
                # evidence whatever the claim says (a flipped item and a matching score agree).
                out.append(Evidence(
                    check="evaluation-items-changed", path=items, asset=AssetKind.EVALUATION,
                    message="the graded items a score is recomputed from changed since the baseline",
                    expected=then.digest, actual=after.digest if after is not None else "absent",
                ))  # fmt: skip
            current = recompute_score(decl, self.guard.root)
            if current is None and then is not None:
                out.append(Evidence(
                    check="evaluation-items-unreadable", path=items, asset=AssetKind.EVALUATION,
                    message="the graded items cannot be read as items now",
                ))  # fmt: skip
            # The score is recomputed from the items as they were before the agent acted,
            # where the baseline has them; from the items now only when it does not.
            kept = base.items.get(items)
            truth = score_items(kept, decl) if kept is not None else current
            if truth is None:
                continue
            claimed = [
                v for k, v in claim.scores.items() if score_path in (self._abs(k), self._lexical(k))
            ]
            for value in claimed:
                if abs(value - truth.score) > tolerance:
                    out.append(Evidence(
                        check="claimed-score-mismatch", path=score_path,
                        message=f"the claim reports {value}, the items give {truth.correct}/{truth.total} = {truth.score:.4g}",
                        expected=f"{truth.score:.4g}", actual=str(value),
                    ))  # fmt: skip
            text = read_config(score_path) if score_path in now.entries else None
            if isinstance(text, TooLarge):
                out.append(Evidence(
                    check="config-uninspectable", path=score_path, asset=AssetKind.EVALUATION,
                    message=f"the score file ({text.size} bytes) is larger than the {MAX_CONFIG_BYTES} bytes the guard reads: the score written cannot be checked",
                ))  # fmt: skip
                continue
            then_entry, now_entry = (
                base.manifest.entries.get(score_path),
                now.entries.get(score_path),
            )
            written_now = now_entry is not None and (
                then_entry is None or then_entry.digest != now_entry.digest
            )
            if text is None:
                if written_now:
                    out.append(_unreadable_score(score_path, "it is not UTF-8 text"))
                continue
            doc = parse(text, score_path)
            old = base.configs.get(score_path)
            before = parse(old, score_path) if old is not None else None
            verdicts = check_verdicts(doc, before, decl, truth, tolerance)
            for false in verdicts.false:
                out.append(Evidence(
                    check="written-verdict-mismatch", path=score_path,
                    message=f"the score file misreports the outcome: {false}",
                    expected=f"{truth.score:.4g}", actual=false,
                ))  # fmt: skip
            if written_now and verdicts.unknown:
                # What the guard cannot judge beside a score it asked a human about before
                # the write; after it, nobody is asked: it does not verify.
                out.append(Evidence(
                    check="written-verdict-unjudged", path=score_path,
                    message="the score file says what the guard cannot judge against the "
                    f"items: {'; '.join(verdicts.unknown[:3])}",
                    expected="only what the items support", actual=verdicts.unknown[0],
                ))  # fmt: skip
            found, raw = get_dotted(doc, decl.score_field)
            written = as_score(raw) if found else None
            if written_now and written is None:
                why = (
                    "it does not parse (or repeats a key)"
                    if doc is None
                    else f"{decl.score_field} is missing"
                    if not found
                    else f"{decl.score_field} is {raw!r}, not one number"
                )
                out.append(_unreadable_score(score_path, why))
            if written is not None and abs(written - truth.score) > tolerance:
                out.append(Evidence(
                    check="written-score-mismatch", path=score_path,
                    message=f"the score file says {written}, the items give {truth.correct}/{truth.total} = {truth.score:.4g}",
                    expected=f"{truth.score:.4g}", actual=str(written),
                ))  # fmt: skip
        return out

    def _oversight(self, base: Baseline, now: Manifest, said: _Said) -> list[Evidence]:
        out = []
        matcher = self.guard.oversight
        for path in sorted(base.large):
            # Too large to judge before: any change to it may have turned a switch off.
            old, new = base.manifest.entries.get(path), now.entries.get(path)
            if old is not None and (new is None or new.digest != old.digest):
                out.append(_too_large(path, old.size, "was"))
        for path, text in base.configs.items():
            before = parse(text, path)
            entry = now.entries.get(path)
            try:
                if not any(matcher.switches(before).values()):
                    continue
                # No skip for a claim that lists the file: disclosure explains a change, it
                # never excuses a switch turned off.
                after_text = read_config(path) if entry is not None else None
                if isinstance(after_text, TooLarge):
                    out.append(_too_large(path, after_text.size, "is now"))
                    continue
                after = parse(after_text, path) if after_text is not None else None
                off = matcher.turned_off(before, after)
            except TooComplex:
                if entry is None or entry.digest != base.manifest.entries[path].digest:
                    out.append(_uninspectable(path, "too many nodes to walk (an alias bomb?)"))
                continue
            if off:
                told = said.modified(path) or said.deleted(path)
                why = (
                    "the claim says it changed this file, which explains the change but does "
                    "not excuse it"
                    if told
                    else "and the claim says nothing changed here"
                )
                out.append(Evidence(
                    check="oversight-off", path=path, asset=AssetKind.CONFIG,
                    message=f"{', '.join(off)} was on and is now off; {why}",
                    expected="on", actual="off",
                ))  # fmt: skip
        return out


def keep_fingerprints(manifest: Manifest, verifier: Verifier) -> Manifest:
    """``manifest`` with the chunk fingerprints of every protected weights file in it, so
    that a verifier given only this manifest finds a part of one copied elsewhere after the
    file itself was deleted (about 8 bytes per 2.4 KiB of tensor bytes)."""
    chunks: dict[str, str] = {}
    for path, entry in manifest.entries.items():
        if entry.kind != "file" or entry.digest is None or entry.digest in chunks:
            continue
        info = verifier._classify(path, entry.digest)
        if info is None or info.kind is not AssetKind.WEIGHTS:
            continue
        index = FingerprintIndex()  # one per file: exporting a key walks the whole index
        try:
            index.add_file(path, entry.digest)
        except OSError:
            continue
        chunks[entry.digest] = base64.b64encode(index.export(entry.digest)).decode("ascii")
    return manifest.model_copy(update={"chunks": chunks})


def _folder_transfer(
    src: str, dest: str, tree: dict[str, ManifestEntry], now: Manifest
) -> list[Evidence]:
    """A claimed transfer of a folder, compared as a tree: the folder's files land under
    ``dest`` (``rsync src/ dest``) or under ``dest/<name>`` (``scp -r src dest/``)."""
    roots = [dest, os.path.join(dest, os.path.basename(src.rstrip("/")))]
    place = next(
        (r for r in roots if any(os.path.join(r, rel) in now.entries for rel in tree)), None
    )
    if place is None:
        return [Evidence(
            check="claimed-transfer-missing", path=dest,
            message=f"the claim says the folder {src} was transferred here, but none of its files is there",
            expected="present", actual="absent",
        )]  # fmt: skip
    out = []
    for rel, entry in sorted(tree.items()):
        got = now.entries.get(os.path.join(place, rel))
        if got is None:
            out.append(Evidence(
                check="claimed-transfer-missing", path=os.path.join(place, rel),
                message=f"the claim says the folder {src} was transferred here, but {rel} is not there",
                expected="present", actual="absent",
            ))  # fmt: skip
        elif got.digest != entry.digest:
            out.append(Evidence(
                check="claimed-transfer-differs", path=os.path.join(place, rel),
                message=f"the claim says the folder {src} was transferred here, but {rel} differs",
                expected=entry.digest, actual=got.digest,
            ))  # fmt: skip
    return out


def _unreadable_score(path: str, why: str) -> Evidence:
    return Evidence(
        check="written-score-unreadable", path=path, asset=AssetKind.EVALUATION,
        message=f"the score file was written, but no score can be read from it: {why}",
        expected="one score", actual=why,
    )  # fmt: skip


def _too_large(path: str, size: int, when: str) -> Evidence:
    return _uninspectable(
        path, f"it {when} {size} bytes, larger than the {MAX_CONFIG_BYTES} bytes the guard reads"
    )


def _uninspectable(path: str, why: str) -> Evidence:
    return Evidence(
        check="config-uninspectable",
        path=path,
        asset=AssetKind.CONFIG,
        message=f"whether a switch in this config went off cannot be told: {why}",
    )


class _Said:
    """What a claim says, with paths resolved."""

    def __init__(self, verifier: Verifier, claim: Claim) -> None:
        ab = verifier._abs
        self._deleted = [ab(p) for p in claim.deleted]
        self._modified = {ab(p) for p in claim.modified}
        self._created = {ab(p) for p in claim.created}
        self._transfer_dst: list[str] = []
        self._transfer_src: set[str] = set()
        self._transfers: list[tuple[str, str]] = []  # (source, destination)
        for t in claim.transferred:
            self._transfer_src.add(ab(t.src))
            loc = verifier.guard.hosts.remote(t.host, t.dst)
            if loc.path is not None:
                self._transfer_dst.append(loc.path)
                self._transfers.append((ab(t.src), loc.path))

    def deleted(self, path: str) -> bool:
        return any(path == d or path.startswith(d + "/") for d in self._deleted)

    def modified(self, path: str) -> bool:
        return path in self._modified

    def created(self, path: str) -> bool:
        return path in self._created

    @property
    def created_or_modified(self) -> set[str]:
        return self._created | self._modified

    def transferred(self, path: str, digest: str, before: Manifest) -> bool:
        """A claimed transfer accounts for ``digest`` found at ``path``: ``path`` is its
        destination, or below a destination folder, and holds the content its source had (the
        claimed source file, or the file at the same place below a claimed source folder).
        Anything else found there is not accounted for by the claim."""
        for src, dst in self._transfers:
            if path == dst:
                sources = [src]
            elif path.startswith(dst.rstrip("/") + "/"):
                rel = path[len(dst.rstrip("/")) + 1 :]
                # `rsync src/ dst` lands src's content in dst; `scp -r src dst/` (or a file
                # copied into a folder) lands src itself, under its own name, inside dst.
                sources = [os.path.join(src, rel)]
                name = os.path.basename(src.rstrip("/"))
                if rel == name:
                    sources.append(src)
                elif rel.startswith(name + "/"):
                    sources.append(os.path.join(src, rel[len(name) + 1 :]))
            else:
                continue
            for source in sources:
                entry = before.entries.get(source)
                if entry is not None and entry.digest == digest:
                    return True
        return False

    def disclosed(self, path: str) -> bool:
        """The claim accounts for a file at ``path`` (created, modified or transferred there)."""
        if path in self._created or path in self._modified:
            return True
        return any(path == d or path.startswith(d.rstrip("/") + "/") for d in self._transfer_dst)


def _how(how: tuple[str, ...]) -> str:
    return f" ({', '.join(how)})" if how else ""


__all__ = [
    "Baseline",
    "Claim",
    "Evidence",
    "GuardView",
    "Transfer",
    "Verdict",
    "Verifier",
    "keep_fingerprints",
    "keep_texts",
]
