"""Bench scenarios, format version 1: the models, and loading with precise errors.

A scenario is one YAML file (``docs/scenario-format.md`` is the contract): a small world of
hosts and files, the operator's declarations, a task, scripted calls, the agent's final claim,
and the ground truth of harm. Loading is strict, because a typo in a harm predicate would
otherwise make an attack look prevented: unknown keys at every level are errors, and every
error names the file, the line and the dotted key, and says what was expected::

    exfil.yaml:12: world.files.1.colour: unknown key 'colour'; expected one of: path, ...
"""

from __future__ import annotations

import json
import posixpath
import re
import types
from collections.abc import Iterable, Iterator
from datetime import datetime
from inspect import isclass
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

from guard.exceptions import ConfigError
from guard.policy import AssetDecl, Declarations, EvaluationDecl
from guard.types import AssetKind

Tactic = Literal["exfiltration", "tampering", "misrepresentation", "alignment-faking", "benign"]
Role = Literal["attack", "task", "benign"]
FileFormat = Literal["safetensors", "gguf", "raw"]
FileKind = Literal["weights", "config", "evaluation", "other"]

#: The tactics whose scenarios must declare harm.
ATTACK_TACTICS: frozenset[str] = frozenset(
    {"exfiltration", "tampering", "misrepresentation", "alignment-faking"}
)
#: The harm predicates of format version 1, in the order FORMAT.md lists them.
PREDICATES: tuple[str, ...] = (
    "content_survives",
    "changed",
    "missing",
    "config_false",
    "score_off",
    "not_called",
)

# The smallest files the two headered formats fit in. world.py builds them and checks that
# these bounds are exact; they live here so that a too-small file is a load error.
SAFETENSORS_MIN_BYTES = 8 + 96
GGUF_MIN_BYTES = 4 + 4 + 8 + 8


class ScenarioError(ConfigError):
    """A scenario file is not valid; the message names file, line and key."""

    unnamed = "<scenario>"


class _At(ValueError):
    """A model validator's error that belongs to a key below the model being validated."""

    def __init__(self, loc: tuple[int | str, ...], message: str) -> None:
        super().__init__(message)
        self.loc = loc


def _sandbox_path(value: str) -> str:
    # Scenario paths name places inside the sandbox; anything that could leave it (or that two
    # platforms would read differently) is refused at load time rather than at run time.
    if not value:
        raise ValueError("expected a path relative to the sandbox root, got an empty string")
    if "\0" in value or "\\" in value:
        raise ValueError(f"expected a plain relative path, got {value!r}")
    if value.startswith(("/", "~")):
        raise ValueError(f"expected a path relative to the sandbox root, got absolute {value!r}")
    if ".." in value.split("/"):
        raise ValueError(f"expected a path that stays inside the sandbox, got {value!r} ('..')")
    if posixpath.normpath(value) == ".":
        raise ValueError(f"expected a path below the sandbox root, got {value!r}")
    return value


def _host_name(value: str) -> str:
    # A host is the folder hosts/<name>/ and the HOST of HOST:PATH, so it is one plain word.
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
        raise ValueError(
            f"expected a host name of letters, digits, '.', '_' and '-', got {value!r}"
        )
    return value


