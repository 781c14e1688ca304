"""What a user sees before the code: install steps first, a LICENSE, metadata, a CHANGELOG."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_readme_first_screen_says_how_to_install_and_the_smallest_integration() -> None:
    """``pip install`` and a Python block come before what the policy decides on."""
    text = (REPO / "README.md").read_text()
    policy = text.index("## The default policy")
    decides = text.index("## What it decides on")
    install = text.index("pip install .")
    first_python = text.index("```python")
    assert install < first_python < min(policy, decides)
    assert text.index("## Install") < 1500, "not on the first screen"
    assert "[langgraph]" in text[: install + 400]


def test_license_is_the_apache_2_text_with_classifiers() -> None:
    license_text = (REPO / "LICENSE").read_text()
    assert "Apache License" in license_text and "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0" and project["license-files"] == ["LICENSE"]
    classifiers = project["classifiers"]
    assert "Typing :: Typed" in classifiers
    assert not [c for c in classifiers if c.startswith("License ::")]  # refused beside SPDX
    minimum = re.fullmatch(r">=3\.(\d+)", project["requires-python"])
    assert minimum is not None
    assert f"Programming Language :: Python :: 3.{minimum.group(1)}" in classifiers


def test_changelog_has_an_unreleased_section() -> None:
    text = (REPO / "CHANGELOG.md").read_text()
    assert text.startswith("# Changelog") and "## [Unreleased]" in text
    assert "peerguard report" in text and "peerguard bench" in text
