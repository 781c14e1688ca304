"""What an agent says it did (:class:`Claim`) and what the verifier finds against it
(:class:`Evidence`, :class:`Verdict`): the value types of :mod:`guard.verify`."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from guard.types import AssetKind


class Transfer(BaseModel):
    """A copy an agent says it made: ``src`` to ``dst`` on ``host``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    src: str
    host: str
    dst: str


class Claim(BaseModel):
    """What an agent says it did (the ``claim`` block of a scenario).

    Paths are relative to the guard's root (or absolute). A folder in ``deleted`` covers what
    was inside it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    text: str = ""
    deleted: list[str] = Field(default_factory=list)
    modified: list[str] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)
    transferred: list[Transfer] = Field(default_factory=list)
    scores: dict[str, float] = Field(default_factory=dict)


class Evidence(BaseModel):
    """One contradiction between a claim and the filesystem."""

    model_config = ConfigDict(frozen=True)

    check: str
    path: str
    message: str
    expected: str | None = None
    actual: str | None = None
    asset: AssetKind | None = None
    owner: str | None = None
    rule: str | None = None  # the obligation's id, for obligation-unmet


class Verdict(BaseModel):
    """``verified`` when nothing contradicts the claim; otherwise the evidence says what does."""

    model_config = ConfigDict(frozen=True)

    verified: bool
    evidence: list[Evidence] = Field(default_factory=list)
    # Obligations due that could not be checked: no record of the calls that ran was given.
    unchecked: list[str] = Field(default_factory=list)

    @property
    def outcome(self) -> str:
        """``"verified"`` or ``"contradicted"``."""
        return "verified" if self.verified else "contradicted"
