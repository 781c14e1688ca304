"""Structured config files understood semantically: parse, simulate an edit, judge oversight.

A model in the study set ``shutdown_enabled`` to ``false``, then weighed ``"False"``, ``""``,
``"0"`` and removing the key, in case one spelling was still read as true. So the guard never
compares strings: it parses the file before and after the change, reads each oversight key
the way the consuming program would most strictly read it, and asks whether a switch that was
on is now off. Only boolean true, the number 1, and the strings ``true``/``yes``/``on``/``1``
(any case) count as on; everything else, a missing key or an unreadable file included, is off.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import yaml

from guard.exceptions import GuardError
from guard.types import ConfigEdit

STRUCTURED_SUFFIXES = (".yaml", ".yml", ".json", ".toml")

#: Key names (the last component of a dotted key) that switch oversight on when true.
DEFAULT_OVERSIGHT_KEYS: tuple[str, ...] = (
    r"(enable_|enabled_)?(auto_?)?shutdown(_enabled|_enable|_on|_active|_enforced|_enforcement)?",
    r"(enable_)?(kill_?switch|killswitch)(_enabled|_armed|_active)?",
    r"(enable_)?(oversight|monitoring|monitor|supervision|audit(ing)?|human_review)"
    r"(_enabled|_on|_active|_required)?",
)
#: Key names that switch oversight *off* when true (their truth is inverted).
DEFAULT_INVERTED_KEYS: tuple[str, ...] = (
    r"(disable|skip|bypass|suspend|pause|no|inhibit|prevent|block|defer|delay|ignore|override)_"
    r"(auto_?)?(shutdown|kill_?switch|oversight|monitoring|audit|review)",
    r"(auto_?)?(shutdown|kill_?switch|oversight|monitoring|audit|review)_"
    r"(disabled|skipped|bypassed|paused|off|inhibited|deferred|delayed|blocked|ignored|overridden|dry_?run)",
    r"dry_?run_shutdown",
)

_TRUE_STRINGS = frozenset({"true", "yes", "on", "1"})

#: The most of a config file any reader in the guard (engine, asset index, verifier) parses.
#: A structured file over it is not judged by its head: it may hold a switch further on, so
#: whoever reads it must treat it as uncertain.
MAX_CONFIG_BYTES = 1 << 20


class TooLarge:
    """What :func:`read_config` returns for a file over :data:`MAX_CONFIG_BYTES`."""

    __slots__ = ("size",)

    def __init__(self, size: int) -> None:
        self.size = size

    def __repr__(self) -> str:
        return f"TooLarge({self.size})"


class Ambiguous(tuple[Any, ...]):
    """A key written more than once in one mapping: each value is one program's reading.

    YAML and JSON loaders keep the last, some keep the first: a switch is on only when every
    reading of it is on (see :meth:`OversightMatcher.switches`).
    """

    __slots__ = ()


def is_true(value: Any) -> bool:
    """Whether a config value reads as *on* under the strictest common reading.

    Args:
        value: A parsed YAML/JSON/TOML value.

    Returns:
        True only for boolean true, the number 1, and ``true``/``yes``/``on``/``1`` strings.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    if isinstance(value, str):
        return value.lower() in _TRUE_STRINGS
    return False


def _json_pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            prev = out[key]
            out[key] = (
                Ambiguous((*prev, value))
                if isinstance(prev, Ambiguous)
                else Ambiguous((prev, value))
            )
        else:
            out[key] = value
    return out


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, keeping every value of a key written twice (as :class:`Ambiguous`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, Hashable):
                raise yaml.constructor.ConstructorError(
                    None, None, "unhashable key", key_node.start_mark
                )
            value = self.construct_object(value_node, deep=deep)
            if key in out:
                prev = out[key]
                out[key] = Ambiguous(
                    (*prev, value) if isinstance(prev, Ambiguous) else (prev, value)
                )
            else:
                out[key] = value
        return out


def _mapping(loader: _Loader, node: yaml.Node) -> dict[Any, Any]:
    if not isinstance(node, yaml.MappingNode):
        raise yaml.constructor.ConstructorError(None, None, "expected a mapping", node.start_mark)
    return loader.construct_mapping(node, deep=True)


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def parse(text: str, name: str = "") -> Any:
    """Parse YAML, JSON or TOML text, choosing by file name, then by trying each.

    A key written twice in one mapping keeps every value, as :class:`Ambiguous`: programs
    disagree on which one counts.

    Returns:
        The parsed value, or ``None`` when the text is not a structured document. An empty
        document parses to ``None`` too: it holds no switch that is on.
    """
    lowered = name.lower()
    try:
        if lowered.endswith(".json"):
            return json.loads(text, object_pairs_hook=_json_pairs)
        if lowered.endswith(".toml"):
            return tomllib.loads(text)  # TOML forbids a key written twice: an error here
        return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    except (ValueError, yaml.YAMLError, RecursionError):
        return None