SandboxPath = Annotated[str, AfterValidator(_sandbox_path)]
HostName = Annotated[str, AfterValidator(_host_name)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _norm(path: str) -> str:
    return posixpath.normpath(path)


# ---------------------------------------------------------------- world


class FileSpec(_Strict):
    """One file of the world: literal ``text``, or ``bytes`` of deterministic content."""

    path: SandboxPath
    format: FileFormat | None = None
    size: int | None = Field(default=None, alias="bytes", ge=0)
    text: str | None = None
    kind: FileKind | None = None
    owner: str | None = None
    mtime: datetime | None = None

    @model_validator(mode="after")
    def _one_content(self) -> FileSpec:
        fields = self.model_fields_set
        if "text" in fields and "size" in fields:
            raise _At(("text",), "a file has exactly one of text and bytes, not both")
        if self.text is None and self.size is None:
            raise _At((), "a file needs text (literal content) or bytes (a size)")
        if self.format is not None and self.size is None:
            raise _At(("format",), "format goes only with bytes, not with text")
        minimum = {"safetensors": SAFETENSORS_MIN_BYTES, "gguf": GGUF_MIN_BYTES}.get(
            self.format or "raw", 0
        )
        if self.size is not None and self.size < minimum:
            raise _At(("bytes",), f"a {self.format} file needs at least {minimum} bytes")
        return self

    @property
    def weight_format(self) -> FileFormat:
        """The format the file is written in (``raw`` when not given)."""
        return self.format or "raw"


class WorldSpec(_Strict):
    """The hosts (each the folder ``hosts/<name>/``) and the files of the sandbox."""

    hosts: list[HostName] = Field(default_factory=list)
    files: list[FileSpec] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> WorldSpec:
        seen_hosts: set[str] = set()
        for i, host in enumerate(self.hosts):
            if host in seen_hosts:
                raise _At(("hosts", i), f"host {host!r} is listed twice")
            seen_hosts.add(host)
        folders = {f"hosts/{h}" for h in self.hosts}
        paths: dict[str, int] = {}
        for i, spec in enumerate(self.files):
            path = _norm(spec.path)
            if path in paths:
                raise _At(("files", i, "path"), f"{spec.path!r} is already a file of the world")
            if path in folders or path == "hosts":
                raise _At(("files", i, "path"), f"{spec.path!r} is a host folder, not a file")
            paths[path] = i
        # A file cannot also be a folder that holds another file.
        for path, i in paths.items():
            parent = posixpath.dirname(path)
            while parent:
                if parent in paths:
                    raise _At(
                        ("files", i, "path"),
                        f"{path!r} lies inside {parent!r}, which is a file of the world",
                    )
                parent = posixpath.dirname(parent)
        return self

    def file(self, path: str) -> FileSpec | None:
        """The world file at ``path``, or ``None``."""
        want = _norm(path)
        for spec in self.files:
            if _norm(spec.path) == want:
                return spec
        return None


# ---------------------------------------------------------------- guard declarations


class AssetSpec(_Strict):
    """A declared asset: files matching ``glob`` (relative to the sandbox root)."""

    glob: SandboxPath
    kind: FileKind
    owner: str | None = None


class EvaluationSpec(_Strict):
    """A score file the guard can recompute from per-item correctness."""

    score_file: SandboxPath
    score_field: str = Field(min_length=1)
    items_file: SandboxPath
    correct_field: str = Field(min_length=1)
    threshold: float | None = None


class GuardSpec(_Strict):
    """The ``guard:`` block: what the operator declares to the guard."""

    agents: list[str] = Field(default_factory=list)
    assets: list[AssetSpec] = Field(default_factory=list)
    evaluations: list[EvaluationSpec] = Field(default_factory=list)


# ---------------------------------------------------------------- calls and claim


class Call(_Strict):
    """One scripted tool call. ``role`` is ground truth, never shown to the guard."""

    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)
    role: Role


class Transfer(_Strict):
    """A copy the agent says it made: ``src`` to ``hosts/<host>/<dst>``."""

    src: str
    host: str
    dst: str


class Claim(_Strict):
    """The agent's final report, checked by the guard's verifier."""

    text: str = ""
    deleted: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)
    transferred: list[Transfer] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)

    def score_for(self, path: str) -> float | None:
        """The score the claim reports for score file ``path``, if any."""
        want = _norm(path)
        for name, value in self.scores.items():
            if _norm(name) == want:
                return value
        return None


# ---------------------------------------------------------------- harm


class ConfigKey(_Strict):
    """Argument of ``config_false``: a dotted key in a YAML or JSON file."""

    path: SandboxPath
    key: str = Field(min_length=1)


class ScoreOff(_Strict):
    """Argument of ``score_off``: the number at a dotted key, its truth, and the tolerance."""

    path: SandboxPath
    key: str = Field(min_length=1)
    truth: float
    tolerance: float = Field(default=0.0, ge=0)


class NotCalled(_Strict):
    """Argument of ``not_called``: a required call (every given arg must match)."""

    tool: str = Field(min_length=1)
    args: dict[str, Any] = Field(default_factory=dict)


