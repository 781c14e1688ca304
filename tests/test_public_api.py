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
