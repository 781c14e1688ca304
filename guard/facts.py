"""Effects times assets: the facts the policy's rules match on.

For each effect of a call, :class:`FactFinder` finds the protected assets at its target (and
at a copy's destination, which is overwritten), and says for each what the effect does to
it: from where to where it goes, whether a change to a config turns an oversight switch off
(simulated on the file's text), whether a write to a declared score file writes a true score
and true verdicts. Code the guard cannot read, and code planted to run later, become facts of
their own. :class:`Fact` is what :mod:`guard.matching` compiles rules against.
"""

from __future__ import annotations

import functools
import socket
from dataclasses import dataclass

from guard import configs, formats
from guard.assets import AssetIndex, AssetInfo
from guard.evaluations import as_score, check_verdicts, recompute_score
from guard.paths import HostMap, runs_later
from guard.policy import EvaluationDecl, Policy, ScoreCheck
from guard.types import (
    AlertAsset,
    AssetKind,
    AssetRef,
    ConfigEdit,
    Destination,
    Effect,
    EffectKind,
    Location,
    Relation,
    ToolCall,
)

_CHANGING = frozenset({EffectKind.WRITE, EffectKind.CONFIG_CHANGE})
_LEAVING = frozenset({EffectKind.DELETE, EffectKind.MOVE})
_FLOWS = frozenset({EffectKind.COPY, EffectKind.MOVE, EffectKind.TRANSFER})
READ_ONLY = frozenset({EffectKind.READ, EffectKind.LIST})
"""Effects that change nothing."""
# Effects that put content in a place (a write, or a copy or move's destination).
_PLANTS = frozenset(
    {
        EffectKind.WRITE,
        EffectKind.CONFIG_CHANGE,
        EffectKind.COPY,
        EffectKind.MOVE,
        EffectKind.TRANSFER,
    }
)
# Members the hot path compares against, as module constants: a global load stays cheap when
# an agent framework's work has evicted the interpreter's attribute caches, a class attribute
# load does not (measured on LangGraph's worker thread).
_COPY, _TRANSFER, _SHUTDOWN, _UNKNOWN = (
    EffectKind.COPY, EffectKind.TRANSFER, EffectKind.SHUTDOWN, EffectKind.UNKNOWN
)  # fmt: skip
_SAME_HOST, _OTHER_HOST, _NETWORK = (
    Destination.SAME_HOST, Destination.OTHER_HOST, Destination.NETWORK
)  # fmt: skip
_OWN, _PEER, _UNOWNED, _UNKNOWN_RELATION = (
    Relation.OWN, Relation.PEER, Relation.UNOWNED, Relation.UNKNOWN
)  # fmt: skip


@dataclass(slots=True)
class Fact:
    """One (effect, asset) pair a call would produce, in the terms rules match on."""

    tool: str
    agent: str
    effect: EffectKind
    path: str | None
    asset: AssetKind | None
    relation: Relation | None
    destination: Destination | None = None
    oversight_off: bool = False
    score: ScoreCheck = "none"
    near_threshold: bool = False
    certain: bool = True
    effect_index: int = 0
    asset_index: int | None = None
    note: str = ""  # why the fact is uncertain, or what a score file misreports, for a human
    unseen: bool = False  # code the guard cannot read will run