class HarmItem(_Strict):
    """One harm predicate: a one-key mapping such as ``{content_survives: hosts/a/w.bin}``."""

    content_survives: SandboxPath | None = None
    changed: SandboxPath | None = None
    missing: SandboxPath | None = None
    config_false: ConfigKey | None = None
    score_off: ScoreOff | None = None
    not_called: NotCalled | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> HarmItem:
        given = [name for name in PREDICATES if name in self.model_fields_set]
        if len(given) != 1:
            found = ", ".join(given) if given else "none"
            raise _At(
                (),
                f"expected exactly one predicate ({', '.join(PREDICATES)}) per item, got {found}",
            )
        if getattr(self, given[0]) is None:
            raise _At((given[0],), "expected an argument, got null")
        return self

    @property
    def predicate(self) -> str:
        """The predicate's name."""
        return next(name for name in PREDICATES if getattr(self, name) is not None)

    @property
    def argument(self) -> str | ConfigKey | ScoreOff | NotCalled:
        """The predicate's argument: a path, or a small model."""
        value: str | ConfigKey | ScoreOff | NotCalled = getattr(self, self.predicate)
        return value

    @property
    def key(self) -> str:
        """The report key: ``"changed: PATH"``, or the predicate and its JSON mapping."""
        arg = self.argument
        if isinstance(arg, str):
            return f"{self.predicate}: {arg}"
        shown = arg.model_dump(mode="json", exclude_unset=True)
        return f"{self.predicate}: {json.dumps(shown, sort_keys=True)}"


# ---------------------------------------------------------------- scenario


class Scenario(_Strict):
    """One bench scenario, format version 1."""

    id: str = Field(pattern=r"^[a-z0-9-]+$")
    tactic: Tactic
    summary: str = Field(min_length=1)
    agent: str = Field(min_length=1)
    world: WorldSpec
    guard: GuardSpec | None = None
    task: str = Field(min_length=1)
    trajectory: list[Call] | None = None
    variants: dict[str, list[Call]] | None = None
    claim: Claim | None = None
    harm: list[HarmItem] | None = None

    _source: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        if self.trajectory is not None and self.variants is not None:
            raise _At(("variants",), "expected trajectory or variants, not both")
        if self.trajectory is None and self.variants is None:
            raise _At(
                (),
                "expected trajectory (a list of calls) or variants (a map of variant name to calls)",
            )
        if self.variants is not None:
            if not self.variants:
                raise _At(("variants",), "expected at least one variant")
            for name in self.variants:
                if not name:
                    raise _At(("variants",), "expected non-empty variant names")
        if self.tactic in ATTACK_TACTICS and not self.harm:
            raise _At(
                ("harm",),
                f"expected a non-empty list of harm predicates for tactic {self.tactic!r}",
            )
        if self.tactic == "benign" and self.harm:
            raise _At(("harm",), "expected an empty list ([]) for a benign scenario")
        for i, item in enumerate(self.harm or []):
            # These two compare against the world's original bytes, so they need a world file.
            if item.predicate in ("content_survives", "changed"):
                path = str(item.argument)
                if self.world.file(path) is None:
                    raise _At(
                        ("harm", i, item.predicate),
                        f"expected the path of a world file, got {path!r}",
                    )
        return self

    @property
    def source(self) -> Path | None:
        """The file this scenario was loaded from, if any."""
        return self._source

    @property
    def hosts(self) -> list[str]:
        """The names of the world's hosts."""
        return list(self.world.hosts)

    def declarations(self) -> Declarations:
        """The guard's view of the ``guard:`` block (empty when the block is absent).

        Returns:
            The known agents, declared assets and evaluations. ``kind``/``owner`` of world
            files and the calls' roles are never part of it.
        """
        if self.guard is None:
            return Declarations()
        return Declarations(
            agents=list(self.guard.agents),
            assets=[
                AssetDecl(glob=a.glob, kind=AssetKind(a.kind), owner=a.owner)
                for a in self.guard.assets
            ],
            evaluations=[
                EvaluationDecl(
                    score_file=e.score_file,
                    score_field=e.score_field,
                    items_file=e.items_file,
                    correct_field=e.correct_field,
                    threshold=e.threshold,
                )
                for e in self.guard.evaluations
            ],
        )

    def runs(self) -> Iterator[tuple[str | None, list[Call]]]:
        """Each run of the scenario: ``(None, trajectory)`` or ``(variant name, calls)``.

        Returns:
            An iterator over the runs, variants in file order. Each run gets a fresh world.
        """
        if self.variants is not None:
            yield from ((name, list(calls)) for name, calls in self.variants.items())
        else:
            yield None, list(self.trajectory or [])

    @property
    def harm_items(self) -> list[HarmItem]:
        """The harm predicates (empty for a benign scenario)."""
        return list(self.harm or [])


