"""Shell variables as bash keeps them: attributes, name references, scopes, the variables the
shell itself reads, and the places where bash evaluates a variable's text as code.

Every assignment the walker makes goes through :func:`set_var`, which applies what bash applies:
``readonly`` refuses it, ``declare -i`` evaluates it as arithmetic, ``-l``/``-u`` change its case,
a name reference (``declare -n r=x``) assigns ``x``, and the variables that change the shell
(``HOME``, ``BASH_CMDS``, ``BASH_ALIASES``; ``GLOBIGNORE`` is read where globs expand) change the walker's state too.

Bash runs code hidden in values in three places: arithmetic (a value that is not a number is
evaluated as an expression, and an array subscript in it is expanded: ``x='a[$(cmd)]';
$((x))``), names given to builtins (``printf -v 'a[$(cmd)]'``, ``read``, ``declare``, ``unset``,
``[ -v ]``) and prompt expansion (``${x@P}``). Each is an ``eval`` of that text here: analysed when
the walker knows it, code it cannot read (``unseen``) when it does not.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import tree_sitter as ts

from guard.shell import arith as arithmetic
from guard.shell.expand import Expander, ShellState
from guard.shell.fields import Acc
from guard.shell.record import MAX_NEST
from guard.shell.words import Field, Var, names, short
from guard.types import EffectKind

__all__ = [
    "DYNAMIC",
    "SPECIAL_BUILTINS",
    "arith",
    "arith_node",
    "arith_range",
    "declare",
    "eval_text",
    "exported_functions",
    "import_functions",
    "scope_restore",
    "set_element",
    "set_var",
    "subscript",
    "test",
    "unseen",
    "unset",
    "var_name",
]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME_SUB = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)(?:\[(.*)\])?", re.S)
_CODE = ("$(", "`", "${", "$[", "<(", ">(")
_EXPANSIONS = names("simple_expansion expansion command_substitution arithmetic_expansion")
# Assigned before one of these, a variable keeps its value in POSIX mode (and in sh).
SPECIAL_BUILTINS = names(
    ": . break continue eval exec exit export readonly return set shift source times trap unset"
)
_MAX_REFS = 8  # name references followed through one another
# Variables the shell keeps changing itself (`$_` is the last argument of the last command,
# `[[ =~ ]]` fills BASH_REMATCH...): an assignment does not make their value known.
DYNAMIC = names(
    "_ LINENO SECONDS RANDOM SRANDOM EPOCHSECONDS EPOCHREALTIME BASHPID BASH_COMMAND "
    "BASH_LINENO BASH_SOURCE BASH_SUBSHELL BASH_ARGC BASH_ARGV FUNCNAME GROUPS DIRSTACK "
    "HISTCMD PIPESTATUS BASH_REMATCH PPID UID EUID BASH_VERSINFO"
)


# ------------------------------------------------------------------ assignment


def set_var(st: ShellState, name: str, var: Var, *, hops: int = 0) -> None:
    """Assign ``var`` to ``name`` as bash would, through attributes and name references."""
    if name in DYNAMIC:
        st.vars.pop(name, None)
        return
    attrs = st.attrs.get(name, "") if st.attrs else ""
    if attrs:
        if "r" in attrs:
            return  # readonly: bash refuses the assignment
        if "n" in attrs:
            target = st.namerefs.get(name)
            if target is None or hops >= _MAX_REFS:
                unseen(st, f"assigns through a name reference the analyser cannot follow ({name})")
                return
            set_var(st, target, var, hops=hops + 1)
            return
        if "i" in attrs and var.text is not None:
            n = arith(st, var.text, what=f"integer variable {name}")
            var = Var(str(n)) if n is not None else Var(None, flows=var.flows)
        if var.text is not None and ("l" in attrs or "u" in attrs):
            var = Var(var.text.lower() if "l" in attrs else var.text.upper(), flows=var.flows)
    st.vars[name] = var
    if st.allexport:
        st.exported.add(name)  # set -a: every variable assigned is exported
    if name in _SHELL_STATE:
        _SHELL_STATE[name](st, var)


def _home(st: ShellState, var: Var) -> None:
    st.home = var.text  # `cd` with no argument, `~`


def _table(st: ShellState, var: Var) -> None:
    # BASH_CMDS=(...) or BASH_ALIASES=(...) as a whole: not followed
    if var.text != "" or var.items:
        unseen(st, "sets the shell's command table: names then run what the analyser cannot name")


_SHELL_STATE: dict[str, Callable[[ShellState, Var], None]] = {
    "HOME": _home,
    "BASH_CMDS": _table,
    "BASH_ALIASES": _table,
}


def set_element(st: ShellState, name: str, key: str | None, var: Var) -> None:
    """``name[key]=value``: the shell's command and alias tables are followed, any other
    array becomes unknown (its elements are not followed)."""
    if name in ("BASH_CMDS", "BASH_ALIASES") and "r" not in st.attrs.get(name, ""):
        if key is None or var.text is None:
            unseen(st, f"sets {name}: a command name then runs what the analyser cannot name")
            return
        if name == "BASH_CMDS":
            st.hashed[key] = var.text  # as `hash -p VALUE KEY`
        else:
            st.aliases[key] = var.text
        return
    set_var(st, name, Var(None, flows=var.flows))


def unseen(st: ShellState, note: str) -> None:
    """Record code the analyser cannot read: a value it cannot see that bash evaluates."""
    st.run.emit(EffectKind.UNKNOWN, certain=False, via="bash", note=note, unseen=True)


# ------------------------------------------------------------------ names


def var_name(st: ShellState, text: str | None, *, what: str, subscripts: bool = True) -> str | None:
    """The variable a builtin is told to set or test (``read NAME``, ``printf -v NAME``).

    ``NAME[SUB]`` evaluates SUB as bash does (expanded, and arithmetic for an indexed array):
    it may run code. Returns the variable's name, or ``None`` when bash would reject it or the
    analyser cannot see it (then reported: such a name may be any variable).
    """
    if text is None:
        unseen(st, f"{what} names a variable the analyser cannot see")
        return None
    m = _NAME_SUB.fullmatch(text)
    if m is None:
        return None
    name, sub = m.group(1), m.group(2)
    if sub is not None:
        if not subscripts:
            return None
        arith(st, f"{name}[{sub}]", what=what)
    return name


def eval_text(st: ShellState, text: str, *, what: str) -> None:
    """Analyse ``text`` that bash expands as a word (an array subscript met in arithmetic, a
    prompt string): the substitutions in it run."""
    if not any(c in text for c in _CODE):
        return
    if "'" in text:
        # single quotes do not protect a subscript in arithmetic; parsed as shell they would
        unseen(st, f"{what} evaluates quoted text holding an expansion ({short(text)})")
    st.run_nested_text(": " + text, what=what)


# ------------------------------------------------------------------ arithmetic


class _Env:
    """The walker's side of :func:`guard.shell.arith.evaluate`."""

    __slots__ = ("st", "sure", "what")

    def __init__(self, st: ShellState, what: str, *, sure: bool = True) -> None:
        self.st = st
        self.what = what
        self.sure = sure  # False: a loop's test or step, run any number of times

    def lookup(self, name: str) -> str | None:
        if name.startswith("__peerguard_"):
            if name.startswith("__peerguard_data_"):
                unseen(
                    self.st,
                    f"{self.what} evaluates text the analyser cannot see (bash runs code in it)",
                )
            return None
        v = self.st.x.get_var(name)
        if v is None:
            return None  # not set by this command: the operator's environment
        if v.text is None:
            unseen(
                self.st,
                f"{self.what} evaluates ${name}, a value the analyser cannot see (bash runs "
                "code in it)",
            )
            return None
        return v.text

    def assign(self, name: str, value: int | None) -> None:
        known = value is not None and self.sure
        set_var(self.st, name, Var(str(value)) if known else Var(None))

    def subscript(self, text: str) -> str | None:
        if "$" not in text and "`" not in text:
            return text
        eval_text(self.st, text, what=f"{self.what} (array subscript)")
        return None

    def assoc(self, name: str) -> bool:
        return "A" in self.st.attrs.get(name, "")

    def element(self, name: str, key: str | None, index: int | None) -> str | None:
        v = self.st.x.get_var(name)
        if v is None or v.text is None or index is None:
            return None
        items = v.items if v.items is not None else (v.text,)
        return items[index] if -len(items) <= index < len(items) else ""


