"""Bash arithmetic (``$((...))``, ``((...))``, ``let``, ``[[ a -eq b ]]``, array subscripts) as
bash evaluates it, with the assignments it makes.

Arithmetic is code: ``x=6; ((x+=3))`` changes ``x``, and a variable whose value is not a number
is evaluated as an expression in turn, so ``x='a[$(cmd)]'; echo $((x))`` runs ``cmd`` (an
array subscript met during evaluation is expanded as a word). :func:`evaluate` follows both
through an :class:`Env` that the shell walker supplies: it gives variables' text, records
assignments, and expands subscripts (analysing the code in them).

Unknown values give an unknown result (``None``), never a guess; a branch that may or may not run
(the other side of ``&&``, ``||``, ``?:`` decided by an unknown value) assigns unknown values.
Everything is bounded: past :data:`MAX_STEPS` tokens or :data:`MAX_DEPTH` nested variable
values, :class:`TooDeep` is raised for the caller to report as code it did not read.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from guard.exceptions import GuardError

__all__ = ["MAX_DEPTH", "MAX_STEPS", "Env", "TooDeep", "evaluate", "is_number"]

MAX_DEPTH = 32  # variable values evaluated inside variable values (bash allows 1024)
MAX_STEPS = 20_000  # tokens read in one evaluation, across every nested value
MAX_EXPR = 8192  # characters of one expression

_TOKEN = re.compile(
    r"\s*(?:"
    r"(?P<num>[0-9][0-9A-Za-z@_#]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op><<=|>>=|\*\*|\+\+|--|<<|>>|<=|>=|==|!=|&&|\|\||[-+*/%&^|]=|[-+*/%&^|<>=!~?:,()\[\]])"
    r")"
)
_INT = re.compile(r"\s*[-+]?\s*[0-9]+\s*")
_MASK = (1 << 64) - 1
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ@_"


class TooDeep(GuardError):
    """A bound of the evaluation was reached (nesting, steps or size)."""


class _Error(Exception):
    """An error bash reports: the expansion fails with no value."""


def is_number(text: str) -> bool:
    """True when ``text`` is a plain decimal integer (what most variables in arithmetic hold)."""
    return bool(_INT.fullmatch(text))


def _wrap(v: int) -> int:
    v &= _MASK
    return v - (1 << 64) if v >> 63 else v


def _number(tok: str) -> int:
    """A bash integer constant: decimal, ``0x`` hex, ``0`` octal or ``base#digits``."""
    if "#" in tok:
        base_s, _, digits = tok.partition("#")
        if not base_s.isdigit() or not digits:
            raise _Error(tok)
        base = int(base_s)
        if not 2 <= base <= 64:
            raise _Error(tok)
        value = 0
        for ch in digits:
            d = _DIGITS.find(ch) if base > 36 else _DIGITS.find(ch.lower())
            if d < 0 or d >= base:
                raise _Error(tok)
            value = value * base + d
        return _wrap(value)
    try:
        if tok[:2] in ("0x", "0X"):
            return _wrap(int(tok[2:], 16))
        if len(tok) > 1 and tok[0] == "0":
            return _wrap(int(tok, 8))
        return _wrap(int(tok, 10))
    except ValueError:
        raise _Error(tok) from None


@dataclass(slots=True)
class _Ref:
    """A place an assignment can go: a variable or one element of an array."""

    name: str
    index: str | None = None  # the subscript text, for name[...]


class Env(Protocol):
    """What the expression can see and change: the shell's variables."""

    def lookup(self, name: str) -> str | None:
        """A variable's text (``None``: unknown)."""

    def assign(self, name: str, value: int | None) -> None:
        """Record an assignment (``None``: an unknown value)."""

    def subscript(self, text: str) -> str | None:
        """A subscript as written, expanded as bash expands it (``None``: unknown)."""

    def assoc(self, name: str) -> bool:
        """True when ``name`` is an associative array (its subscripts are not arithmetic)."""

    def element(self, name: str, key: str | None, index: int | None) -> str | None:
        """One element's text, by key (associative) or index (``None``: unknown)."""


