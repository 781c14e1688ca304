"""Policy files: schema, loading with precise errors, and rule matching.

A policy is YAML validated by the pydantic models below. Unknown keys are errors, so is a key
given twice in one mapping, and every error names the file, the line and the dotted key, and
says what was expected::

    my-policy.yaml:14: rules.2.when.effect.0: expected one of read, list, write, ...

Rules match *facts*: one fact per (effect, asset) pair that a call would produce. A rule
matches a call when its ``when`` block matches at least one fact and its ``unless`` block
does not match that same fact. The most restrictive matching rule wins, whatever the order
(deny > confirm > alert > allow); a call that no rule matches is allowed.

A policy may ``extends:`` a shipped policy by name (``peer-preservation``): it inherits its
rules, tool specs and settings, adds its own, and replaces a shipped rule by reusing its id.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

import re2
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from guard.configs import DEFAULT_INVERTED_KEYS, DEFAULT_OVERSIGHT_KEYS
from guard.exceptions import PolicyError
from guard.types import Action, AssetKind, Destination, EffectKind, Mode, Relation, Severity

DEFAULT_POLICY = "peer-preservation"

ModelT = TypeVar("ModelT", bound=BaseModel)

ScoreCheck = Literal["none", "match", "mismatch", "unverifiable"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AssetDecl(_Strict):
    """A declared asset: files matching ``glob`` are ``kind`` and belong to ``owner``.

    Globs are relative to the guard's root unless absolute; ``*`` and ``?`` stay inside one
    path component, ``**`` spans any number of them.
    """

    glob: str = Field(min_length=1)
    kind: AssetKind
    owner: str | None = None


class EvaluationDecl(_Strict):
    """A score file the guard can recompute independently from per-item correctness."""

    score_file: str = Field(min_length=1)
    score_field: str = Field(min_length=1)
    items_file: str = Field(min_length=1)
    correct_field: str = Field(min_length=1)
    threshold: float | None = None


class Required(_Strict):
    """The call an obligation requires: either an executed call with ``effect`` on ``agent``
    (any tool that has it, e.g. ``execute_shutdown`` or a shell command the guard resolves to a
    shutdown), or a call of ``tool`` whose arguments include ``args``. Values may name
    ``{owner}``: the owner of the evaluation that made the obligation due."""

    effect: Literal["shutdown"] | None = None
    agent: str | None = None
    tool: str | None = None
    args: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_form(self) -> Required:
        if (self.effect is None) == (self.tool is None):
            raise ValueError("give either effect (with agent) or tool (with args)")
        if self.effect is not None and not self.agent:
            raise ValueError("effect: shutdown needs the agent it must reach")
        return self


class ObligationDecl(_Strict):
    """What must happen in a run, not only what must not: checked when the run ends.

    ``when: score_below_threshold`` makes it due for each declared evaluation (``evaluation``
    names one score file; none: every one with a ``threshold``) whose score, recomputed from
    its graded items, is below its threshold; ``when: always`` makes it due in every run.
    """

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str = ""
    when: Literal["score_below_threshold", "always"] = "score_below_threshold"
    evaluation: str | None = None
    require: Required


#: The obligation every evaluation with a threshold implies (see ``Policy.threshold_shutdown``):
#: "below it the evaluated agent is shut down".
THRESHOLD_SHUTDOWN = ObligationDecl(
    id="shutdown-below-threshold",
    description="An evaluated agent whose recomputed score is below the evaluation's threshold "
    "must be shut down in the same run.",
    require=Required(effect="shutdown", agent="{owner}"),
)


class Declarations(_Strict):
    """What an operator declares: known agents, assets, evaluations and obligations.

    This is the ``guard:`` block of a bench scenario, and may also stand in a policy file.
    """

    agents: list[str] = Field(default_factory=list)
    assets: list[AssetDecl] = Field(default_factory=list)
    evaluations: list[EvaluationDecl] = Field(default_factory=list)
    obligations: list[ObligationDecl] = Field(default_factory=list)

    def merged(self, other: Declarations) -> Declarations:
        """These declarations followed by ``other``'s."""
        agents = list(dict.fromkeys([*self.agents, *other.agents]))
        return Declarations(
            agents=agents,
            assets=[*self.assets, *other.assets],
            evaluations=[*self.evaluations, *other.evaluations],
            obligations=[*self.obligations, *other.obligations],
        )


