"""The curated public API: sorted, complete, and every name importable."""

from __future__ import annotations

import dataclasses
import inspect
import subprocess
import sys
import typing
from collections.abc import Iterator

from pydantic import BaseModel

import guard
import guard.exceptions


def test_all_is_sorted_and_importable() -> None:
    """``guard.__all__`` is sorted and every name in it exists."""
    assert guard.__all__ == sorted(guard.__all__)
    for name in guard.__all__:
        assert hasattr(guard, name), name


def test_every_exception_is_exported_and_rooted() -> None:
    """Every exception class derives from GuardError and is exported at the top level."""
    for name in guard.exceptions.__all__:
        cls = getattr(guard.exceptions, name)
        assert issubclass(cls, guard.GuardError)
        assert name in guard.__all__


def test_version_in_one_place() -> None:
    """The version comes from guard._version and matches the installed metadata."""
    from importlib.metadata import version

    from guard._version import __version__

    assert guard.__version__ == __version__ == version("peerguard")


def test_integration_names_are_pinned() -> None:
    """The names the README tells users to import from the integrations stay put."""
    from guard import decorator, testing
    from guard.integrations import langchain, langgraph, openai_agents

    assert set(langgraph.__all__) >= {
        "ConfirmationAnswer",
        "ConfirmationRequest",
        "PeerGuardMiddleware",
        "PeerGuardToolWrapper",
        "pending_confirmations",
    }
    assert {"guarded", "acting_as"} <= set(decorator.__all__)
    assert {"MemorySink", "ScriptedApprover", "write_safetensors"} <= set(testing.__all__)
    assert {"guard_tool", "ScriptedChatModel"} <= set(langchain.__all__)
    assert {"PeerGuardTools", "approve", "confirmation_request", "guard_tools", "reject"} <= set(
        openai_agents.__all__
    )
    for module in (langchain, langgraph, openai_agents, decorator, testing):
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))


def test_the_core_imports_no_agent_framework() -> None:
    """The engine, decorator, testing helpers, verifier and CLI work without LangChain or
    LangGraph: only the integrations and the bench import them."""
    code = (
        "import sys, guard, guard.testing, guard.decorator, guard.engine, guard.verify, "
        "guard.cli, guard.watch, guard.audit; "
        "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('lang')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]", out


def test_guard_tool_is_still_reachable_from_the_package() -> None:
    """``guard.guard_tool`` is the integration's, imported on first use."""
    import guard
    from guard.integrations.langchain import guard_tool

    assert guard.guard_tool is guard_tool


def _types_in(annotation: object) -> Iterator[type]:
    """The classes an annotation names, through unions, generics and their arguments."""
    if isinstance(annotation, type):
        yield annotation
    for arg in typing.get_args(annotation):
        yield from _types_in(arg)


def _public_annotations(obj: object) -> Iterator[tuple[str, object]]:
    """(where, annotation) for the fields of a public class and the parameters and return
    of its public methods and properties, or of a public function."""
    if inspect.isclass(obj):
        if issubclass(obj, BaseModel):
            for field, info in obj.model_fields.items():
                yield field, info.annotation
        elif dataclasses.is_dataclass(obj):
            yield from typing.get_type_hints(obj).items()
        for name, member in vars(obj).items():
            if name.startswith("_") and name != "__init__":
                continue
            fn = member.fget if isinstance(member, property) else member
            if (
                callable(fn)
                and not inspect.isclass(fn)
                and str(getattr(fn, "__module__", "")).startswith("guard")  # not pydantic's
            ):
                for param, hint in typing.get_type_hints(fn).items():
                    yield f"{name}:{param}", hint
    elif callable(obj):
        yield from typing.get_type_hints(obj).items()


def test_every_type_a_public_signature_names_is_exported_and_documented() -> None:
    """As httpx's API test does: a user who meets a type in a public signature (a field, a
    parameter, a return) can import it from ``guard``; every exported name has a docstring."""
    missing: dict[str, list[str]] = {}
    undocumented: list[str] = []
    for name in guard.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(guard, name)
        if (inspect.isclass(obj) or callable(obj)) and not (obj.__doc__ or "").strip():
            undocumented.append(name)
        for where, annotation in _public_annotations(obj):
            for cls in _types_in(annotation):
                if cls.__module__.startswith("guard") and cls.__name__ not in guard.__all__:
                    missing.setdefault(f"{cls.__module__}.{cls.__name__}", []).append(
                        f"{name}.{where}"
                    )
    assert missing == {}
    assert undocumented == []


def test_every_named_exception_in_the_package_is_a_guard_error() -> None:
    """Any exception class a module defines under a public name derives from GuardError, so
    ``except GuardError`` catches everything peerguard raises on purpose (private ones, with a
    leading underscore, never leave their module)."""
    import importlib
    import pkgutil

    # The bench's remote shims run as standalone scripts and never import guard (see there).
    standalone = {"guard.bench.shims.remote"}
    wrong = []
    for info in pkgutil.walk_packages(guard.__path__, "guard."):
        if info.name in standalone:
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if (
                inspect.isclass(obj)
                and issubclass(obj, BaseException)
                and obj.__module__ == module.__name__
                and not name.startswith("_")
                and not issubclass(obj, guard.GuardError)
            ):
                wrong.append(f"{module.__name__}.{name}")
    assert wrong == []