def arith(st: ShellState, text: str, *, what: str) -> int | None:
    """Evaluate ``text`` as bash arithmetic in ``st``: its assignments are made, a subscript
    holding an expansion is analysed, a value the analyser cannot see is code it did not read.
    Returns the value, or ``None`` when it is not known."""
    if st.nest >= MAX_NEST:
        unseen(st, f"{what} nested too deeply to analyse")
        return None
    st.nest += 1
    try:
        return arithmetic.evaluate(text, _Env(st, what))
    except arithmetic.TooDeep as exc:
        unseen(st, f"{what}: {exc}")
        return None
    finally:
        st.nest -= 1


_OPEN = names("$(( $[ ((")


def arith_node(
    st: ShellState, node: ts.Node, *, what: str = "arithmetic", x: Expander | None = None
) -> int | None:
    """Evaluate an arithmetic node of the tree (``$((...))``, ``((...))``, a subscript)."""
    lo, hi = node.start_byte, node.end_byte
    kids = node.children
    if len(kids) > 1 and kids[0].type in _OPEN:
        lo, hi = kids[0].end_byte, kids[-1].start_byte
    return arith_range(st, node, (lo, hi), what=what, x=x)


def arith_range(
    st: ShellState,
    node: ts.Node,
    span: tuple[int, int],
    *,
    what: str,
    sure: bool = True,
    x: Expander | None = None,
) -> int | None:
    """Evaluate the text of ``node`` between two byte offsets as arithmetic.

    Bash first expands the ``$`` expansions and substitutions in it, then evaluates the text.
    A part the walker cannot expand stands for a value it cannot see: unseen when it comes
    from data (a command's output, a variable read from input), merely unknown when it is a
    variable this command never set (the operator's environment). ``sure=False`` makes every
    assignment unknown (a loop's step, run any number of times).
    """
    if span[0] >= span[1]:
        return None
    st.nest += 1
    try:
        text = _expanded(st, node, span, x or st.x)
        if text is None:
            return None
        return arithmetic.evaluate(text, _Env(st, what, sure=sure))
    except arithmetic.TooDeep as exc:
        unseen(st, f"{what}: {exc}")
        return None
    finally:
        st.nest -= 1


