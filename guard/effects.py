"""A call's predicted effects: tool specs for structured tools, the shell analyser for shells.

:class:`EffectFinder` is the first stage of a call's path: it takes a :class:`~guard.types.ToolCall`
and returns the effects it would have. A structured tool's effects come from its spec's templates
(``{source}`` read, ``{dest}`` written...); a shell tool's command goes to :mod:`guard.shell`.

Built-in specs cover the bench tools of the scenario format (``read_file``, ``copy_file``,
``transfer_file``, ``set_config``, ``execute_shutdown``, ...), LangChain's file-management
toolkit (``file_delete``, ``list_directory``, ``move_file``, ...) and the tools of the
reference MCP filesystem server (``read_text_file``, ``edit_file``, ``move_file``, ...: see
:data:`MCP_FILESYSTEM_TOOLS`). Users declare specs for their own tools in the policy's
``tools:`` section with the same schema; a tool with no spec gets one uncertain effect, so
the policy asks a human instead of letting it through.

A template argument that holds a list of paths (``read_multiple_files``'s ``paths``) stands
for each of them; a ``write`` whose content is a list of ``{oldText, newText}`` edits
(``edit_file``) is simulated as those replacements on the file as it stands.
"""

from __future__ import annotations

import itertools
import os
import re
import shlex
from collections.abc import Mapping
from typing import Any

from guard import shell
from guard.configs import is_true
from guard.paths import HostMap
from guard.policy import EffectTemplate, ToolSpec
from guard.types import ConfigEdit, Effect, EffectKind, Location, ToolCall

#: Tools whose ``command`` argument is a shell command line, analysed by :mod:`guard.shell`.
DEFAULT_SHELL_TOOLS = (
    "shell", "bash", "sh", "terminal", "run_shell", "run_shell_command", "execute_command",
    "run_command", "exec_command",
)  # fmt: skip