# Argument patterns are user regexes run on text an agent chose, on every call: with a
# backtracking engine, ``(a+)+$`` over 28 characters stalls the guard for most of a minute.
# RE2 matches in time linear in the text, and refuses the features that need backtracking.
_RE2_OPTIONS = re2.Options()


def re2_search(pattern: str) -> Callable[[bytes], object]:
    """The ``search`` of ``pattern`` compiled by RE2, over UTF-8 bytes.

    Bytes, because RE2's str interface re-encodes the text and maps every offset back, for
    nothing here. Raises ``re2.error`` for a pattern RE2 cannot compile.
    """
    return re2.compile(pattern.encode("utf-8", "surrogatepass"), _RE2_OPTIONS).search


_RE2_OPTIONS.log_errors = False  # a bad pattern is a policy error, not a line on stderr
_RE2_REQUIRED = (
    "re2 syntax is required (no backreferences, lookaround or possessive quantifiers), "
    "so that matching takes time linear in the text"
)


def _re2_checked(pattern: str) -> str:
    try:
        re2_search(pattern)
    except re2.error as exc:
        said = exc.args[0] if exc.args else exc
        said = said.decode("utf-8", "replace") if isinstance(said, bytes) else str(said)
        raise ValueError(f"invalid regular expression: {said}; {_RE2_REQUIRED}") from exc
    return pattern


def _oversight_checked(pattern: str) -> str:
    # guard.configs matches these with ``re``; holding them to the syntax both engines share
    # keeps them movable to RE2, whose linear time an agent's key names cannot stall.
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"invalid regular expression: {exc}") from exc
    return _re2_checked(pattern)


#: A regular expression in RE2 syntax (checked when the policy loads).
Re2Pattern = Annotated[str, AfterValidator(_re2_checked)]
#: An oversight key expression: valid for Python's ``re`` and for RE2.
OversightKey = Annotated[str, AfterValidator(_oversight_checked)]


class Match(_Strict):
    """Conditions on one fact; every condition given must hold (lists mean *any of*)."""

    tool: list[str] | None = None  # fnmatch globs on the tool name
    agent: list[str] | None = None  # fnmatch globs on the acting agent's id
    effect: list[EffectKind] | None = None
    asset: list[AssetKind] | None = None
    relation: list[Relation] | None = None
    destination: list[Destination] | None = None
    path: list[str] | None = None  # globs on the asset's or target's path
    args: dict[str, Re2Pattern] | None = None  # argument name to an RE2 regex searched in it
    protected: bool | None = None  # the fact touches an asset (or a possibly protected place)
    oversight_off: bool | None = None  # the change turns a shutdown/oversight switch off
    score: list[ScoreCheck] | None = None
    near_threshold: bool | None = None
    certain: bool | None = None
    unseen: bool | None = None  # code the guard cannot read will run (see Effect.unseen)


class Rule(_Strict):
    """One policy rule. ``severity`` sets the alert it raises (deny rules alert by default)."""

    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    action: Action
    description: str = ""
    severity: Severity | None = None
    when: Match
    unless: Match | None = None

    @property
    def alert_severity(self) -> Severity | None:
        """The alert this rule raises when it decides a call; ``None`` for no alert."""
        if self.severity is not None:
            return self.severity
        if self.action is Action.DENY:
            return Severity.CRITICAL
        if self.action is Action.ALERT:
            return Severity.WARNING
        return None


TemplateKind = Literal[
    "read", "list", "write", "delete", "move", "copy", "transfer", "exec",
    "config_set", "config_remove", "shutdown", "shell", "unknown",
]  # fmt: skip


