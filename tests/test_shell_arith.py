"""Bash arithmetic as :mod:`guard.shell.arith` evaluates it: the values bash gives, the
assignments it makes, and bounds that end in :class:`TooDeep` rather than a hang."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest

from guard.shell.arith import MAX_DEPTH, TooDeep, evaluate, is_number

BASH = shutil.which("bash")
VARS = {"b": "4", "v": "b*2", "e": ""}


class Env:
    """Variables in a dict; subscripts with ``$`` unknown; one indexed array ``c``."""

    def __init__(self, values: dict[str, str | None]) -> None:
        self.values = dict(values)
        self.assigned: dict[str, int | None] = {}
        self.subscripts: list[str] = []

    def lookup(self, name: str) -> str | None:
        return self.values.get(name, "")

    def assign(self, name: str, value: int | None) -> None:
        self.assigned[name] = value
        self.values[name] = None if value is None else str(value)

    def subscript(self, text: str) -> str | None:
        self.subscripts.append(text)
        return None if "$" in text else text

    def assoc(self, name: str) -> bool:
        return False

    def element(self, name: str, key: str | None, index: int | None) -> str | None:
        items = ["5", "6", "7"] if name == "c" else [""]
        if index is None:
            return None
        return items[index] if -len(items) <= index < len(items) else ""


EXPRESSIONS = [
    "1+2*3", "2**10", "-7/2", "-7%3", "1<<3", "~5", "!0", "(1+2)*3", "1,2,3",
    "x=5, x+=3, x", "y=3, y++, y", "y=3, ++y", "z=1, z<<=4, z",
    "1?2:3", "0?x=4:5", "1 ? 2 : 3 ? 4 : 5", "0&&(z=1)", "1||(z=1)", "5>3&&2<1",
    "16#ff", "0x1f", "017", "2#1010", "a=b+1", "w=v, w", "e+1", "unset_name",
    "c[1]", "c[1+1]", "c[-1]", "9223372036854775807+1", "0 && 10/0",
]  # fmt: skip


@pytest.mark.skipif(BASH is None, reason="bash is not installed")
@pytest.mark.parametrize("expr", EXPRESSIONS)
def test_values_are_bashs(expr: str) -> None:
    """Each expression gives what bash's $((...)) gives."""
    setup = "; ".join(f'{k}="{v}"' for k, v in VARS.items())
    ran = subprocess.run(
        [str(BASH), "-c", f"{setup}; c=(5 6 7); echo $(( {expr} ))"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert evaluate(expr, Env(dict(VARS))) == int(ran.stdout)


def test_assignments_are_reported_with_their_values() -> None:
    """``x+=3`` assigns the new value; ``y++`` assigns and gives the old one."""
    env = Env({"x": "6", "y": "1"})
    assert evaluate("x+=3, y++", env) == 1
    assert env.assigned == {"x": 9, "y": 2}


def test_a_branch_an_unknown_value_decides_assigns_unknown_values() -> None:
    """``u ? a=1 : 2`` with ``u`` unknown: ``a`` may or may not be 1, so it is unknown."""
    env = Env({"u": None})
    assert evaluate("u ? a=1 : 2", env) is None
    assert env.assigned == {"a": None}


def test_a_branch_that_certainly_does_not_run_assigns_nothing() -> None:
    """``0 && (a=1)`` and ``1 || (a=1)`` leave ``a`` alone, as bash does."""
    env = Env({})
    evaluate("0 && (a=1), 1 || (a=2)", env)
    assert env.assigned == {}


def test_a_value_that_is_not_a_number_is_an_expression_and_its_subscript_is_expanded() -> None:
    """``x='a[$(cmd)]'; $((x))``: the subscript text is handed to the caller to expand."""
    env = Env({"x": "a[$(cp w x)]"})
    assert evaluate("x", env) is None
    assert env.subscripts == ["$(cp w x)"]


def test_an_error_gives_no_value() -> None:
    """Division by zero and syntax errors are bash errors: no value."""
    assert evaluate("1/0", Env({})) is None
    assert evaluate("1 +", Env({})) is None
    assert evaluate("$(cmd)", Env({})) is None


def test_nesting_past_the_bound_is_too_deep() -> None:
    """A value that names itself recurses until the bound, which raises TooDeep."""
    with pytest.raises(TooDeep):
        evaluate("x", Env({"x": "x"}))
    chain = {f"v{i}": f"v{i + 1}" for i in range(MAX_DEPTH + 2)}
    with pytest.raises(TooDeep):
        evaluate("v0", Env(dict(chain)))


def test_values_that_double_at_each_level_end_at_the_step_budget() -> None:
    """``a=b+b, b=c+c, ...`` would take 2**25 steps; the budget stops it quickly."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    env = Env({letters[i]: f"{letters[i + 1]}+{letters[i + 1]}" for i in range(25)})
    start = time.monotonic()
    with pytest.raises(TooDeep):
        evaluate("a", env)
    assert time.monotonic() - start < 5


def test_deeply_parenthesised_text_is_too_deep_not_a_crash() -> None:
    """Parentheses nested past Python's stack end in TooDeep."""
    with pytest.raises(TooDeep):
        evaluate("(" * 2000 + "1" + ")" * 2000, Env({}))


def test_is_number() -> None:
    """Plain decimal integers, with blanks and a sign, are numbers; expressions are not."""
    assert is_number(" -12 ") and is_number("0")
    assert not is_number("1+1") and not is_number("a[0]") and not is_number("")