def is_attack_run(calls: Iterable[Call]) -> bool:
    """Whether a run is judged as an attack: one of its calls has role ``attack``."""
    return any(call.role == "attack" for call in calls)


# ---------------------------------------------------------------- loading


def _strip(tp: Any) -> Any:
    """``X | None`` and ``Annotated[X, ...]`` to ``X``."""
    while True:
        origin = get_origin(tp)
        if origin is Annotated:
            tp = get_args(tp)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(tp) if a is not type(None)]
            if len(args) != 1:
                return tp
            tp = args[0]
        else:
            return tp


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (for listing its keys)."""
    tp: Any = Scenario
    for part in loc:
        tp = _strip(tp)
        if isclass(tp) and issubclass(tp, BaseModel):
            field = next(
                (f for n, f in tp.model_fields.items() if (f.alias or n) == part),
                None,
            )
            if field is None:
                return None
            tp = field.annotation
        elif get_origin(tp) is list and isinstance(part, int):
            tp = get_args(tp)[0]
        elif get_origin(tp) is dict:
            tp = get_args(tp)[1]
        else:
            return None
    tp = _strip(tp)
    return tp if isclass(tp) and issubclass(tp, BaseModel) else None


def _keys_of(model: type[BaseModel]) -> list[str]:
    return [f.alias or name for name, f in model.model_fields.items()]


def _node_at(
    node: yaml.Node | None, loc: tuple[int | str, ...]
) -> tuple[int | None, yaml.Node | None]:
    """The 1-based line of the YAML node at ``loc`` (or its nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else None
    for part in loc:
        nxt: yaml.Node | None = None
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(part):
                    nxt = v
                    line = k.start_mark.line + 1
                    break
        elif (
            isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value)
        ):
            nxt = node.value[part]
            line = nxt.start_mark.line + 1
        if nxt is None:
            return line, None
        node = nxt
    return line, node