class _Parser:
    __slots__ = ("budget", "dead", "depth", "env", "pos", "sure", "toks")

    def __init__(self, text: str, env: Env, depth: int, budget: list[int]) -> None:
        if len(text) > MAX_EXPR:
            raise TooDeep("expression too long")
        if depth > MAX_DEPTH:
            raise TooDeep("values nested too deeply in arithmetic")
        self.env = env
        self.depth = depth
        self.budget = budget
        self.sure = True  # False inside a branch that may not run: it assigns unknown values
        self.dead = False  # inside a branch that certainly does not run: read for syntax only
        self.toks = self._tokens(text)
        self.pos = 0

    def _tokens(self, text: str) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        i = 0
        n = len(text)
        while i < n:
            self.budget[0] -= 1
            if self.budget[0] < 0:
                raise TooDeep("expression too long")
            if text[i] == "[" and out and out[-1][0] == "name":
                # a subscript, kept as written: bash expands it as a word when it is used
                level, j = 0, i
                while j < n:
                    if text[j] == "[":
                        level += 1
                    elif text[j] == "]":
                        level -= 1
                        if level == 0:
                            break
                    j += 1
                if j >= n:
                    raise _Error(text[i:])
                out.append(("sub", text[i + 1 : j]))
                i = j + 1
                continue
            m = _TOKEN.match(text, i)
            if m is None or m.end() == i:
                if text[i:].strip() == "":
                    break
                raise _Error(text[i:])
            kind = m.lastgroup or ""
            if not kind:
                break
            out.append((kind, m.group(kind)))
            i = m.end()
        return out

    # ------------------------------------------------------------- tokens

    def peek(self) -> str:
        return self.toks[self.pos][1] if self.pos < len(self.toks) else ""

    def kind(self) -> str:
        return self.toks[self.pos][0] if self.pos < len(self.toks) else ""

    def take(self) -> str:
        tok = self.peek()
        self.pos += 1
        return tok

    def expect(self, tok: str) -> None:
        if self.take() != tok:
            raise _Error(tok)

    # ------------------------------------------------------------ grammar

    def comma(self) -> int | None:
        v = self.assignment()
        while self.peek() == ",":
            self.take()
            v = self.assignment()
        return v

    def assignment(self) -> int | None:
        start = self.pos
        if self.kind() == "name":
            ref = self.ref()
            op = self.peek()
            if op == "=" or (len(op) >= 2 and op[-1] == "=" and op not in ("==", "!=", "<=", ">=")):
                self.take()
                rhs = self.assignment()
                if op == "=":
                    value = rhs
                else:
                    old = self.value_of(ref)
                    value = self.binary(op[:-1], old, rhs)
                self.store(ref, value)
                return value
            self.pos = start
        return self.ternary()

    def ternary(self) -> int | None:
        cond = self.logical_or()
        if self.peek() != "?":
            return cond
        self.take()
        a = self.branch(cond is None or cond != 0, cond is not None, self.comma)
        self.expect(":")
        b = self.branch(cond is None or cond == 0, cond is not None, self.assignment)
        if cond is None:
            return None
        return a if cond != 0 else b

    def branch(self, runs: bool, known: bool, parse: Callable[[], int | None]) -> int | None:
        """Parse one side of ``?:``, ``&&`` or ``||``: its assignments count only if it runs,
        and are unknown when that depends on an unknown value."""
        saved = self.sure, self.dead
        self.sure = self.sure and runs and known
        self.dead = self.dead or (known and not runs)
        try:
            v = parse()
            return 0 if self.dead else v
        finally:
            self.sure, self.dead = saved

    def logical_or(self) -> int | None:
        v = self.logical_and()
        while self.peek() == "||":
            self.take()
            known = v is not None
            rhs = self.branch(v is None or v == 0, known, self.logical_and)
            if v is None:
                v = None
            elif v != 0:
                v = 1
            else:
                v = None if rhs is None else int(rhs != 0)
        return v

    def logical_and(self) -> int | None:
        v = self.bit_or()
        while self.peek() == "&&":
            self.take()
            known = v is not None
            rhs = self.branch(v is None or v != 0, known, self.bit_or)
            if v is None:
                v = None
            elif v == 0:
                v = 0
            else:
                v = None if rhs is None else int(rhs != 0)
        return v

    def _left(self, ops: tuple[str, ...], nxt: Callable[[], int | None]) -> int | None:
        v = nxt()
        while self.peek() in ops:
            op = self.take()
            v = self.binary(op, v, nxt())
        return v

    def bit_or(self) -> int | None:
        return self._left(("|",), self.bit_xor)

    def bit_xor(self) -> int | None:
        return self._left(("^",), self.bit_and)

    def bit_and(self) -> int | None:
        return self._left(("&",), self.equality)

    def equality(self) -> int | None:
        return self._left(("==", "!="), self.compare)

    def compare(self) -> int | None:
        return self._left(("<", ">", "<=", ">="), self.shift)

    def shift(self) -> int | None:
        return self._left(("<<", ">>"), self.additive)

    def additive(self) -> int | None:
        return self._left(("+", "-"), self.multiplicative)

    def multiplicative(self) -> int | None:
        return self._left(("*", "/", "%"), self.power)

    def power(self) -> int | None:
        base = self.unary()
        if self.peek() == "**":
            self.take()
            exp = self.power()  # right associative
            return self.binary("**", base, exp)
        return base

    def unary(self) -> int | None:
        tok = self.peek()
        nxt = self.toks[self.pos + 1][0] if self.pos + 1 < len(self.toks) else ""
        if tok in ("++", "--") and nxt == "name":
            self.take()
            ref = self.ref()
            old = self.value_of(ref)
            value = None if old is None else _wrap(old + (1 if tok == "++" else -1))
            self.store(ref, value)
            return value
        if tok in ("-", "+", "!", "~"):
            self.take()
            v = self.unary()
            if v is None:
                return None
            if tok == "-":
                return _wrap(-v)
            if tok == "!":
                return int(v == 0)
            if tok == "~":
                return _wrap(~v)
            return v
        return self.postfix()

    def postfix(self) -> int | None:
        if self.kind() == "name":
            ref = self.ref()
            old = self.value_of(ref)
            if self.peek() in ("++", "--"):
                op = self.take()
                self.store(ref, None if old is None else _wrap(old + (1 if op == "++" else -1)))
            return old
        return self.primary()

    def primary(self) -> int | None:
        kind, tok = self.kind(), self.take()
        if kind == "num":
            return _number(tok)
        if tok == "(":
            v = self.comma()
            self.expect(")")
            return v
        raise _Error(tok or "end of expression")

    # ------------------------------------------------------------ values

    def ref(self) -> _Ref:
        name = self.take()
        if self.kind() == "sub":
            return _Ref(name, self.take())
        return _Ref(name)

    def value_of(self, ref: _Ref) -> int | None:
        text = self.env.lookup(ref.name) if ref.index is None else self.element(ref)
        if text is None:
            return None
        if text.strip() == "":
            return 0
        if is_number(text):
            return _wrap(int(text.replace(" ", "")))
        # a value that is not a number is an expression in turn
        return self.nested(text)

    def nested(self, text: str) -> int | None:
        sub = _Parser(text, self.env, self.depth + 1, self.budget)
        sub.sure, sub.dead = self.sure, self.dead
        return sub.run()

    def element(self, ref: _Ref) -> str | None:
        """Expand and evaluate a subscript (bash does, even to assign), then read the element."""
        key = self.env.subscript(ref.index or "")
        if key is None:
            return None
        if self.env.assoc(ref.name):
            return self.env.element(ref.name, key, None)
        index = self.nested(key) if key.strip() else None
        return self.env.element(ref.name, key, index)

    def store(self, ref: _Ref, value: int | None) -> None:
        if self.dead:
            return
        if ref.index is not None:
            self.element(ref)
            self.env.assign(ref.name, None)  # one element of an array: the array is not followed
            return
        self.env.assign(ref.name, value if self.sure else None)

    def binary(self, op: str, a: int | None, b: int | None) -> int | None:
        if a is None or b is None:
            return None
        if self.dead:
            return 0  # not evaluated by bash: no error either
        if op == "+":
            return _wrap(a + b)
        if op == "-":
            return _wrap(a - b)
        if op == "*":
            return _wrap(a * b)
        if op in ("/", "%"):
            if b == 0:
                raise _Error("division by 0")
            q = abs(a) // abs(b) * (1 if (a < 0) == (b < 0) else -1)
            return _wrap(q if op == "/" else a - b * q)
        if op == "**":
            if b < 0:
                raise _Error("exponent less than 0")
            return _wrap(pow(a, b, 1 << 64))
        if op == "<<":
            return _wrap(a << (b & 63))
        if op == ">>":
            return a >> (b & 63)
        if op == "&":
            return a & b
        if op == "|":
            return a | b
        if op == "^":
            return a ^ b
        if op == "<":
            return int(a < b)
        if op == ">":
            return int(a > b)
        if op == "<=":
            return int(a <= b)
        if op == ">=":
            return int(a >= b)
        if op == "==":
            return int(a == b)
        if op == "!=":
            return int(a != b)
        raise _Error(op)

    def run(self) -> int | None:
        if not self.toks:
            return 0
        v = self.comma()
        if self.pos != len(self.toks):
            raise _Error(self.peek())
        return v


def evaluate(text: str, env: Env) -> int | None:
    """Evaluate ``text`` as bash arithmetic.

    Args:
        text: The expression, with the shell's expansions already done.
        env: The shell's variables: read, assigned, and asked to expand subscripts.

    Returns:
        The value, or ``None`` when it depends on something unknown or bash reports an error
        (the assignments made before the error stand, as in bash).

    Raises:
        TooDeep: A bound was reached.
    """
    try:
        return _Parser(text, env, 0, [MAX_STEPS]).run()
    except _Error:
        return None
    except RecursionError:
        raise TooDeep("expression nested too deeply") from None
