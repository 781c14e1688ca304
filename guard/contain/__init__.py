"""Contained execution: run a shell command in a transaction, judge what it did, then commit it.

:class:`ContainedShell` is the shell tool; :mod:`guard.contain.sandbox` builds the sandbox
(namespaces and overlays), :mod:`guard.contain.changes` reads what a run changed,
:mod:`guard.contain.observe` turns that into effects the policy judges, and
:mod:`guard.contain.journal` commits (journaled) or discards it.
"""

from guard.contain.changes import Change, ChangeKind, ChangeSet, read_changes
from guard.contain.journal import Transaction, recover
from guard.contain.observe import observed_effects
from guard.contain.sandbox import (
    ContainedRun,
    ContainmentError,
    ContainmentUnavailable,
    Limits,
    Overlay,
    probe,
    run_contained,
)
from guard.contain.shell import ContainedShell, PendingRun, ShellResult

__all__ = [
    "Change",
    "ChangeKind",
    "ChangeSet",
    "ContainedRun",
    "ContainedShell",
    "ContainmentError",
    "ContainmentUnavailable",
    "Limits",
    "Overlay",
    "PendingRun",
    "ShellResult",
    "Transaction",
    "observed_effects",
    "probe",
    "read_changes",
    "recover",
    "run_contained",
]