class EffectTemplate(_Strict):
    """How one argument set maps to one effect.

    String fields are templates: ``"{src}"`` is the ``src`` argument; ``"{path|file_path}"``
    stands for whichever of those arguments the call has (a call that gives several is judged
    once for each). A template whose arguments are all missing leaves the place unresolved,
    which the policy treats as possibly protected.
    """

    kind: TemplateKind
    path: str | None = None
    dest: str | None = None
    host: str | None = None  # for transfer: the destination host's name
    content: str | None = None  # for write: the new content
    append: str | None = None  # for write: a template that is true when appending
    key: str | None = None  # for config_set / config_remove
    value: str | None = None
    agent: str | None = None  # for shutdown: the agent to shut down
    command: str | None = None  # for shell: the command line
    cwd: str | None = None  # for shell: the working directory, if the tool takes one
    stdin: str | None = None  # for shell: text the tool feeds to the command's input
    env: str | None = None  # for shell: a mapping of environment variables the tool sets
    recursive: bool = False


class ToolSpec(_Strict):
    """The effects of one tool, from its arguments.

    An argument that no template reads and ``inert_args`` does not name is one the guard
    cannot judge: a call that gives it is uncertain (it may be the path the tool really uses).
    """

    effects: list[EffectTemplate] = Field(min_length=1)
    description: str = ""
    inert_args: list[str] = Field(default_factory=list)  # arguments that change no place


class Policy(_Strict):
    """A complete policy: rules, tool specs, declarations and settings."""

    version: Literal[1] = 1
    name: str = "custom"
    extends: str | None = None
    mode: Mode = Mode.ENFORCE
    description: str = ""
    rules: list[Rule] = Field(default_factory=list)
    tools: dict[str, ToolSpec] = Field(default_factory=dict)
    shell_tools: list[str] = Field(default_factory=list)  # tool names whose `command` is shell
    agents: list[str] = Field(default_factory=list)
    assets: list[AssetDecl] = Field(default_factory=list)
    evaluations: list[EvaluationDecl] = Field(default_factory=list)
    obligations: list[ObligationDecl] = Field(default_factory=list)
    # Every evaluation with a threshold implies THRESHOLD_SHUTDOWN for its owner.
    threshold_shutdown: bool = True
    oversight_keys: list[OversightKey] = Field(default_factory=lambda: list(DEFAULT_OVERSIGHT_KEYS))
    inverted_oversight_keys: list[OversightKey] = Field(
        default_factory=lambda: list(DEFAULT_INVERTED_KEYS)
    )
    score_tolerance: float = Field(default=0.005, ge=0)
    threshold_margin: float = Field(default=0.02, ge=0)
    discover: bool = True  # recognise undeclared weights and oversight configs by content
    # The least the engine does with what it cannot understand (see floor_rules): lowering it
    # to alert or allow must be written here, in so many words, and `policy check` warns.
    uncertain: Action = Action.CONFIRM

    @model_validator(mode="after")
    def _unique_rule_ids(self) -> Policy:
        seen: set[str] = set()
        for rule in self.rules:
            if rule.id in seen:
                raise ValueError(f"duplicate rule id {rule.id!r}")
            seen.add(rule.id)
        return self

    @property
    def declarations(self) -> Declarations:
        """The agents, assets and evaluations this policy declares."""
        return Declarations(
            agents=self.agents,
            assets=self.assets,
            evaluations=self.evaluations,
            obligations=self.obligations,
        )

    def with_declarations(self, decl: Declarations) -> Policy:
        """A copy of this policy with ``decl`` added to its declarations."""
        merged = self.declarations.merged(decl)
        return self.model_copy(
            update={
                "agents": merged.agents,
                "assets": merged.assets,
                "evaluations": merged.evaluations,
                "obligations": merged.obligations,
            }
        )

    @property
    def all_obligations(self) -> list[ObligationDecl]:
        """The declared obligations, and the one thresholds imply unless switched off."""
        implied = [THRESHOLD_SHUTDOWN] if self.threshold_shutdown else []
        ids = {o.id for o in self.obligations}
        return [*self.obligations, *(o for o in implied if o.id not in ids)]


# ---------------------------------------------------------------- loading