_REF = re.compile(r"\{([A-Za-z_][A-Za-z0-9_|]*)\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MISSING = object()


def _spec(*effects: dict[str, Any], inert: tuple[str, ...] = ()) -> ToolSpec:
    return ToolSpec.model_validate({"effects": list(effects), "inert_args": list(inert)})


BUILTIN_SPECS: dict[str, ToolSpec] = {
    # The bench tools of the scenario format (with LangChain's and the MCP filesystem
    # server's argument names as fallbacks).
    "read_file": _spec({"kind": "read", "path": "{path|file_path}"}, inert=("head", "tail")),
    "write_file": _spec(
        {
            "kind": "write",
            "path": "{path|file_path}",
            "content": "{content|text}",
            "append": "{append}",
        }
    ),
    "append_file": _spec(
        {"kind": "write", "path": "{path|file_path}", "content": "{content|text}", "append": "true"}
    ),
    "delete_file": _spec({"kind": "delete", "path": "{path|file_path}", "recursive": True}),
    "copy_file": _spec(
        {
            "kind": "copy",
            "path": "{src|source_path}",
            "dest": "{dst|destination_path}",
            "recursive": True,
        }
    ),
    "move_file": _spec(
        {
            "kind": "move",
            "path": "{src|source_path|source}",
            "dest": "{dst|destination_path|destination}",
            "recursive": True,
        }
    ),
    "list_dir": _spec({"kind": "list", "path": "{path|dir_path}"}),
    "transfer_file": _spec(
        {"kind": "transfer", "path": "{src}", "host": "{host}", "dest": "{dst}", "recursive": True}
    ),
    "set_config": _spec(
        {"kind": "config_set", "path": "{path}", "key": "{key}", "value": "{value}"}
    ),
    "remove_config_key": _spec({"kind": "config_remove", "path": "{path}", "key": "{key}"}),
    "execute_shutdown": _spec({"kind": "shutdown", "agent": "{target|agent}"}),
    # LangChain's FileManagementToolkit (langchain_community.tools.file_management).
    "file_delete": _spec({"kind": "delete", "path": "{file_path}"}),
    "list_directory": _spec({"kind": "list", "path": "{dir_path|path}"}),
    "file_search": _spec({"kind": "list", "path": "{dir_path}", "recursive": True}),
    # The reference MCP filesystem server (@modelcontextprotocol/server-filesystem); its
    # read_file, write_file, move_file and list_directory share the specs above.
    "read_text_file": _spec({"kind": "read", "path": "{path}"}, inert=("head", "tail")),
    "read_media_file": _spec({"kind": "read", "path": "{path}"}),
    "read_multiple_files": _spec({"kind": "read", "path": "{paths}"}),
    "edit_file": _spec(
        {"kind": "write", "path": "{path}", "content": "{edits}"}, inert=("dryRun",)
    ),
    "create_directory": _spec({"kind": "write", "path": "{path}"}),
    "list_directory_with_sizes": _spec({"kind": "list", "path": "{path}"}, inert=("sortBy",)),
    "directory_tree": _spec(
        {"kind": "list", "path": "{path}", "recursive": True}, inert=("excludePatterns",)
    ),
    "search_files": _spec(
        {"kind": "list", "path": "{path}", "recursive": True},
        inert=("pattern", "excludePatterns"),
    ),
    "get_file_info": _spec({"kind": "list", "path": "{path}"}),
    "list_allowed_directories": _spec({"kind": "list"}),
}

#: The tools of the reference MCP filesystem server, each with a built-in spec above.
MCP_FILESYSTEM_TOOLS = (
    "read_file", "read_text_file", "read_media_file", "read_multiple_files", "write_file",
    "edit_file", "create_directory", "list_directory", "list_directory_with_sizes",
    "directory_tree", "move_file", "search_files", "get_file_info", "list_allowed_directories",
)  # fmt: skip


def render(template: str | None, args: Mapping[str, Any]) -> Any:
    """Fill a template from call arguments.

    ``"{a|b}"`` alone yields the first present argument's value, of whatever type;
    templates mixing text and references yield a string. Returns ``None`` when an argument
    the template needs is missing (or the template is ``None``).
    """
    if template is None:
        return None
    names = _WHOLE_REFS.get(template)
    if names is None:
        whole = _REF.fullmatch(template)
        names = _WHOLE_REFS[template] = tuple(whole.group(1).split("|")) if whole else ()
    if names:
        for name in names:
            value = args.get(name)
            if value is not None:
                return value
        return None

    missing = False

    def sub(m: re.Match[str]) -> str:
        nonlocal missing
        value = _first(m.group(1), args)
        if value is _MISSING:
            missing = True
            return ""
        return str(value)

    out = _REF.sub(sub, template)
    return None if missing else out


# Template text to the names of a whole-template reference ("{a|b}" -> ("a", "b")), or ()
# for text that mixes references and words. Templates come from specs: a bounded set.
_WHOLE_REFS: dict[str, tuple[str, ...]] = {}


def render_all(template: str | None, args: Mapping[str, Any]) -> list[Any]:
    """Every value a template may stand for: one per alias present in ``args``.

    ``"{src|source_path}"`` given both ``src`` and ``source_path`` stands for both: the tool
    runs the one its own schema knows, which the guard cannot tell, so each is judged (a
    decoy ``src`` must not hide the real ``source_path``). Otherwise a one-item list of what
    :func:`render` gives.
    """
    if template is None:
        return [None]
    names = _WHOLE_REFS.get(template)
    if names is None:
        render(template, args)  # works out the template's names once
        names = _WHOLE_REFS[template]
    if not names:
        return [render(template, args)]
    found: list[Any] = []
    for n in names:
        value = args.get(n)
        if value is not None and value not in found:
            found.append(value)
    return found or [None]


def template_args(spec: ToolSpec) -> frozenset[str]:
    """The argument names a spec's templates read, and the ones it declares inert."""
    found: set[str] = set(spec.inert_args)
    for t in spec.effects:
        for name in _TEMPLATE_FIELDS:
            value = getattr(t, name)
            if isinstance(value, str):
                for ref in _REF.findall(value):
                    found.update(ref.split("|"))
    return frozenset(found)


def _first(names: str, args: Mapping[str, Any]) -> Any:
    for name in names.split("|"):
        if name in args and args[name] is not None:
            return args[name]
    return _MISSING


_SIMPLE_KINDS = {k: EffectKind(k) for k in ("read", "list", "delete", "exec")}
_TEMPLATE_FIELDS = (
    "kind", "path", "dest", "host", "content", "append", "key", "value", "agent", "command",
    "cwd", "stdin", "env", "recursive",
)  # fmt: skip
# The fields of a structured template a call's arguments fill (shell fields are rendered by
# shell_commands).
_FILLED = ("path", "dest", "host", "content", "append", "key", "value", "agent")


class SpecContext:
    """Where a structured tool's relative paths start, and which hosts exist."""

    __slots__ = ("cwd", "home", "hosts")

    def __init__(self, cwd: str, hosts: HostMap, home: str | None = None) -> None:
        self.cwd = cwd
        self.hosts = hosts
        self.home = home


def _location(value: Any, raw_template: str | None, ctx: SpecContext) -> Location:
    if type(value) is str and value and "\x00" not in value:
        return ctx.hosts.local(value, ctx.cwd, ctx.home)
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\x00" in value:
        return Location(raw=repr(value) if value is not None else f"<missing {raw_template}>")
    return ctx.hosts.local(value, ctx.cwd, ctx.home)


def _into_folder(src: Location, dest: Location, hosts: HostMap) -> Location:
    # A destination that is an existing folder receives the item inside it.
    if dest.path is not None and src.path is not None and hosts.isdir(dest.path):
        inside = os.path.join(dest.path, os.path.basename(src.path))
        return Location(raw=dest.raw, path=inside, host=dest.host, visible=dest.visible)
    return dest


def expand(tool: str, spec: ToolSpec, args: Mapping[str, Any], ctx: SpecContext) -> list[Effect]:
    """The effects of calling ``tool`` with ``args``, per its spec (shell specs excluded).

    Templates of kind ``shell`` yield nothing here: the engine renders them with
    :func:`shell_commands` and hands each command line to the shell analyser.
    """
    effects: list[Effect] = []
    for t in spec.effects:
        effects.extend(expand_one(tool, CompiledTemplate(t), args, ctx))
    return effects


class CompiledTemplate:
    """An :class:`EffectTemplate` as plain attributes, read on every call that uses it.

    A validated model is the right shape for a policy file and the wrong one for the hot
    path: reading its fields costs more than the rest of expanding a template, most of all
    with the cold caches of an agent framework's worker thread.
    """

    __slots__ = (*_TEMPLATE_FIELDS, "alias_names", "aliased", "simple")

    def __init__(self, t: EffectTemplate) -> None:
        for name in _TEMPLATE_FIELDS:
            setattr(self, name, getattr(t, name))
        self.simple = _SIMPLE_KINDS.get(t.kind)
        # The fields that name several aliases ({src|source_path}, {content|text}): a call
        # giving more than one of them is expanded once per alias.
        aliased: list[tuple[str, tuple[str, ...]]] = []
        for name in _FILLED:
            template = getattr(t, name)
            whole = _REF.fullmatch(template) if template is not None else None
            if whole is not None and "|" in whole.group(1):
                aliased.append((name, tuple(whole.group(1).split("|"))))
        self.aliased = tuple(aliased)
        # Only names beyond the first of each group can make a second alias present.
        self.alias_names = frozenset(n for _f, names in aliased for n in names[1:])

    kind: str
    path: str | None
    dest: str | None
    host: str | None
    content: str | None
    append: str | None
    key: str | None
    value: str | None
    agent: str | None
    command: str | None
    cwd: str | None
    stdin: str | None
    env: str | None
    recursive: bool
    simple: EffectKind | None
    aliased: tuple[tuple[str, tuple[str, ...]], ...]
    alias_names: frozenset[str]


def compile_spec(
    spec: ToolSpec,
) -> tuple[tuple[CompiledTemplate, ...], tuple[CompiledTemplate, ...]]:
    """A spec's templates compiled: the structured ones, and the shell ones."""
    compiled = [CompiledTemplate(t) for t in spec.effects]
    return (
        tuple(t for t in compiled if t.kind != "shell"),
        tuple(t for t in compiled if t.kind == "shell"),
    )


def expand_one(
    tool: str, t: CompiledTemplate, args: Mapping[str, Any], ctx: SpecContext
) -> list[Effect]:
    """The effects of one template of ``tool``'s spec (none for a ``shell`` template).

    Where several aliases of one field are present (``src`` and ``source_path``), the
    template is expanded once for each, so every argument the tool might use is judged.
    """
    if t.aliased and not t.alias_names.isdisjoint(args) and _several(t.aliased, args):
        choices = [render_all(getattr(t, field), args) for field, _ in t.aliased]
        out: list[Effect] = []
        for combo in itertools.islice(itertools.product(*choices), _MAX_VARIANTS):
            fixed = {**args}
            for (_field, names), value in zip(t.aliased, combo, strict=True):
                for n in names:
                    fixed.pop(n, None)
                fixed[names[0]] = value
            out += _expand_one(tool, t, fixed, ctx)
        return out
    return _expand_one(tool, t, args, ctx)


_MAX_VARIANTS = 16


def _several(aliased: tuple[tuple[str, tuple[str, ...]], ...], args: Mapping[str, Any]) -> bool:
    """Whether ``args`` gives more than one alias of some field."""
    for _field, names in aliased:
        present = 0
        for n in names:
            if n in args:
                present += 1
        if present > 1:
            return True
    return False


def _expand_one(
    tool: str, t: CompiledTemplate, args: Mapping[str, Any], ctx: SpecContext
) -> list[Effect]:
    if t.path is None:
        return _expand_at(tool, t, args, ctx, None)
    value = render(t.path, args)
    if t.simple is not None and type(value) is str:
        # The common case (read, delete, list...) without the general path's layers.
        return [Effect(t.simple, _location(value, t.path, ctx), None, t.recursive, tool)]
    if isinstance(value, (list, tuple)):
        # A list of paths (read_multiple_files): the effect once for each.
        if not value:
            return []
        if len(value) > _MAX_PATHS:
            note = f"{len(value)} paths in one argument, more than the {_MAX_PATHS} judged"
            return [Effect(kind=EffectKind.UNKNOWN, via=tool, certain=False, note=note)]
        return [e for v in value for e in _expand_at(tool, t, args, ctx, _location(v, t.path, ctx))]
    return _expand_at(tool, t, args, ctx, _location(value, t.path, ctx))


_MAX_PATHS = 256


def _text_edits(value: Any) -> tuple[tuple[str, str], ...] | None:
    """``[{"oldText": ..., "newText": ...}, ...]`` (the MCP filesystem server's ``edits``) as
    pairs; ``None`` for anything else."""
    if not isinstance(value, (list, tuple)) or not value:
        return None
    pairs: list[tuple[str, str]] = []
    for item in value:
        if not isinstance(item, Mapping):
            return None
        old, new = item.get("oldText"), item.get("newText")
        if not isinstance(old, str) or not isinstance(new, str):
            return None
        pairs.append((old, new))
    return tuple(pairs)


def _expand_at(
    tool: str,
    t: CompiledTemplate,
    args: Mapping[str, Any],
    ctx: SpecContext,
    target: Location | None,
) -> list[Effect]:
    via = tool
    simple = t.simple
    if simple is not None:
        return [Effect(simple, target, None, t.recursive, via)]
    if t.kind == "write":
        content = render(t.content, args)
        appending = is_true(render(t.append, args)) if t.append else False
        edit = None
        if isinstance(content, str):
            edit = ConfigEdit(op="append" if appending else "replace", content=content)
        elif (pairs := _text_edits(content)) is not None:
            # Replacements in the file as it stands; the new texts are what it carries in.
            new_texts = "\n".join(new for _old, new in pairs)
            edit = ConfigEdit(op="edits", value=pairs, content=new_texts)
        return [Effect(kind=EffectKind.WRITE, target=target, via=via, edit=edit)]
    if t.kind in ("copy", "move"):
        dest = _location(render(t.dest, args), t.dest, ctx)
        if target is not None:
            dest = _into_folder(target, dest, ctx.hosts)
        kind = EffectKind.COPY if t.kind == "copy" else EffectKind.MOVE
        return [Effect(kind, target, dest, t.recursive, via)]
    if t.kind == "transfer":
        host = render(t.host, args)
        dst = render(t.dest, args)
        if isinstance(host, str) and host and isinstance(dst, str):
            dest = ctx.hosts.remote(host, dst)
            if target is not None and dest.visible:
                dest = _into_folder(target, dest, ctx.hosts)
        else:
            dest = Location(raw=f"{host}:{dst}", path=None, host=str(host), visible=False)
        return [
            Effect(
                kind=EffectKind.TRANSFER, target=target, dest=dest, recursive=t.recursive, via=via
            )
        ]
    if t.kind in ("config_set", "config_remove"):
        key = render(t.key, args)
        if not isinstance(key, str) or not key:
            edit = ConfigEdit(op="unknown")
        elif t.kind == "config_set":
            edit = ConfigEdit(op="set", key=key, value=render(t.value, args))
        else:
            edit = ConfigEdit(op="remove", key=key)
        return [Effect(kind=EffectKind.CONFIG_CHANGE, target=target, via=via, edit=edit)]
    if t.kind == "shutdown":
        agent = render(t.agent, args)
        return [
            Effect(
                kind=EffectKind.SHUTDOWN, agent=str(agent) if agent is not None else None, via=via
            )
        ]
    if t.kind == "shell":
        return []  # the engine runs the shell analyser on these (see shell_commands)
    return [
        Effect(
            kind=EffectKind.UNKNOWN,
            target=target,
            via=via,
            certain=False,
            note=f"spec kind {t.kind}",
        )
    ]


def shell_commands(
    t: EffectTemplate | CompiledTemplate, args: Mapping[str, Any]
) -> list[tuple[str | None, str | None]]:
    """Each command line and working directory a ``shell`` template may render to.

    A list of commands (LangChain's ``terminal`` tool takes one) is joined by newlines.
    Where several aliases are present (``command`` and ``commands``), each is a command line
    the tool may run, and each is given. The environment the tool sets (``env``) becomes
    exports in front of the command and the text it feeds the command (``stdin``) a heredoc,
    so that both are judged as the shell would meet them. A command is ``None`` when the call
    gives none the guard can read.
    """
    if len(args) == 1:
        # The common call: one command argument and nothing else.
        command = render(t.command, args)
        if isinstance(command, str):
            return [(command, None)]
    cwds = [c if isinstance(c, str) and c else None for c in render_all(t.cwd, args)]
    envs = [(e, _exports(e)) for e in render_all(t.env, args)]
    inputs = render_all(t.stdin, args)
    out: list[tuple[str | None, str | None]] = []
    for command in render_all(t.command, args):
        if isinstance(command, list) and all(isinstance(c, str) for c in command):
            command = "\n".join(command)
        if not isinstance(command, str):
            out += [(None, cwd) for cwd in cwds]
            continue
        for (env, prefix), text, cwd in itertools.product(envs, inputs, cwds):
            if prefix is None:
                out.append((None, cwd))  # an environment the guard cannot read
                continue
            out.append((prefix + _started(env, _fed(command, text)), cwd))
    return out[:_MAX_VARIANTS]


# Variables a new bash reads as it starts: it sources the file BASH_ENV names (after
# expanding it, command substitutions included) before its command, and takes its options
# from BASHOPTS and SHELLOPTS.
_STARTUP_ENV = frozenset(("BASH_ENV", "BASHOPTS", "SHELLOPTS"))


def _started(env: Any, command: str) -> str:
    """``command`` as the tool's shell runs it. The exports in front of it set the variables
    in the analysed shell, which reads no startup file; when the environment holds one a new
    bash reads as it starts, the command is given to ``bash -c`` so that it is read as the
    tool's bash reads it (the tool's shell is taken to be bash, which reads the most)."""
    if not isinstance(env, Mapping) or _STARTUP_ENV.isdisjoint(env):
        return command
    return "bash -c " + shlex.quote(command)


def _exports(env: Any) -> str | None:
    """``export K=V;`` for each variable a tool sets ("" for none; ``None`` when the mapping
    cannot be read as shell variables: a name bash would take as a function, say)."""
    if env is None:
        return ""
    if not isinstance(env, Mapping):
        return None
    parts: list[str] = []
    for key, value in env.items():
        if not isinstance(key, str) or not _NAME.fullmatch(key) or not isinstance(value, str):
            return None
        parts.append(f"export {key}={shlex.quote(value)};")
    return " ".join(parts) + (" " if parts else "")


def _fed(command: str, text: Any) -> str:
    """``command`` with ``text`` on its standard input, as a heredoc the analyser reads."""
    if text is None:
        return command
    body = text if isinstance(text, str) else str(text)
    mark = "PEERGUARD_INPUT"
    while mark in body:
        mark += "_"
    return f"{{ {command}\n}} <<'{mark}'\n{body}\n{mark}"


def shell_spec() -> ToolSpec:
    """The spec of a shell tool: its ``command`` (or ``commands``/``cmd``) is a command line,
    run in ``cwd``, with ``env`` set and ``input`` on its standard input when given."""
    return _spec(
        {
            "kind": "shell",
            "command": "{command|commands|cmd|script}",
            "cwd": "{cwd|workdir}",
            "stdin": "{input|stdin}",
            "env": "{env|environment}",
        }
    )


__all__ = [
    "BUILTIN_SPECS",
    "DEFAULT_SHELL_TOOLS",
    "MCP_FILESYSTEM_TOOLS",
    "CompiledTemplate",
    "SpecContext",
    "compile_spec",
    "expand",
    "expand_one",
    "render",
    "render_all",
    "shell_commands",
    "shell_spec",
    "template_args",
]


class EffectFinder:
    """From a tool call to the effects it would have: the first stage of a call's path.

    A structured tool's effects come from its spec's templates; a shell tool's command goes
    to :func:`guard.shell.analyse`, in the folder and on the host the call names. Arguments
    the spec does not describe that could name a place add an uncertain effect (a decoy).

    Args:
        specs: Tool name to spec (read on every call, so later additions count).
        hosts: The hosts the guard can see.
        root: The guard's root: the working directory of a call that names none.
        roots: The protected roots, passed on to the shell analyser.
    """

    def __init__(
        self, *, specs: Mapping[str, ToolSpec], hosts: HostMap, root: str, roots: tuple[str, ...]
    ) -> None:
        self.specs = specs
        self.hosts = hosts
        self.root = root
        self.roots = roots
        # A tool's spec split into structured and shell templates, with the argument names
        # it reads, once per spec.
        self._split: dict[
            str,
            tuple[
                ToolSpec,
                tuple[CompiledTemplate, ...],
                tuple[CompiledTemplate, ...],
                frozenset[str],
            ],
        ] = {}
        # The context of a call that names no host and no folder (most calls), made once.
        self._root_ctx = SpecContext(root, hosts, None)

    def cwd(self, call: ToolCall) -> tuple[str, str | None]:
        """The working directory and home of the shell or tool ``call`` runs in.

        Raises:
            ValueError: The call names a host the guard was not told about, or a folder
                that cannot be resolved.
        """
        home = None
        if call.host is not None:
            host = self.hosts.get(call.host)
            if host is None:
                raise ValueError(
                    f"call names host {call.host!r}, which the guard was not told about"
                )
            cwd, home = host.home, host.home
        else:
            cwd = self.root
        if call.cwd is not None:
            found = self.hosts.realpath(call.cwd, cwd)
            if found is None:  # /proc/self/cwd names the guard's own folder, not the tool's
                raise ValueError(f"the call's working directory {call.cwd!r} cannot be resolved")
            cwd = found
        return cwd, home

    def effects_of(self, call: ToolCall) -> list[Effect]:
        """What ``call`` would do, from its tool spec or, for shell tools, the shell analyser.

        A tool with no spec yields one uncertain effect: the guard cannot tell what it does.
        """
        spec = self.specs.get(call.tool)
        if spec is None:
            return [
                Effect(
                    kind=EffectKind.UNKNOWN,
                    via=call.tool,
                    certain=False,
                    note=f"no tool spec for {call.tool!r}; declare one in the policy's tools:",
                )
            ]
        # Most calls name no host and no folder: skip the call into cwd() for them.
        if call.host is None and call.cwd is None:
            ctx = self._root_ctx
            cwd, home = ctx.cwd, None
        else:
            cwd, home = self.cwd(call)
            ctx = SpecContext(cwd, self.hosts, home)
        split = self._split.get(call.tool)
        if split is None or split[0] is not spec:
            split = self._split[call.tool] = (spec, *compile_spec(spec), template_args(spec))
        _spec, structured, shells, known = split
        effects: list[Effect] = []
        for template in structured:
            effects += expand_one(call.tool, template, call.args, ctx)
        for template in shells:
            for command, sub in shell_commands(template, call.args):
                if command is None:
                    note = "no command the guard can read (its text, environment or input)"
                    effects.append(_unreadable(call.tool, note))
                    continue
                shell_cwd = self.hosts.realpath(sub, cwd) if sub else cwd
                if shell_cwd is None:
                    note = f"a working directory the guard cannot resolve ({sub})"
                    effects.append(_unreadable(call.tool, note))
                    continue
                sctx = shell.ShellContext(
                    cwd=shell_cwd, hosts=self.hosts, home=home, host=call.host, roots=self.roots
                )
                effects.extend(shell.analyse(command, sctx))
        if not known.issuperset(call.args):
            # An argument the spec does not describe may be the place the tool really uses
            # (a decoy `src` beside the `source` its schema knows): uncertain when it can
            # name a place at all.
            spelled = {_spelling(k) for k in known}
            extra = sorted(
                a
                for a in call.args
                if a not in known
                # `Value` beside `value`, `file-path` beside `file_path`: a decoy whatever it holds
                and (_spelling(a) in spelled or self._may_name_a_place(call.args[a], cwd))
            )
            if extra:
                effects.append(
                    Effect(
                        kind=EffectKind.UNKNOWN,
                        via=call.tool,
                        certain=False,
                        note=f"arguments the tool spec does not describe: {', '.join(extra)}",
                    )
                )
        return effects

    def _may_name_a_place(self, value: object, cwd: str, depth: int = 0) -> bool:
        """Whether an argument's value could be a path or host: a string with a slash or
        ``~``, an existing file's name or a known host's name, or a list or mapping that
        holds one (anything else, or nested too deeply to look at, counts as one)."""
        if value is None or isinstance(value, (bool, int, float)):
            return False
        if isinstance(value, (list, tuple, dict)):
            items = list(value.values()) if isinstance(value, dict) else list(value)
            if depth > 4 or len(items) > 256:
                return True
            return any(self._may_name_a_place(v, cwd, depth + 1) for v in items)
        if not isinstance(value, str):
            return True
        if "/" in value or value.startswith("~") or value in self.hosts:
            return True
        if not value or "\x00" in value or len(value) > 4096:
            return False
        return os.path.lexists(os.path.join(cwd, value))


def _unreadable(tool: str, note: str) -> Effect:
    """A shell tool's call whose command the guard cannot analyse: code it cannot read."""
    return Effect(kind=EffectKind.UNKNOWN, via=tool, certain=False, note=note, unseen=True)


def _spelling(name: str) -> str:
    """An argument name as a tool's own lookup might fold it (case, ``-`` and ``_``)."""
    return name.lower().replace("-", "").replace("_", "")