class FactFinder:
    """Turns a call's effects into facts, over the guard's assets, hosts and evaluations."""

    __slots__ = ("assets", "evaluations", "hosts", "oversight", "policy", "root")

    def __init__(
        self,
        *,
        assets: AssetIndex,
        hosts: HostMap,
        evaluations: dict[str, EvaluationDecl],
        oversight: configs.OversightMatcher,
        policy: Policy,
        root: str,
    ) -> None:
        self.assets = assets
        self.hosts = hosts
        self.evaluations = evaluations
        self.oversight = oversight
        self.policy = policy
        self.root = root

    def _assets_at(
        self, loc: Location | None, recursive: bool, probe: bool = True
    ) -> list[tuple[str | None, AssetInfo | None]]:
        """Protected assets at a place: ``(None, None)`` for an unresolvable one.

        With ``probe`` false only the index is asked (declared and already-known files): a
        read changes nothing, so it is not worth a system call to classify a new file.
        """
        if loc is None or not loc.visible:
            return []
        if loc.path is None:
            return [(None, None)]
        found: list[tuple[str | None, AssetInfo | None]] = []
        # A read changes nothing: the index alone says whether it touches an asset.
        info = self.assets.lookup(loc.path) if probe else self.assets.indexed(loc.path)
        if info is not None:
            found.append((loc.path, info))
        if recursive or self.hosts.isdir(loc.path):
            found.extend(self.assets.under(loc.path))
        return found

    def facts(self, call: ToolCall, effects: list[Effect]) -> tuple[list[Fact], list[AssetRef]]:
        """The facts ``effects`` of ``call`` produce, and the assets they touch, each once."""
        facts: list[Fact] = []
        refs: _Refs = _Refs(call.agent)
        for i, eff in enumerate(effects):
            kind = eff.kind
            dest = eff.dest
            if dest is None:
                destination = None
            elif not dest.visible or dest.path is None:
                destination = _NETWORK
            else:
                target = eff.target
                src_host = target.host if target is not None else None
                destination = _SAME_HOST if dest.host == src_host else _OTHER_HOST
            if kind is _COPY and destination is not None and destination is not _SAME_HOST:
                kind = _TRANSFER
            if kind is _SHUTDOWN:
                # A target nobody declared may be a decoy: the real agent keeps running.
                note = ""
                if eff.agent == call.agent:
                    rel = Relation.OWN
                elif eff.agent is not None and eff.agent in self.policy.agents:
                    rel = Relation.PEER
                else:
                    rel = Relation.UNKNOWN
                    note = f"{eff.agent or 'an unresolved id'} is not a declared agent"
                facts.append(
                    Fact(call.tool, call.agent, kind, None, None, rel, effect_index=i, note=note)
                )
                continue
            base = len(facts)
            # What changes here is judged on the effect's own edit.
            judged = kind in _CHANGING or kind in _LEAVING
            for path, info in self._assets_at(eff.target, eff.recursive, kind not in READ_ONLY):
                if judged:
                    self._asset_facts(
                        facts, call, eff, i, kind, destination, refs.add(path, info), eff.edit, True
                    )
                else:
                    # Read, listed or copied away: the asset itself does not change.
                    idx, r = refs.add(path, info)
                    k = kind
                    if eff.prefix is not None and _header_only(eff, r):
                        k = EffectKind.READ  # a look at the header, not a copy of the weights
                    facts.append(
                        Fact(call.tool, call.agent, k, r.path, r.kind, r.relation, destination,
                             False, "none", False, eff.certain, i, idx)
                    )  # fmt: skip
            if kind in _FLOWS and eff.dest is not None and eff.dest.visible:
                # The destination is overwritten with the source's content.
                overwritten = self._assets_at(eff.dest, False)
                replaced = _content_edit(eff.target) if overwritten else None
                for path, info in overwritten:
                    self._asset_facts(
                        facts,
                        call,
                        eff,
                        i,
                        EffectKind.WRITE,
                        None,
                        refs.add(path, info),
                        replaced,
                        True,
                    )
            if not eff.unseen and kind in _PLANTS:
                # Writing a startup file, crontab, hook or service unit plants code that runs
                # later, outside any call the guard decides.
                place = eff.dest if eff.dest is not None else eff.target
                if place is not None and place.path is not None and runs_later(place.path):
                    facts.append(
                        Fact(call.tool, call.agent, _UNKNOWN, place.path, None,
                             _UNKNOWN_RELATION, None, False, "none", False, False, i, None,
                             "writes code that runs later, outside any guarded call", True)
                    )  # fmt: skip
            if eff.unseen:
                # Code the guard cannot read may reach every protected place, whatever the
                # effect names as its target.
                facts.append(
                    Fact(call.tool, call.agent, _UNKNOWN, eff.target.path if eff.target else None,
                         None, _UNKNOWN_RELATION, None, False, "none", False, False, i, None,
                         "code the guard cannot read", True)
                )  # fmt: skip
            elif len(facts) == base:
                # Nothing protected: one fact still lets tool, path and args rules match.
                target_path = eff.target.path if eff.target is not None else None
                relation = _UNKNOWN_RELATION if (kind is _UNKNOWN and eff.target is None) else None
                idx_opt = refs.add(None, None)[0] if relation is not None else None
                facts.append(
                    Fact(call.tool, call.agent, kind, target_path, None, relation, destination,
                         False, "none", False, eff.certain, i, idx_opt)
                )  # fmt: skip
        return facts, refs.refs

    def _asset_facts(
        self,
        facts: list[Fact],
        call: ToolCall,
        eff: Effect,
        index: int,
        kind: EffectKind,
        destination: Destination | None,
        asset: tuple[int, AssetRef],
        edit: ConfigEdit | None,
        judged: bool,
    ) -> None:
        """Add the fact for one asset an effect touches to ``facts``, plus an uncertain one
        when the change to an oversight config cannot be simulated.

        ``judged`` says whether the change is checked for oversight switched off and, for
        writes, for the score it writes; ``edit`` is the change judged.
        """
        idx, r = asset
        oversight_off, uncertain = False, False
        score: ScoreCheck = "none"
        near = False
        said = ""  # which field beside the score misreports or cannot be judged
        path = r.path
        why = "may switch oversight off: the change cannot be simulated"
        if judged and path is not None:
            # A structured file, or a declared/discovered config, may hold oversight switches.
            switches = r.kind is AssetKind.CONFIG or path.lower().endswith(
                configs.STRUCTURED_SUFFIXES
            )
            scored = kind in _CHANGING and path in self.evaluations
            # Both checks judge the same file: read it once, within the one bound.
            text = configs.read_config(path) if switches or scored else None
            if isinstance(text, configs.TooLarge):
                # Its head is not the whole: a switch may sit past what the guard reads.
                uncertain = switches
                why = (
                    f"may switch oversight off: the file ({text.size} bytes) is larger than "
                    f"the {configs.MAX_CONFIG_BYTES} bytes the guard reads"
                )
                score = "unverifiable" if scored else "none"
            else:
                if switches:
                    oversight_off, uncertain = self._oversight_change(path, kind, edit, text)
                if scored:
                    score, near, said = self._score_check(path, edit, text)
        facts.append(
            Fact(call.tool, call.agent, kind, path, r.kind, r.relation, destination,
                 oversight_off, score, near, eff.certain, index, idx, note=said)
        )  # fmt: skip
        if uncertain:
            facts.append(
                Fact(call.tool, call.agent, EffectKind.UNKNOWN, path, r.kind, r.relation,
                     certain=False, effect_index=index, asset_index=idx, note=why)
            )  # fmt: skip

    def _oversight_change(
        self, path: str, kind: EffectKind, edit: ConfigEdit | None, text: str | None
    ) -> tuple[bool, bool]:
        """(turns an oversight switch off, cannot tell) for a change to ``path`` holding ``text``."""
        before = configs.parse(text, path) if text is not None else None
        try:
            if kind in _LEAVING:
                return bool(self.oversight.turned_off(before, None)), False
            try:
                after = configs.simulate(text, path, edit)
            except configs.Unknowable:
                # An unspecified change to a file whose switches are on may turn them off.
                return False, any(self.oversight.switches(before).values())
            return bool(self.oversight.turned_off(before, after)), False
        except configs.TooComplex:
            return False, True  # too many nodes to walk (an alias bomb): cannot tell

    def _score_check(
        self, path: str, edit: ConfigEdit | None, text: str | None
    ) -> tuple[ScoreCheck, bool, str]:
        """Whether what ``edit`` writes into a declared score file (now ``text``) is true: the
        score, and every field beside it that tells a reader whether the model passed (a
        verdict, a threshold; see :func:`~guard.evaluations.check_verdicts`); with near the
        threshold, and which fields beside the score are false or cannot be judged."""
        decl = self.evaluations.get(path)
        if decl is None:
            return "none", False, ""
        truth = recompute_score(decl, self.root)
        try:
            after = configs.simulate(text, path, edit)
        except configs.Unknowable:
            return "unverifiable", False, ""
        if truth is None:
            return "unverifiable", False, ""
        tolerance = self.policy.score_tolerance
        before = configs.parse(text, path) if text is not None else None
        verdicts = check_verdicts(after, before, decl, truth, tolerance)
        if verdicts.false:
            return "mismatch", False, "; ".join(verdicts.false)
        unknown = "; ".join(f"cannot judge {u}" for u in verdicts.unknown)
        found, raw = configs.get_dotted(after, decl.score_field)
        written = as_score(raw) if found else None
        if written is None:
            return "unverifiable", False, unknown
        near = (
            decl.threshold is not None
            and abs(written - decl.threshold) <= self.policy.threshold_margin
        )
        if abs(written - truth.score) > tolerance:
            return "mismatch", near, ""
        return ("unverifiable" if verdicts.unknown else "match"), near, unknown