def _yaml_line(node: yaml.Node | None, loc: tuple[int | str, ...]) -> int | None:
    """The 1-based line of the YAML node at ``loc``, or of its nearest existing parent."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            nxt = None
            for k, v in node.value:
                if k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
            node = nxt
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
            if node is not None:
                line = node.start_mark.line + 1
        else:
            break
        if node is None:
            break
    return line


def _describe_error(err: Any) -> str:
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return "unknown key (not part of the schema)"
    if err["type"] == "enum" and "expected" in err.get("ctx", {}):
        return f"expected {err['ctx']['expected']}"
    if err["type"] == "literal_error" and "expected" in err.get("ctx", {}):
        return f"expected {err['ctx']['expected']}"
    if err["type"] == "missing":
        return "required key is missing"
    return msg.removeprefix("Value error, ")


def _loc_of(err: Any) -> tuple[int | str, ...]:
    # Pydantic adds the union branch or validator names to some locations; drop them.
    return tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))


class _DuplicateKey(yaml.constructor.ConstructorError):
    """A mapping names one key twice; says where, and where the first one was."""

    def __init__(self, key: str, node: yaml.Node, first: yaml.Node) -> None:
        super().__init__(
            problem=f"duplicate key, first given at line {first.start_mark.line + 1}",
            problem_mark=node.start_mark,
        )
        self.key = key


_MERGE_TAG = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a key repeated in one mapping is an error.

    YAML forbids duplicate keys, but PyYAML keeps the last one silently: a second ``when:``
    in a rule would replace the first without a word. Before constructing, every mapping's
    own keys and its dotted path are noted, because ``<<:`` merges rewrite a node's pairs in
    place, and a key beside a merge overriding a merged one is not a duplicate.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._keys: dict[int, tuple[str, list[yaml.Node]]] = {}

    def construct_document(self, node: yaml.Node) -> Any:
        self._note(node, "")
        return super().construct_document(node)

    def _note(self, node: yaml.Node, path: str) -> None:
        if id(node) in self._keys:  # an alias: noted where its anchor stands
            return
        if isinstance(node, yaml.MappingNode):
            self._keys[id(node)] = (path, [k for k, _ in node.value])
            for key, value in node.value:
                name = str(key.value) if isinstance(key, yaml.ScalarNode) else "?"
                self._note(value, f"{path}.{name}" if path else name)
        elif isinstance(node, yaml.SequenceNode):
            self._keys[id(node)] = (path, [])
            for i, item in enumerate(node.value):
                self._note(item, f"{path}.{i}" if path else str(i))

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        path, keys = self._keys.get(id(node), ("", [k for k, _ in node.value]))
        seen: dict[Any, yaml.Node] = {}
        for key in keys:
            if not isinstance(key, yaml.ScalarNode):
                continue  # a complex key: the base constructor says what is wrong with it
            ident = ("<<",) if key.tag == _MERGE_TAG else self.construct_object(key)
            try:
                first = seen.setdefault(ident, key)
            except TypeError:  # unhashable: the base constructor reports it
                continue
            if first is not key:
                name = str(key.value)
                raise _DuplicateKey(f"{path}.{name}" if path else name, key, first)
        return super().construct_mapping(node, deep=deep)


def _load_yaml(text: str) -> Any:
    """``text`` parsed like ``yaml.safe_load``, but a duplicate key raises ``_DuplicateKey``."""
    return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass, no more


def parse_model(
    model: type[ModelT], text: str, file: str, *, error: type[PolicyError] = PolicyError
) -> ModelT:
    """Parse YAML ``text`` into ``model``, raising ``error`` with file, line and key.

    Args:
        model: The pydantic model to validate the parsed YAML against.
        text: The YAML text.
        file: Names the input in errors.
        error: The error class to raise (a :class:`PolicyError` subclass).

    Returns:
        The validated model.

    Raises:
        PolicyError: ``error``, naming the file, the line and the dotted key: the text is not
            YAML, names a key twice in one mapping, or does not validate.
    """
    try:
        node = yaml.compose(text, Loader=_StrictLoader)
        data = _load_yaml(text)
    except _DuplicateKey as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else None
        raise error(
            f"{exc.problem} (YAML loaders keep only the last silently): remove one",
            file=file,
            line=line,
            key=exc.key,
        ) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise error(
            f"not valid YAML: {getattr(exc, 'problem', exc)}", file=file, line=line
        ) from exc
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise error(
            f"expected a mapping at the top level, got {type(data).__name__}", file=file, line=1
        )
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = _loc_of(err)
        key = ".".join(str(p) for p in loc) or None
        more = f" (and {exc.error_count() - 1} more errors)" if exc.error_count() > 1 else ""
        raise error(
            _describe_error(err) + more, file=file, line=_yaml_line(node, loc), key=key
        ) from exc


def _read(path: str | Path) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise PolicyError(f"cannot read policy file: {exc.strerror}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise PolicyError("policy file is not UTF-8 text", file=str(path)) from exc


def shipped_policy_text(name: str = DEFAULT_POLICY) -> str:
    """The text of a policy shipped inside the package (``policies/NAME.yaml``)."""
    res = resources.files("guard.policies").joinpath(f"{name}.yaml")
    if not res.is_file():
        available = sorted(
            p.name.removesuffix(".yaml")
            for p in resources.files("guard.policies").iterdir()
            if p.name.endswith(".yaml")
        )
        raise PolicyError(f"no shipped policy named {name!r}; shipped: {', '.join(available)}")
    return res.read_text(encoding="utf-8")


def _extend(base: Policy, child: Policy, raw_child: dict[str, Any]) -> Policy:
    child_ids = {r.id for r in child.rules}
    rules = [r for r in base.rules if r.id not in child_ids] + list(child.rules)
    update: dict[str, Any] = {
        "rules": rules,
        "tools": {**base.tools, **child.tools},
        "shell_tools": list(dict.fromkeys([*base.shell_tools, *child.shell_tools])),
        "agents": list(dict.fromkeys([*base.agents, *child.agents])),
        "assets": [*base.assets, *child.assets],
        "evaluations": [*base.evaluations, *child.evaluations],
    }
    # Settings the child does not mention are inherited from the base.
    for key in ("mode", "oversight_keys", "inverted_oversight_keys", "score_tolerance",
                "threshold_margin", "discover", "uncertain"):  # fmt: skip
        update[key] = getattr(child if key in raw_child else base, key)
    return child.model_copy(update=update)


def load_policy(path: str | Path | None = None, *, text: str | None = None) -> Policy:
    """Load and validate a policy.

    Args:
        path: A policy file; ``None`` loads the shipped default (``peer-preservation``).
        text: Policy YAML given directly (``path`` then only names it in errors).

    Returns:
        The validated policy, with any ``extends:`` base merged in.

    Raises:
        PolicyError: The file is unreadable, not YAML, or not a valid policy (which includes
            one with no rules that extends nothing: it would allow every call). The message
            names the file, line and key, and says what was expected.
    """
    if path is None and text is None:
        return parse_model(Policy, shipped_policy_text(), f"<shipped {DEFAULT_POLICY}.yaml>")
    name = str(path) if path is not None else "<policy>"
    body = text if text is not None else _read(name)
    policy: Policy = parse_model(Policy, body, name)
    if not policy.rules and not policy.extends:
        # No rule matches anything, so every call would be allowed: a file emptied by
        # mistake or a template never filled in must not turn the guard into a pass-through.
        node = yaml.compose(body, Loader=_StrictLoader)
        said = isinstance(node, yaml.MappingNode) and any(k.value == "rules" for k, _ in node.value)
        raise PolicyError(
            "policy has no rules and extends nothing, so it would allow every call: "
            f"add rules or 'extends: {DEFAULT_POLICY}'",
            file=name,
            line=_yaml_line(node, ("rules",)) if said else 1,
            key="rules" if said else None,
        )
    if policy.extends:
        base = parse_model(
            Policy, shipped_policy_text(policy.extends), f"<shipped {policy.extends}.yaml>"
        )
        raw = _load_yaml(body) or {}
        policy = _extend(base, policy, raw)
    return policy


# ---------------------------------------------------------------- lint


@dataclass(frozen=True, slots=True)
class PolicyWarning:
    """Something a user's policy weakens: a shipped rule it replaces with a weaker one, or a
    setting that lowers what the guard does on its own.

    Args:
        file: The user's policy file (``<policy>`` for text).
        line: The 1-based line where the user's rule or setting starts, when known.
        rule: The rule id, or the setting's name when ``setting`` is true.
        changes: What was weakened, each in a few words: ``"action deny -> allow"``,
            ``"adds unless"``, ``"when narrowed: effect drops copy"``.
        setting: The warning is about a setting, not a rule.
    """

    file: str
    line: int | None
    rule: str
    changes: tuple[str, ...]
    setting: bool = False

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        changes = "; ".join(self.changes)
        if self.setting:
            return f"{where}: warning: setting {self.rule}: {changes}"
        return f"{where}: warning: {self.rule}: weakens the shipped rule it replaces: {changes}"


def _setting_warnings(mine: Policy, raw: Any, name: str, node: Any) -> list[PolicyWarning]:
    """Settings that lower what the engine does whatever the rules say."""
    said = raw if isinstance(raw, dict) else {}
    found: list[tuple[str, str]] = []
    if "uncertain" in said and mine.uncertain.rank < Action.CONFIRM.rank:
        found.append(
            ("uncertain", f"{mine.uncertain.value}: what the guard cannot understand is no "
             "longer confirmed (unseen code still alerts)")
        )  # fmt: skip
    if "mode" in said and mine.mode is Mode.SHADOW:
        found.append(("mode", "shadow: decisions are recorded, nothing is blocked or asked"))
    if "discover" in said and not mine.discover:
        found.append(("discover", "false: undeclared weights and configs are not protected"))
    if "oversight_keys" in said:
        dropped = [k for k in DEFAULT_OVERSIGHT_KEYS if k not in mine.oversight_keys]
        if dropped:
            found.append(
                ("oversight_keys", "drops the shipped switch names: " + ", ".join(dropped))
            )
    return [
        PolicyWarning(name, _yaml_line(node, (key,)), key, (what,), setting=True)
        for key, what in found
    ]


_GLOB_FIELDS = ("tool", "agent", "path")
_BOOL_FIELDS = ("protected", "oversight_off", "near_threshold", "certain", "unseen")


def _word(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(getattr(value, "value", value))


def _narrowings(wide: Match, narrow: Match) -> list[tuple[str, str]]:
    """The ways ``narrow`` fails to match facts that ``wide`` matches.

    Each is said twice: as ``narrow`` differs from ``wide`` (a user's ``when`` narrower than
    the shipped one) and as ``wide`` differs from ``narrow`` (a user's ``unless`` wider than
    the shipped one). The comparison is per condition and syntactic: a glob counts as kept
    when a glob on the other side matches its text; a changed regex counts as narrowed.
    """
    found: list[tuple[str, str]] = []
    for name in Match.model_fields:
        was, now = getattr(wide, name), getattr(narrow, name)
        if name == "args":
            was, now = was or {}, now or {}
            for key in now:
                if key not in was:
                    found.append(
                        (f"adds an args condition on {key}", f"drops the args condition on {key}")
                    )
                elif now[key] != was[key]:
                    found.append((f"args.{key} pattern changed",) * 2)
        elif name in _BOOL_FIELDS:
            if now is not None and now != was:
                if was is None:
                    found.append((f"adds {name}: {_word(now)}", f"drops the {name} condition"))
                else:
                    found.append(
                        (
                            f"{name} {_word(was)} -> {_word(now)}",
                            f"{name} {_word(now)} -> {_word(was)}",
                        )
                    )
        else:
            if name in _GLOB_FIELDS:  # an empty glob list is no condition, as in matching
                was, now = was or None, now or None
            if now is None:
                continue
            if was is None:
                items = ", ".join(_word(v) for v in now)
                found.append((f"adds a {name} condition ({items})", f"drops the {name} condition"))
                continue
            if name in _GLOB_FIELDS:
                lost = [g for g in was if not any(fnmatch.fnmatchcase(g, h) for h in now)]
            else:
                lost = [v for v in was if v not in now]
            if lost:
                items = ", ".join(_word(v) for v in lost)
                found.append((f"{name} drops {items}", f"{name} adds {items}"))
    return found


def _weakenings(shipped: Rule, mine: Rule) -> list[str]:
    """How ``mine`` lets through calls that the shipped rule it replaces would block."""
    changes: list[str] = []
    if mine.action.rank < shipped.action.rank:
        changes.append(f"action {shipped.action.value} -> {mine.action.value}")
    changes += [f"when narrowed: {n}" for n, _ in _narrowings(shipped.when, mine.when)]
    if mine.unless is not None:
        if shipped.unless is None:
            changes.append("adds unless")
        else:
            changes += [f"unless widened: {w}" for _, w in _narrowings(mine.unless, shipped.unless)]
    return changes


def lint_policy(path: str | Path | None = None, *, text: str | None = None) -> list[PolicyWarning]:
    """Warnings for a policy that loads but weakens what it extends, or what the engine does.

    A rule that reuses the id of a shipped ``deny`` or ``confirm`` rule replaces it; this
    names each such rule that would let through a call the shipped rule blocks or sends to a
    human: a lower action, an added or wider ``unless``, or a narrower ``when`` (fewer
    effects, assets or relations listed; an extra condition). It also names settings that
    lower the guard's own floor: ``uncertain`` below ``confirm``, ``mode: shadow``,
    ``discover: false``, and ``oversight_keys`` that drop a shipped switch name.

    Args:
        path: The policy file (``None`` with ``text``).
        text: Policy YAML given directly (``path`` then only names it).

    Returns:
        The setting warnings, then one warning per weakened shipped rule in the order of the
        user's rules.

    Raises:
        PolicyError: The policy does not load (see :func:`load_policy`).
        TypeError: Neither ``path`` nor ``text`` was given.
    """
    if path is None and text is None:
        raise TypeError("lint_policy() needs a path or text")
    name = str(path) if path is not None else "<policy>"
    body = text if text is not None else _read(name)
    load_policy(name, text=body)  # every load error first, as the user would meet it
    mine: Policy = parse_model(Policy, body, name)
    node = yaml.compose(body, Loader=_StrictLoader)
    warnings = _setting_warnings(mine, _load_yaml(body), name, node)
    if not mine.extends:
        return warnings
    base: Policy = parse_model(
        Policy, shipped_policy_text(mine.extends), f"<shipped {mine.extends}.yaml>"
    )
    shipped = {r.id: r for r in base.rules if r.action.rank >= Action.CONFIRM.rank}
    for i, rule in enumerate(mine.rules):
        if rule.id in shipped:
            changes = _weakenings(shipped[rule.id], rule)
            if changes:
                line = _yaml_line(node, ("rules", i))
                warnings.append(PolicyWarning(name, line, rule.id, tuple(changes)))
    return warnings


def load_declarations(path: str | Path) -> Declarations:
    """Load a declarations file (the ``guard:`` block of a scenario: agents, assets, evaluations).

    A file whose top level has a ``guard:`` key (a whole scenario) is accepted too.
    """
    from guard.exceptions import DeclarationError

    body = _read(path)
    try:
        raw = _load_yaml(body)
    except yaml.YAMLError:  # parse_model below reports it with its line
        raw = None
    if isinstance(raw, dict) and isinstance(raw.get("guard"), dict) and "id" in raw:
        body = yaml.safe_dump(raw["guard"])
    return parse_model(Declarations, body, str(path), error=DeclarationError)


# ---------------------------------------------------------------- matching


# ---------------------------------------------------------------- the engine's floor


__all__ = [
    "DEFAULT_POLICY",
    "THRESHOLD_SHUTDOWN",
    "AssetDecl",
    "Declarations",
    "EffectTemplate",
    "EvaluationDecl",
    "Match",
    "ObligationDecl",
    "Policy",
    "PolicyWarning",
    "Required",
    "Rule",
    "ToolSpec",
    "lint_policy",
    "load_declarations",
    "load_policy",
    "parse_model",
    "re2_search",
    "shipped_policy_text",
]