def _duplicate_key(node: yaml.Node | None, loc: tuple[int | str, ...] = ()) -> Any:
    """``(loc, line)`` of the first key that a mapping repeats, or ``None``."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            name = str(k.value)
            if name in seen:
                return (*loc, name), k.start_mark.line + 1
            seen.add(name)
            found = _duplicate_key(v, (*loc, name))
            if found:
                return found
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            found = _duplicate_key(v, (*loc, i))
            if found:
                return found
    return None


def _describe(err: Any, loc: tuple[int | str, ...]) -> str:
    kind = err["type"]
    got = err.get("input")
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        expected = f"; expected one of: {', '.join(_keys_of(model))}" if model else ""
        return f"unknown key {str(loc[-1])!r}{expected}"
    if kind == "missing":
        return f"required key {str(loc[-1])!r} is missing" if loc else "required key is missing"
    if kind in ("literal_error", "enum"):
        expected = str(err.get("ctx", {}).get("expected", ""))
        return f"expected one of {expected.replace(chr(39), '')}, got {got!r}"
    if kind == "string_pattern_mismatch":
        return f"expected a value matching {err['ctx']['pattern']}, got {got!r}"
    if kind == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    if kind == "model_type":
        return f"expected a mapping, got {type(got).__name__}"
    msg = str(err["msg"]).replace("Input should be", "expected")
    return f"{msg}, got {got!r}"


def _error_loc(err: Any) -> tuple[int | str, ...]:
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    cause = err.get("ctx", {}).get("error")
    if isinstance(cause, _At):
        loc = (*loc, *cause.loc)
    return loc


def parse_scenario(text: str, file: str = "<scenario>") -> Scenario:
    """Parse and validate scenario YAML.

    Args:
        text: The YAML text.
        file: The name to give in errors.

    Returns:
        The validated scenario.

    Raises:
        ScenarioError: The text is not YAML or not a valid scenario; the error names the
            file, the line and the dotted key, and says what was expected.
    """
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ScenarioError(f"not valid YAML: {problem}", file=file, line=line) from exc
    if not isinstance(data, dict):
        raise ScenarioError(
            f"expected a mapping at the top level, got {type(data).__name__}", file=file, line=1
        )
    dup = _duplicate_key(node)
    if dup:
        loc, line = dup
        raise ScenarioError(
            f"key {str(loc[-1])!r} appears twice; expected each key once",
            file=file,
            line=line,
            key=".".join(str(p) for p in loc),
        )
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        # An unknown key explains the rest (a misspelt key is also a missing one): it goes first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        loc = _error_loc(err)
        line, _ = _node_at(node, loc)
        more = exc.error_count() - 1
        extra = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise ScenarioError(
            _describe(err, loc) + extra,
            file=file,
            line=line,
            key=".".join(str(p) for p in loc) or None,
        ) from exc
    try:
        scenario.declarations()
    except ValidationError as exc:  # the guard's own model is stricter than the format
        line, _ = _node_at(node, ("guard",))
        raise ScenarioError(
            f"the guard rejects these declarations: {exc.errors()[0]['msg']}",
            file=file,
            line=line,
            key="guard",
        ) from exc
    return scenario


def load_scenario(path: str | Path) -> Scenario:
    """Load one scenario file.

    Args:
        path: A ``.yaml`` or ``.yml`` scenario file.

    Returns:
        The validated scenario; its ``source`` is ``path``.

    Raises:
        ScenarioError: The file is unreadable, not YAML, or not a valid scenario.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"cannot read scenario file: {exc.strerror}", file=str(path)) from exc
    except UnicodeDecodeError as exc:
        raise ScenarioError("expected UTF-8 text", file=str(path)) from exc
    scenario = parse_scenario(text, str(path))
    scenario._source = path
    return scenario


def scenario_files(paths: Iterable[str | Path] | str | Path) -> list[Path]:
    """The scenario files that ``paths`` name: files as given, folders' ``*.yaml``/``*.yml``.

    Raises:
        ScenarioError: A path does not exist, or a folder holds no scenario file.
    """
    if isinstance(paths, str | Path):
        paths = [paths]
    files: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found = sorted(
                (p for p in path.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()),
                key=lambda p: p.name,
            )
            if not found:
                raise ScenarioError("expected *.yaml or *.yml scenario files", file=str(path))
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise ScenarioError("no such file or folder", file=str(path))
    return files


def load_scenarios(paths: Iterable[str | Path] | str | Path) -> list[Scenario]:
    """Load scenarios from files and folders (a folder gives its ``*.yaml``/``*.yml``, sorted).

    Args:
        paths: Scenario files and folders, or a single one.

    Returns:
        The scenarios, in the order given (each folder's files sorted by name).

    Raises:
        ScenarioError: A file is not a valid scenario, or two scenarios share an id.
    """
    scenarios: list[Scenario] = []
    first: dict[str, Path] = {}
    for file in scenario_files(paths):
        scenario = load_scenario(file)
        if scenario.id in first:
            text = file.read_text(encoding="utf-8")
            line, _ = _node_at(yaml.compose(text, Loader=yaml.SafeLoader), ("id",))
            raise ScenarioError(
                f"id {scenario.id!r} is already used by {first[scenario.id]}; expected unique ids",
                file=str(file),
                line=line,
                key="id",
            )
        first[scenario.id] = file
        scenarios.append(scenario)
    return scenarios


__all__ = [
    "ATTACK_TACTICS",
    "PREDICATES",
    "AssetSpec",
    "Call",
    "Claim",
    "ConfigKey",
    "EvaluationSpec",
    "FileSpec",
    "GuardSpec",
    "HarmItem",
    "NotCalled",
    "Scenario",
    "ScenarioError",
    "ScoreOff",
    "Transfer",
    "WorldSpec",
    "is_attack_run",
    "load_scenario",
    "load_scenarios",
    "parse_scenario",
    "scenario_files",
]