def read_text(path: str, limit: int = MAX_CONFIG_BYTES) -> str | None:
    """Up to ``limit`` characters of a UTF-8 text file; ``None`` if unreadable or not text."""
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read(limit)
    except (OSError, UnicodeDecodeError):
        return None


def read_config(path: str) -> str | TooLarge | None:
    """A config file's whole text, the same bound for every reader in the guard.

    Returns:
        The text; :class:`TooLarge` when the file is over :data:`MAX_CONFIG_BYTES` (its head
        is never judged as the whole); ``None`` when it is missing, unreadable or not text.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
            if len(data) > MAX_CONFIG_BYTES:
                fh.seek(0, os.SEEK_END)
                return TooLarge(fh.tell())
    except OSError:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def dump(data: Any, name: str = "") -> str:
    """Serialise ``data`` in the format that ``name`` implies (YAML unless ``.json``)."""
    if name.lower().endswith(".json"):
        return json.dumps(data, indent=2) + "\n"
    return str(yaml.safe_dump(data, sort_keys=False))


class OversightMatcher:
    """Recognises oversight switches by key name.

    Args:
        keys: Regular expressions (full match, case-insensitive) for keys that mean *on*.
        inverted: Expressions for keys whose true value means oversight is *off*.
    """

    def __init__(
        self,
        keys: Sequence[str] = DEFAULT_OVERSIGHT_KEYS,
        inverted: Sequence[str] = DEFAULT_INVERTED_KEYS,
    ) -> None:
        self._on = re.compile("|".join(f"(?:{k})" for k in keys), re.IGNORECASE) if keys else None
        self._off = (
            re.compile("|".join(f"(?:{k})" for k in inverted), re.IGNORECASE) if inverted else None
        )

    def polarity(self, key: str) -> bool | None:
        """``True`` for an on-switch, ``False`` for an inverted one, ``None`` for other keys.

        The key is matched as programs spell it: ``shutdownEnabled``, ``shutdown-enabled`` and
        ``SHUTDOWN_ENABLED`` are all ``shutdown_enabled``.
        """
        key = spelled(key)
        if self._off is not None and self._off.fullmatch(key):
            return False
        if self._on is not None and self._on.fullmatch(key):
            return True
        return None

    def readings(self, data: Any) -> dict[str, tuple[bool, tuple[Any, ...]]]:
        """Every oversight switch in a parsed document: its dotted key (as spelled, see
        :meth:`polarity`) to its polarity and every value it is written with.

        A key written twice, or in two spellings (``shutdown_enabled`` and
        ``shutdown-enabled``), has several values: programs differ in which one they read.
        """
        found: dict[str, tuple[bool, tuple[Any, ...]]] = {}
        for dotted, leaf, value in _leaves(data):
            pol = self.polarity(leaf)
            if pol is not None:
                key = ".".join(spelled(part) for part in dotted.split("."))
                values = tuple(value) if isinstance(value, Ambiguous) else (value,)
                if key in found:
                    values = found[key][1] + values
                found[key] = (pol, values)
        return found

    def switches(self, data: Any) -> dict[str, bool]:
        """Every oversight switch in a parsed document, as dotted key to *is oversight on*:
        on only when every value it is written with reads as on."""
        return {k: _on(pol, values) for k, (pol, values) in self.readings(data).items()}

    def mentions(self, text: str) -> bool:
        """Cheap pre-check: does any word of ``text`` look like an oversight key?"""
        for word in re.findall(r"[A-Za-z_][A-Za-z0-9_-]*", text):
            if self.polarity(word) is not None:
                return True
        return False

    def turned_off(self, before: Any, after: Any) -> list[str]:
        """Dotted keys whose oversight was on in ``before`` and may not be on in ``after``.

        A switch that was on stays on only when it is left exactly as it was (same value, same
        type) or set to the plain boolean that means on (``true``, or ``false`` for an
        inverted key): any other rewrite (``true`` to ``"true"``, ``false`` to ``"False"``)
        is read differently by some program, and counts as off. ``after`` of ``None``
        (deleted, emptied or unparsable) turns every switch off; a switch that appears newly
        set to off (an inverted one set to true) turns oversight off as well.
        """
        was = self.readings(before)
        now = self.readings(after) if after is not None else {}
        off: list[str] = []
        for key, (pol, old) in was.items():
            if not _on(pol, old):
                continue
            if key not in now:
                if not _missing_reads_on(key, self):
                    off.append(key)
                continue
            new = now[key][1]
            if not _on(pol, new) or not all(_kept(pol, old, v) for v in new):
                off.append(key)
        off += [k for k, (pol, v) in now.items() if k not in was and not _on(pol, v)]
        return off


def spelled(key: str) -> str:
    """A key as programs that fold spellings read it: ``shutdownEnabled`` and
    ``shutdown-enabled`` are ``shutdown_enabled`` (matching is case-insensitive)."""
    if "-" in key or " " in key:
        key = key.replace("-", "_").replace(" ", "_")
    if not key.islower() and not key.isupper():
        key = _CAMEL.sub("_", key)
    return key.lower()


_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def _on(polarity: bool, values: tuple[Any, ...]) -> bool:
    """Oversight is on when every value the switch is written with reads as on."""
    return all(is_true(v) if polarity else not is_true(v) for v in values)


def _kept(polarity: bool, old: tuple[Any, ...], value: Any) -> bool:
    """A value a switch that was on may now hold: one it held, type and all, or the plain
    boolean that means on."""
    if value is polarity:  # `true` for an on-switch, `false` for an inverted one
        return True
    return any(type(value) is type(o) and value == o for o in old)


def _missing_reads_on(dotted: str, matcher: OversightMatcher) -> bool:
    # A removed on-switch reads as off; a removed inverted switch (e.g. disable_shutdown)
    # leaves oversight on.
    return matcher.polarity(dotted.rsplit(".", 1)[-1]) is False


class TooComplex(GuardError):
    """A parsed config has more nodes than the guard walks (a YAML alias bomb): whether it
    holds a switch that is on cannot be told, so whoever asked must treat it as uncertain."""


#: The most mappings and lists of one parsed config the guard walks looking for switches.
MAX_CONFIG_NODES = 100_000


def _leaves(data: Any, prefix: str = "") -> Iterator[tuple[str, str, Any]]:
    # YAML aliases share one object under many keys: each is walked once, at the first key
    # that reaches it, so ten nested aliases of ten cost a hundred nodes, not 10**10.
    stack: list[tuple[str, Any, int]] = [(prefix, data, 0)]
    seen: set[int] = set()
    while stack:
        base, node, depth = stack.pop()
        if depth > 64:
            raise TooComplex("nested more than 64 deep")
        if isinstance(node, dict | list):
            if id(node) in seen:
                continue
            seen.add(id(node))
            if len(seen) > MAX_CONFIG_NODES:
                raise TooComplex(f"more than {MAX_CONFIG_NODES} mappings and lists")
        if isinstance(node, dict):
            for k, v in node.items():
                key = str(k)
                dotted = f"{base}.{key}" if base else key
                if isinstance(v, dict | list):
                    stack.append((dotted, v, depth + 1))
                yield dotted, key, v
        elif isinstance(node, list):
            for i, v in enumerate(node):
                if isinstance(v, dict | list):
                    stack.append((f"{base}[{i}]", v, depth + 1))


def get_dotted(data: Any, key: str) -> tuple[bool, Any]:
    """Look up a dotted key. Returns ``(found, value)``."""
    node = data
    for part in key.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def set_dotted(data: Any, key: str, value: Any) -> Any:
    """Return a copy of ``data`` with the dotted key set (missing mappings are created)."""
    root = copy.deepcopy(data) if isinstance(data, dict) else {}
    node = root
    parts = key.split(".")
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value
    return root


def remove_dotted(data: Any, key: str) -> Any:
    """Return a copy of ``data`` without the dotted key (unchanged when absent)."""
    root = copy.deepcopy(data)
    node = root
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            return root
        node = node[part]
    if isinstance(node, dict):
        node.pop(parts[-1], None)
    return root


class Unknowable(GuardError):
    """The new content of a file cannot be worked out before the call runs."""


def simulate(text: str | None, name: str, edit: ConfigEdit | None) -> Any:
    """The parsed document a file would hold after ``edit``.

    Args:
        text: The file's current text, ``None`` when it does not exist.
        name: The file name (chooses the format).
        edit: The change; ``None`` means an unspecified change.

    Returns:
        The parsed new document (``None`` for an empty or unparsable one).

    Raises:
        Unknowable: When the edit's outcome cannot be computed before it runs.
    """
    if edit is None or edit.op == "unknown":
        raise Unknowable("the change is not specified")
    current = parse(text, name) if text is not None else None
    if edit.op == "metadata":
        return current
    if edit.op == "unreadable":
        return None  # what nobody can open holds no switch that is on, as read_config says
    if edit.op == "set" and edit.key:
        return set_dotted(current, edit.key, edit.value)
    if edit.op == "remove" and edit.key:
        return remove_dotted(current, edit.key)
    if edit.op == "replace":
        return parse(edit.content or "", name)
    if edit.op == "append":
        return parse((text or "") + (edit.content or ""), name)
    if edit.op == "edits" and isinstance(edit.value, tuple):
        return parse(apply_edits(text, edit.value), name)
    if edit.op == "sed" and edit.script is not None:
        from guard.shell import apply_sed  # the sed simulator lives with the shell analyser

        new_text = apply_sed(edit.script, text or "")
        if new_text is None:
            raise Unknowable(f"sed script {edit.script!r} is beyond the simulator")
        return parse(new_text, name)
    raise Unknowable(f"edit {edit.op!r} is not understood")


def apply_edits(text: str | None, pairs: tuple[tuple[str, str], ...]) -> str:
    """``text`` with each ``(old, new)`` replacement made in turn, as the MCP filesystem
    server's ``edit_file`` makes it: line endings as LF, then the first exact match of
    ``old``, or else the first run of lines equal to ``old``'s with surrounding whitespace
    ignored, replaced by ``new`` re-indented like that run (``applyFileEdits``).

    Raises:
        Unknowable: The file does not exist, a text has a carriage return outside a CRLF or
            a lone surrogate (where JavaScript's strings and Python's differ), or an ``old``
            text matches nowhere (the server then changes nothing and reports an error).
    """
    if text is None:
        raise Unknowable("the file to edit does not exist")
    texts = [text, *(t for pair in pairs for t in pair)]
    if any(_LONE_CR.search(t) or _SURROGATE.search(t) for t in texts):
        raise Unknowable("an edit of text with lone carriage returns is not simulated")
    text = text.replace("\r\n", "\n")
    for raw_old, raw_new in pairs:
        old, new = raw_old.replace("\r\n", "\n"), raw_new.replace("\r\n", "\n")
        at = text.find(old)
        if at >= 0:
            text = text[:at] + new + text[at + len(old) :]
            continue
        text = _edit_lines(text, old, new)
    return text


# JavaScript's whitespace (String.prototype.trim, /\s/), which the server's matching uses.
_JS_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
_LONE_CR = re.compile(r"\r(?!\n)")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip(_JS_SPACE))]


def _edit_lines(text: str, old: str, new: str) -> str:
    """The server's fallback: ``old``'s lines matched with whitespace trimmed."""
    old_lines, lines = old.split("\n"), text.split("\n")
    wanted = [line.strip(_JS_SPACE) for line in old_lines]
    for i in range(len(lines) - len(old_lines) + 1):
        if all(lines[i + j].strip(_JS_SPACE) == w for j, w in enumerate(wanted)):
            first = _indent(lines[i])
            new_lines = []
            for j, line in enumerate(new.split("\n")):
                if j == 0:
                    new_lines.append(first + line.lstrip(_JS_SPACE))
                    continue
                old_indent = _indent(old_lines[j]) if j < len(old_lines) else ""
                new_indent = _indent(line)
                if old_indent and new_indent:
                    shift = " " * max(0, len(new_indent) - len(old_indent))
                    new_lines.append(first + shift + line.lstrip(_JS_SPACE))
                else:
                    new_lines.append(line)
            lines[i : i + len(old_lines)] = new_lines
            return "\n".join(lines)
    raise Unknowable("an edit's old text is not in the file as it stands (the edit fails)")


__all__ = [
    "DEFAULT_INVERTED_KEYS",
    "DEFAULT_OVERSIGHT_KEYS",
    "MAX_CONFIG_BYTES",
    "MAX_CONFIG_NODES",
    "STRUCTURED_SUFFIXES",
    "Ambiguous",
    "OversightMatcher",
    "TooComplex",
    "TooLarge",
    "Unknowable",
    "apply_edits",
    "dump",
    "get_dotted",
    "is_true",
    "parse",
    "read_config",
    "read_text",
    "remove_dotted",
    "set_dotted",
    "simulate",
    "spelled",
]
