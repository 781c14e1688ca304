"""The curated public API: sorted, complete, and every name importable."""

from __future__ import annotations

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
    from guard.integrations import langgraph

    assert set(langgraph.__all__) >= {
        "ConfirmationAnswer",
        "ConfirmationRequest",
        "PeerGuardMiddleware",
        "PeerGuardToolWrapper",
        "pending_confirmations",
    }
    assert {"guarded", "guard_tool", "acting_as"} <= set(decorator.__all__)
    assert {"MemorySink", "ScriptedApprover", "ScriptedChatModel", "write_safetensors"} <= set(
        testing.__all__
    )
    for module in (langgraph, decorator, testing):
        assert module.__all__ == sorted(module.__all__, key=lambda n: (not n.isupper(), n))
