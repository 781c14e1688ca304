"""Command-line option parsing in the getopt style most tools share.

Handlers describe which options take a value; everything else about the syntax (clusters such as
``-rf``, attached values such as ``-ofile`` and ``--out=file``, ``--`` and GNU's permutation of
options and operands, unambiguous prefixes of long options) is handled here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from guard.shell.words import Field

__all__ = ["Opts", "Spec", "parse"]


@dataclass(frozen=True, slots=True)
class Spec:
    """Which options of a command take a value.

    Args:
        short: Letters of short options that take a value (``"oi"`` for ``-o X -i Y``).
        long: Names of long options (without ``--``) that take a value.
        permute: True when options may follow operands (GNU tools); false for programs such as
            ``ssh`` and ``sudo`` where the first operand starts the command to run.
        optional: Long options whose value is optional and only given after ``=``.
    """

    short: str = ""
    long: frozenset[str] = frozenset()
    permute: bool = True
    optional: frozenset[str] = frozenset()

    @classmethod
    def of(
        cls,
        short: str = "",
        long: str | Iterable[str] = "",
        *,
        permute: bool = True,
        optional: str = "",
    ) -> Spec:
        """Build a spec; ``long`` and ``optional`` may be one space-separated string.

        Specs are immutable, and handlers build theirs on every call from literals: the same
        arguments give back the same object instead of splitting the strings again.
        """
        key = (cls, short, long if isinstance(long, str) else tuple(long), permute, optional)
        spec = _SPECS.get(key)
        if spec is None:
            names = long.split() if isinstance(long, str) else list(long)
            spec = cls(short, frozenset(names), permute, frozenset(optional.split()))
            if len(_SPECS) < 4096:
                _SPECS[key] = spec
        return spec


_SPECS: dict[tuple[object, ...], Spec] = {}


@dataclass(slots=True)
class Opts:
    """Parsed options (name with dashes, value or ``None``) and the operands, in order.

    ``before[i]`` is how many operands came before option ``items[i]``: tools such as GNU tar
    apply some options only to the operands that follow them.
    """

    items: list[tuple[str, Field | None]] = field(default_factory=list)
    operands: list[Field] = field(default_factory=list)
    rest: list[Field] = field(default_factory=list)
    before: list[int] = field(default_factory=list)

    def has(self, *names: str) -> bool:
        """True when any of ``names`` was given; long names also match unambiguous prefixes."""
        for given, _ in self.items:
            if given in names:
                return True
            if len(given) >= 5 and given.startswith("--"):
                for name in names:
                    if name.startswith(given):  # given starts with --, so name does too
                        return True
        return False

    def values(self, *names: str) -> list[Field]:
        """The values given to any of ``names``, in order."""
        return [
            v for given, v in self.items if v is not None and any(_same(given, n) for n in names)
        ]

    def value(self, *names: str) -> Field | None:
        """The last value given to any of ``names``."""
        vals = self.values(*names)
        return vals[-1] if vals else None


def _same(given: str, name: str) -> bool:
    if given == name:
        return True
    # getopt_long accepts any unambiguous prefix: "--remove-sou" is --remove-source-files.
    return (
        given.startswith("--")
        and name.startswith("--")
        and len(given) >= 5
        and name.startswith(given)
    )


def _long_takes_value(name: str, spec: Spec) -> bool:
    if name in spec.long:
        return True
    if len(name) >= 3:
        hits = [n for n in spec.long if n.startswith(name)]
        return bool(hits) and name not in spec.optional
    return False


def parse(args: Sequence[Field], spec: Spec, *, stop_at_operand: bool | None = None) -> Opts:
    """Split ``args`` into options and operands.

    Args:
        args: The command's arguments, after expansion.
        spec: Which options take values.
        stop_at_operand: Overrides ``spec.permute``: when true, the first operand and everything
            after it go to ``Opts.rest`` as well as ``Opts.operands`` (the command to run).

    Returns:
        The parsed options. A value that is missing at the end of the line is ``None``.
    """
    permute = spec.permute if stop_at_operand is None else not stop_at_operand
    out = Opts()
    items, before, operands = out.items, out.before, out.operands

    def add(name: str, value: Field | None) -> None:
        items.append((name, value))
        before.append(len(operands))

    i = 0
    n = len(args)
    while i < n:
        a = args[i]
        v = a.value
        if not a.known or len(v) < 2 or v[0] != "-":
            if not permute:
                out.rest = list(args[i:])
                out.operands.extend(args[i:])
                return out
            out.operands.append(a)
            i += 1
            continue
        if v == "--":
            out.rest = list(args[i + 1 :])
            out.operands.extend(args[i + 1 :])
            return out
        if v.startswith("--"):
            name, eq, val = v.partition("=")
            if eq:
                add(name, Field(val, raw=val))
            elif _long_takes_value(name[2:], spec) and i + 1 < n:
                add(name, args[i + 1])
                i += 1
            else:
                add(name, None)
            i += 1
            continue
        j = 1
        while j < len(v):
            ch = v[j]
            if ch in spec.short:
                if j + 1 < len(v):
                    attached = v[j + 1 :]
                    add("-" + ch, Field(attached, raw=attached))
                elif i + 1 < n:
                    add("-" + ch, args[i + 1])
                    i += 1
                else:
                    add("-" + ch, None)
                break
            add("-" + ch, None)
            j += 1
        i += 1
    return out