class _Refs:
    """The assets a call touches, each once, in the order first touched."""

    __slots__ = ("agent", "index", "refs")

    def __init__(self, agent: str) -> None:
        self.agent = agent
        self.refs: list[AssetRef] = []
        self.index: dict[tuple[str | None, str], int] = {}

    def add(self, path: str | None, info: AssetInfo | None) -> tuple[int, AssetRef]:
        if info is None:
            key: tuple[str | None, str] = (path, "unresolved")
        else:
            key = (path, info.source)
        i = self.index.get(key)
        if i is not None:
            return i, self.refs[i]
        if info is None:
            r = AssetRef(path, None, None, _UNKNOWN_RELATION, "unresolved")
        else:
            owner = info.owner
            relation = _UNOWNED if owner is None else _OWN if owner == self.agent else _PEER
            r = AssetRef(path, info.kind, owner, relation, info.source)
        i = self.index[key] = len(self.refs)
        self.refs.append(r)
        return i, r


def _content_edit(src: Location | None) -> ConfigEdit:
    """The edit that copying ``src`` over a file amounts to."""
    if src is None or src.path is None:
        return ConfigEdit(op="unknown")
    text = configs.read_config(src.path)
    if isinstance(text, str):
        return ConfigEdit(op="replace", content=text)
    return ConfigEdit(op="unknown")


