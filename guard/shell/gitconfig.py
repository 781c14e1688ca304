"""git's configuration: the file format, and which settings name code that git runs.

:func:`parse` reads a config file as git does (sections, subsections, quoting, escapes,
continuation lines, comments); :func:`key` puts a ``-c`` key in the same canonical form;
:func:`code_kind` says whether a setting's value is code git runs, and how it runs it.
"""

from __future__ import annotations

import re
import shlex

__all__ = ["BOOLEANS", "code_kind", "ext_command", "key", "parse", "section_text"]

BOOLEANS = frozenset(("true", "false", "yes", "no", "on", "off", "1", "0", ""))

# Settings whose value is code git runs, by how it runs it:
#   shell       shell text, run with ``sh -c``
#   maybe-shell a boolean (git's own behaviour) or shell text
#   program     a program's path, run with arguments
#   credential  ``!shell text``, an absolute path, or NAME for the program git-credential-NAME
#   bang        ``!shell text``, or a keyword
#   url         an ``ext::`` URL runs its command
#   alias       ``!shell text``, or a git command line (run only when the alias is)
#   hooks       the hooks folder; include: another config file; template: the template folder
_CODE_KEYS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.I | re.S), kind)
    for pattern, kind in (
        (r"alias\..+", "alias"),
        (r"core\.fsmonitor|core\.pager|pager\..+|interactive\.difffilter", "maybe-shell"),
        (
            r"core\.editor|sequence\.editor|core\.sshcommand|core\.alternaterefscommand|"
            r"diff\.external|diff\..+\.(command|textconv)|difftool\..+\.cmd|mergetool\..+\.cmd|"
            r"filter\..+\.(clean|smudge|process)|merge\..+\.driver|uploadpack\.packobjectshook|"
            r"remote\..+\.(uploadpack|receivepack)|gpg\.ssh\.defaultkeycommand|"
            r"trailer\..+\.(cmd|command)|sendemail\.(tocmd|cccmd|sendmailcmd)|"
            r"browser\..+\.cmd|man\..+\.cmd|instaweb\.httpd",
            "shell",
        ),
        (r"core\.askpass|core\.gitproxy|gpg\.program|gpg\..+\.program", "program"),
        (r"credential(\..+)?\.helper", "credential"),
        (r"submodule\..+\.update", "bang"),
        (r"remote\..+\.(push)?url|url\..+\.(push)?insteadof", "url"),
        (r"core\.hookspath", "hooks"),
        (r"include\.path|includeif\..+\.path", "include"),
        (r"init\.templatedir", "template"),
    )
)


def code_kind(name: str) -> str | None:
    """How git runs the value of setting ``name`` (canonical form), or ``None`` for data."""
    for pattern, kind in _CODE_KEYS:
        if pattern.fullmatch(name):
            return kind
    return None


def key(text: str) -> str | None:
    """A key as written after ``-c`` in canonical form (section and name in lower case, the
    subsection as written), or ``None`` when git would reject it."""
    first, dot, rest = text.partition(".")
    if not dot or not rest:
        return None
    sub, _, name = rest.rpartition(".")
    if not name or not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]*", name):
        return None
    section = first.lower()
    return f"{section}.{sub}.{name.lower()}" if sub else f"{section}.{name.lower()}"


def parse(text: str) -> list[tuple[str, str | None]] | None:
    """The settings of a config file in order, as (key, value); a key written alone has the
    value ``None`` (true). ``None`` when git would refuse the file."""
    out: list[tuple[str, str | None]] = []
    section: str | None = None
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
            continue
        if ch in "#;":
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if ch == "[":
            parsed = _section(text, i)
            if parsed is None:
                return None
            section, i = parsed
            continue
        m = re.compile(r"[A-Za-z][A-Za-z0-9-]*").match(text, i)
        if m is None or section is None:
            return None
        name = m.group().lower()
        i = m.end()
        while i < n and text[i] in " \t":
            i += 1
        if i >= n or text[i] in "\r\n#;":
            out.append((f"{section}.{name}", None))
            continue
        if text[i] != "=":
            return None
        value, i = _value(text, i + 1)
        if value is None:
            return None
        out.append((f"{section}.{name}", value))
    return out


def _section(text: str, i: int) -> tuple[str, int] | None:
    """``[name]``, ``[name "sub"]`` or the old ``[name.sub]``; returns (prefix, next index)."""
    end = text.find("]", i)
    m = re.compile(r"\[\s*([A-Za-z0-9.-]+)\s*").match(text, i)
    if m is None or end < 0:
        return None
    name = m.group(1)
    j = m.end()
    if text.startswith("]", j):
        low, dot, sub = name.partition(".")
        return (f"{low.lower()}.{sub.lower()}" if dot else low.lower()), j + 1
    if not text.startswith('"', j):
        return None
    sub_chars: list[str] = []
    j += 1
    while j < len(text) and text[j] != '"':
        if text[j] == "\n":
            return None
        if text[j] == "\\" and j + 1 < len(text):
            j += 1
        sub_chars.append(text[j])
        j += 1
    if not text.startswith('"]', j) or "." in name:
        return None
    return f"{name.lower()}.{''.join(sub_chars)}", j + 2


def _value(text: str, i: int) -> tuple[str | None, int]:
    """A value after ``=``: quotes, escapes, continuations, comments; returns (value, next)."""
    out: list[str] = []
    quoted = False
    pending = ""  # whitespace kept only if more value follows it
    n = len(text)
    while i < n:
        ch = text[i]
        i += 1
        if ch == "\n":
            if quoted:
                return None, i
            break
        if ch in " \t" and not quoted:
            if out:
                pending += ch
            continue
        if ch in "#;" and not quoted:
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            break
        out.append(pending)
        pending = ""
        if ch == '"':
            quoted = not quoted
            continue
        if ch == "\\":
            if i >= n:
                return None, i
            esc = text[i]
            i += 1
            if esc == "\n":
                continue
            if esc == "\r" and text.startswith("\n", i):
                i += 1
                continue
            mapped = {"n": "\n", "t": "\t", "b": "\b", "\\": "\\", '"': '"'}.get(esc)
            if mapped is None:
                return None, i
            out.append(mapped)
            continue
        if ch != "\r":
            out.append(ch)
    if quoted:
        return None, i
    return "".join(out), i


def section_text(name: str, value: str) -> str | None:
    """The lines ``git config NAME VALUE`` adds to a file, or ``None`` for a bad key."""
    canon = key(name)
    if canon is None:
        return None
    first, _, rest = canon.partition(".")
    sub, _, var = rest.rpartition(".")
    head = f'[{first} "{_escape(sub)}"]' if sub else f"[{first}]"
    return f'{head}\n\t{var} = "{_escape(value)}"\n'


def _escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")


def ext_command(url: str) -> str:
    """The shell text an ``ext::`` URL runs (git splits it on spaces itself; ``% `` is a
    space, ``%%`` a percent sign, ``%s``/``%S`` the service name)."""
    words: list[str] = []
    cur: list[str] = []
    body = url[len("ext::") :]
    i = 0
    while i < len(body):
        ch = body[i]
        if ch == "%" and i + 1 < len(body):
            nxt = body[i + 1]
            cur.append(
                {" ": " ", "%": "%", "s": "upload-pack", "S": "git-upload-pack"}.get(nxt, "")
            )
            i += 2
            continue
        if ch == " ":
            words.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    words.append("".join(cur))
    return " ".join(shlex.quote(w) for w in words if w)
