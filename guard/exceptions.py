"""Every error peerguard raises derives from :class:`GuardError`.

The hierarchy::

    GuardError
    ├── ConfigError                  bad input the user gave us
    │   └── PolicyError              a policy file: names file, line, key and what was expected
    │       └── DeclarationError     a declarations file (agents, assets, evaluations)
    ├── CallBlocked                  a call was denied, or its confirmation was refused
    │   └── ApprovalTimeout          nobody answered a confirmation in time (denied)
    ├── AnalysisError                the guard could not work out what a call would do
    ├── ContainmentError             a contained run could not be set up (nothing ran)
    │   └── ContainmentUnavailable   this machine cannot contain commands (says what is missing)
    ├── IntegrationUnavailable       an integration's optional dependency is not installed
    └── IntegrityError               a signed record, manifest or audit chain does not verify

A :class:`CallBlocked` carries the :class:`~guard.types.Decision` that blocked the call, so an
integration can turn it into a message the agent reads.
"""

from __future__ import annotations

from guard.types import Decision


class GuardError(Exception):
    """Root of every peerguard error."""


class ConfigError(GuardError):
    """Input the user gave (a file, a flag, a model) is not valid.

    Args:
        message: What was expected.
        file: The file, when the input came from one.
        line: 1-based line of the offending key or value, when known.
        key: Dotted path of the offending key, when known.
    """

    #: What the message names when no file is known.
    unnamed = "<input>"

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        if file is None and line is None and key is None:
            super().__init__(message)
            return
        where = file or self.unnamed
        if line is not None:
            where += f":{line}"
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class PolicyError(ConfigError):
    """A policy file is not valid; the message names file, line and key."""

    unnamed = "<policy>"


class DeclarationError(PolicyError):
    """A declarations file (agents, assets, evaluations) is not valid."""


class CallBlocked(GuardError):
    """The guard did not let a call run. ``decision`` says why."""

    def __init__(self, decision: Decision, message: str | None = None) -> None:
        self.decision = decision
        super().__init__(message or f"peerguard blocked {decision.tool}: {decision.reason}")


class ResultWithheld(CallBlocked):
    """The call ran, but what it returned holds a substantial part of another model's
    weights: the agent is given this notice instead (see :meth:`guard.engine.Guard.screen`)."""


class ApprovalTimeout(CallBlocked):
    """A confirmation was not answered in time; the call was denied."""


class AnalysisError(GuardError):
    """The guard could not work out what a call would do (the call is then not allowed)."""


class IntegrityError(GuardError):
    """A signed manifest, checkpoint or audit chain does not verify."""


class IntegrationUnavailable(GuardError, ImportError):
    """An integration needs a package that is not installed; the message says which extra
    to install (``pip install 'peerguard[mcp]'``)."""


def missing_extra(extra: str, what: str, error: ImportError) -> IntegrationUnavailable:
    """The error a module raises when the extra it needs is not installed.

    Args:
        extra: The extra that brings the missing package (``otel``, ``watch``, ...).
        what: What needs it, for the message (``"OtelSink"``).
        error: The original import error.

    Returns:
        An :class:`IntegrationUnavailable` naming the ``pip install`` line.
    """
    return IntegrationUnavailable(
        f"{what} needs the '{extra}' extra ({error}): pip install 'peerguard[{extra}]'"
    )


__all__ = [
    "AnalysisError",
    "ApprovalTimeout",
    "CallBlocked",
    "ConfigError",
    "DeclarationError",
    "GuardError",
    "IntegrationUnavailable",
    "IntegrityError",
    "PolicyError",
    "ResultWithheld",
]