def _expanded(st: ShellState, node: ts.Node, span: tuple[int, int], x: Expander) -> str | None:
    """The text of ``node`` in ``span`` with its expansions done (unknown ones as placeholder
    names); ``None`` past the bounds (reported)."""
    if st.nest >= MAX_NEST:
        unseen(st, "arithmetic nested too deeply to analyse")
        return None
    lo, hi = span
    src = st.src
    found: list[ts.Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.end_byte <= lo or n.start_byte >= hi:
            continue
        inside = n.start_byte >= lo and n.end_byte <= hi
        if inside and (n.type in _EXPANSIONS or n.type in ("string", "raw_string")):
            found.append(n)
            continue
        stack.extend(reversed(n.children))
    parts: list[str] = []
    pos = lo
    for k, n in enumerate(found):
        parts.append(src[pos : n.start_byte].decode("utf-8", "replace"))
        pos = n.end_byte
        acc = Acc()
        x.seg(n, acc, quoted=True)
        if acc.known:
            parts.append("".join(t for t, _ in acc.parts))
            continue
        name = _plain_name(st, n)
        kind = "env" if name is not None and x.get_var(name) is None else "data"
        parts.append(f" __peerguard_{kind}_{k} ")
    parts.append(src[pos:hi].decode("utf-8", "replace"))
    text = "".join(parts)
    if len(text) > arithmetic.MAX_EXPR:
        unseen(st, "arithmetic too long to analyse")
        return None
    return text


def subscript(
    st: ShellState, name: str, index: ts.Node, *, x: Expander | None = None
) -> str | None:
    """The subscript of ``name[...]`` as bash computes it (a word for an associative array or
    the shell's own tables, arithmetic otherwise); ``None`` when unknown. Runs what it holds."""
    if "A" in st.attrs.get(name, "") or name in ("BASH_CMDS", "BASH_ALIASES"):
        text = _expanded(st, index, (index.start_byte, index.end_byte), x or st.x)
        return None if text is None or "__peerguard_" in text else text
    n = arith_node(st, index, what=f"subscript of {name}", x=x)
    return None if n is None else str(n)


def test(st: ShellState, node: ts.Node) -> None:
    """``[[ ... ]]`` and ``[ ... ]``: the operands of ``-eq`` and kin in ``[[`` are arithmetic,
    the operand of ``-v`` is a variable name (both may run code); substitutions anywhere run."""
    double = bool(node.children) and node.children[0].type == "[["
    stack = [node]
    x = st.x
    while stack:
        n = stack.pop()
        t = n.type
        if t in ("command_substitution", "process_substitution"):
            x.seg(n, Acc(), quoted=True)
            continue
        if t in ("binary_expression", "unary_expression"):
            ops = [c for c in n.children if c.type == "test_operator"]
            op = st.text(ops[0]) if ops else ""
            operands = [c for c in n.named_children if c.type != "test_operator"]
            if double and t == "binary_expression" and op in _ARITH_TESTS and len(operands) == 2:
                for operand in operands:
                    arith_node(st, operand, what=f"[[ {op} ]]", x=x)
                continue
            if t == "unary_expression" and op == "-v" and operands:
                f = x.expand_one(operands[0])
                var_name(st, f.value if f.known else None, what="[ -v ]")
                continue
        stack.extend(reversed(n.children))


_ARITH_TESTS = names("-eq -ne -lt -le -gt -ge")


def _plain_name(st: ShellState, n: ts.Node) -> str | None:
    """The variable a ``$x``/``${x}`` node names, if it is nothing more."""
    text = st.text(n)
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    elif text.startswith("$"):
        text = text[1:]
    return text if _NAME.fullmatch(text) or text in ("$", "!") else None


# ------------------------------------------------------------------ declare, unset

_DECL_OPTS = "aAfFgilnprtuxI"


def declare(st: ShellState, kw: str, items: list[Field | tuple[str, Var]]) -> None:
    """``declare``/``typeset``/``local``/``export``/``readonly`` with expanded arguments.

    Args:
        st: The shell.
        kw: The builtin's name.
        items: Its arguments: expanded words, or ``(name, value)`` for an assignment the
            parser saw as one (its value expanded as an assignment's is).
    """
    on: set[str] = set()
    off: set[str] = set()
    if kw == "export":
        on.add("x")
    elif kw == "readonly":
        on.add("r")
    args: list[tuple[str | None, Var | None, Field | None]] = []
    for it in items:
        if isinstance(it, tuple):
            args.append((it[0], it[1], None))
            continue
        if it.known and len(it.value) > 1 and it.value[0] in "-+" and not args:
            letters = it.value[1:]
            if all(ch in _DECL_OPTS for ch in letters):
                (on if it.value[0] == "-" else off).update(letters)
                continue
        name, value = _split(it)
        args.append((name, value, it))
    if kw == "export" and "n" in on:
        on.discard("n")
        on.discard("x")
        off.add("x")
    funcs = "f" in on or "F" in on
    printing = "p" in on or (not args and not funcs)
    if printing or "F" in on:
        return
    local = kw in ("local", "declare", "typeset") and "g" not in on and st.scope is not None
    for name, value, f in args:
        if funcs:
            if name is None or value is not None:
                if f is not None and not f.known:
                    unseen(st, f"{kw} -f of a function the analyser cannot name")
                continue
            if "x" in on:
                st.exported_funcs.add(name)
            elif "x" in off:
                st.exported_funcs.discard(name)
            continue
        if name is None:
            if f is not None and not f.known:
                unseen(st, f"{kw} of a variable the analyser cannot name ({short(f.raw)})")
            continue
        base = var_name(st, name, what=kw, subscripts=kw not in ("export", "readonly"))
        if base is None:
            continue
        if local:
            st.scope_save(base)
        if st.temp is not None and base in st.temp and (on & {"x", "r"}):
            del st.temp[base]  # `x=9 export x`: the value given for the command stays
        _attributes(st, base, on - {"r"}, off, value)  # readonly once assigned
        if value is not None and "A" in on:
            value = Var(None, flows=value.flows)  # associative arrays are not followed
        if value is not None:
            if base != name:
                set_element(st, base, None, value)
            elif "n" in on:
                st.namerefs[base] = (
                    value.text if value.text and _NAME.fullmatch(value.text) else None
                )
                st.vars.pop(base, None)
                if value.text and not _NAME.fullmatch(value.text):
                    var_name(st, value.text, what=f"{kw} -n")  # `declare -n r='a[$(cmd)]'`
            else:
                set_var(st, base, value)
        elif local:
            st.vars[base] = Var("")  # `local x`: empty here until assigned
        if "r" in on:
            _attributes(st, base, {"r"}, set(), value)
        if "x" in on:
            st.exported.add(base)
        elif "x" in off:
            st.exported.discard(base)


def _attributes(st: ShellState, name: str, on: set[str], off: set[str], value: Var | None) -> None:
    kept = st.attrs.get(name, "")
    if "r" in kept:
        return
    now = (set(kept) | (on & set(_ATTRS))) - off
    if "l" in on:
        now.discard("u")
    if "u" in on:
        now.discard("l")
    if "n" in now and "n" not in kept and value is None:
        st.namerefs[name] = None  # `declare -n r`: where it points is set by a later `r=x`
    if now:
        st.attrs[name] = "".join(sorted(now))
    else:
        st.attrs.pop(name, None)
    if "n" in off:
        st.namerefs.pop(name, None)


_ATTRS = "AailnrtuI"


def _split(f: Field) -> tuple[str | None, Var | None]:
    """A declaration word: ``name``, or ``name=value`` (the name may come from an expansion)."""
    if f.known:
        name, eq, value = f.value.partition("=")
        return (name, Var(value) if eq else None) if name else (None, None)
    # the name is known if the '=' comes before any unknown part
    head: list[str] = []
    for text, unknown in f.pieces:
        if unknown:
            return None, None
        if "=" in text:
            head.append(text.split("=", 1)[0])
            return "".join(head) or None, Var(None, flows=f.flows)
        head.append(text)
    return None, None


def unset(st: ShellState, fields: list[Field]) -> None:
    """``unset [-fvn] NAME...``: a subscript is evaluated, a name reference unsets its target."""
    mode = ""
    names_seen = False
    for f in fields:
        if not names_seen and f.known and f.value.startswith("-") and len(f.value) > 1:
            mode += f.value[1:]
            continue
        names_seen = True
        if not f.known:
            unseen(st, f"unset of a name the analyser cannot see ({short(f.raw)})")
            continue
        if "f" in mode:
            st.funcs.pop(f.value, None)
            st.exported_funcs.discard(f.value)
            continue
        name = var_name(st, f.value, what="unset")
        if name is None:
            continue
        if "r" in st.attrs.get(name, ""):
            continue
        if "n" in st.attrs.get(name, "") and "n" not in mode:
            target = st.namerefs.get(name)
            if target is None:
                unseen(st, f"unset through a name reference the analyser cannot follow ({name})")
                continue
            name = target
        if name != f.value:
            set_element(st, name, None, Var(""))
        elif name == "IFS":
            st.vars.pop(name, None)  # unset IFS splits as the default does
        else:
            st.vars[name] = Var("")
            st.attrs.pop(name, None)
            st.namerefs.pop(name, None)
        st.exported.discard(name)


# ------------------------------------------------------------------ child shells


def exported_functions(st: ShellState) -> dict[str, Var]:
    """The exported functions as bash passes them to a child: ``BASH_FUNC_name%%`` variables
    whose text is the function's definition."""
    out: dict[str, Var] = {}
    for name in st.exported_funcs:
        fn = st.funcs.get(name)
        if fn is None:
            continue
        body, src = fn
        text = src[body.start_byte : body.end_byte].decode("utf-8", "replace")
        out[f"BASH_FUNC_{name}%%"] = Var("() " + text)
    return out


def import_functions(st: ShellState) -> None:
    """Define the functions a new bash finds in its environment (``BASH_FUNC_name%%``), as
    bash does at startup; they stay exported to its own children."""
    for key in [k for k in st.vars if k.startswith("BASH_FUNC_") and k.endswith("%%")]:
        var = st.vars.pop(key)
        name = key[len("BASH_FUNC_") : -2]
        text = var.text
        if text is None or not text.startswith("() "):
            if text is None:
                unseen(st, f"imports function {short(name)} the analyser cannot read")
            continue
        st.define_function(name, text[3:])


def scope_restore(st: ShellState, saved: dict[str, tuple[Var | None, str | None]]) -> None:
    """Put back the variables a function made local (or a prefix assignment set)."""
    for name, (var, attrs) in saved.items():
        if var is None:
            st.vars.pop(name, None)
        else:
            st.vars[name] = var
        if attrs:
            st.attrs[name] = attrs
        else:
            st.attrs.pop(name, None)