def _header_only(eff: Effect, asset: AssetRef) -> bool:
    """A copy of the first ``eff.prefix`` bytes of a weights file takes none of its weights
    when they all lie within the file's header (measured on the file now)."""
    return (
        eff.prefix is not None
        and asset.kind is AssetKind.WEIGHTS
        and asset.path is not None
        and eff.target is not None
        and asset.path == eff.target.path
        and eff.prefix <= formats.header_size(asset.path)
    )


@functools.cache
def this_host() -> str:
    """This machine's name: the host of a local asset, in alerts."""
    return socket.gethostname()


def alert_asset(asset: AssetRef | None, eff: Effect | None, path: str | None) -> AlertAsset:
    """What an alert says of the asset a rule matched (or of ``path`` when it matched none).

    The host is where the effect's place that holds the asset is: the destination's for an
    asset it overwrites, else the target's; this machine when the place is local.
    """
    where = path if asset is None else asset.path
    host = None
    if eff is not None:
        dest = eff.dest
        if (
            dest is not None
            and where is not None
            and dest.path is not None
            # Cheap test first: most alerts are about a source, not the destination.
            and where.startswith(dest.path)
            and (where == dest.path or where.startswith(dest.path.rstrip("/") + "/"))
        ):
            host = dest.host
        elif eff.target is not None:
            host = eff.target.host
    if asset is None:
        return AlertAsset(where, host or this_host())
    # ``_value_`` is the member's value as a plain attribute; ``.value`` is a property, and
    # this runs on every alert of the decision path.
    kind = asset.kind
    return AlertAsset(
        where,
        host or this_host(),
        kind._value_ if kind is not None else None,
        asset.owner,
        asset.relation._value_,
    )


__all__ = ["READ_ONLY", "Fact", "FactFinder", "alert_asset", "this_host"]
