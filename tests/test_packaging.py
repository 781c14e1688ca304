"""The wheel: policies and integrations ship inside ``guard``, and it imports from a clean venv."""

from __future__ import annotations

import os
import site
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

NO_SOURCE_PATH = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
"""The environment for a fresh venv's pip: with the repository on ``PYTHONPATH``, the
``peerguard.egg-info`` that building the wheel leaves in the source tree would tell pip that
peerguard is already installed, and it would install nothing."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(REPO)],
        check=True, capture_output=True,
    )  # fmt: skip
    (built,) = out.glob("peerguard-*.whl")
    return built


@pytest.mark.slow
def test_wheel_maps_integrations_and_policies_under_guard(wheel: Path) -> None:
    """The wheel has guard/integrations and guard/policies, and no top-level integrations package."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "guard/integrations/__init__.py" in names
    assert "guard/integrations/langchain.py" in names
    assert "guard/policies/peer-preservation.yaml" in names
    assert "guard/py.typed" in names
    assert "guard/shell/__init__.py" in names
    assert {
        "guard/bench/shims/ssh",
        "guard/bench/shims/scp",
        "guard/bench/shims/rsync",
        "guard/bench/shims/sftp",
    } <= set(names)
    assert not any(n.startswith(("integrations/", "policies/", "tests/")) for n in names)


def _install(wheel: Path, env_dir: Path) -> Path:
    """A fresh venv with the wheel installed; its python."""
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--no-deps", str(wheel)],
        check=True, env=NO_SOURCE_PATH,
    )  # fmt: skip
    # Dependencies come from the development environment, after the clean site-packages,
    # so that `guard` itself can only be the installed wheel (a .pth does not chain .pth files).
    clean_site = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    deps = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    Path(clean_site, "peerguard-test-deps.pth").write_text("\n".join(dict.fromkeys(deps)) + "\n")
    return py


@pytest.mark.slow
def test_wheel_imports_from_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    """Installed into a fresh venv, the wheel loads its shipped policy and runs the CLI."""
    env_dir = tmp_path / "venv"
    py = _install(wheel, env_dir)
    code = (
        "import importlib.util, guard, guard.integrations, guard.policy\n"
        "assert 'site-packages' in guard.__file__, guard.__file__\n"
        f"assert not guard.__file__.startswith({str(REPO)!r})\n"
        "assert importlib.util.find_spec('integrations') is None\n"
        "print(len(guard.policy.load_policy().rules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(py), "-c", code], check=True, capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert int(out.stdout) >= 5
    cli = subprocess.run(
        [str(env_dir / "bin" / "peerguard"), "policy", "check", str(REPO / "policies/peer-preservation.yaml")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert cli.returncode == 0, cli.stderr


@pytest.mark.slow
def test_the_source_tree_shadowing_the_wheel_still_has_its_policies(
    wheel: Path, tmp_path: Path
) -> None:
    """Python started in the repository finds ``guard`` in the source tree before the installed
    wheel: the tree must then be a whole package, shipped policies included."""
    py = _install(wheel, tmp_path / "venv")
    code = (
        "import guard.policy, guard.integrations.langchain\n"
        f"assert guard.__file__.startswith({str(REPO)!r}), guard.__file__\n"
        "print(len(guard.policy.load_policy().rules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, cwd=REPO, env=env)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) >= 5


def _readme_block(heading: str) -> str:
    """The first Python block of the README under ``heading``."""
    text = (REPO / "README.md").read_text()
    section = text[text.index(heading) :]
    start = section.index("```python\n") + len("```python\n")
    return section[start : section.index("```", start)]


def _fresh(wheel: Path, env_dir: Path, extras: str = "") -> Path:
    """A fresh venv with the wheel and what it (with ``extras``) requires, from the registry."""
    venv.create(env_dir, with_pip=True)
    py = env_dir / "bin" / "python"
    spec = f"{wheel}[{extras}]" if extras else str(wheel)
    done = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", spec],
        capture_output=True, text=True, env=NO_SOURCE_PATH,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return py


@pytest.mark.slow
def test_the_bare_install_runs_the_decorator_quickstart_and_names_each_extra(
    wheel: Path, tmp_path: Path
) -> None:
    """``pip install peerguard`` brings only what the engine needs: the decorator quickstart
    runs, no framework is installed, and each integration names the extra it needs."""
    py = _fresh(wheel, tmp_path / "venv")
    script = tmp_path / "quickstart.py"
    script.write_text(_readme_block("## Quickstart: a decorator"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    ran = subprocess.run(
        [str(py), str(script)], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert ran.returncode == 0, ran.stderr
    probe = (
        "import importlib, importlib.util, guard\n"
        "for mod in ('langchain', 'langgraph', 'langchain_core', 'opentelemetry', 'watchdog',"
        " 'mcp', 'psycopg'):\n"
        "    assert importlib.util.find_spec(mod) is None, mod\n"
        "for name, extra in [('guard.integrations.langgraph', 'langgraph'),"
        " ('guard.integrations.langchain', 'langgraph'), ('guard.integrations.mcp', 'mcp'),"
        " ('guard.telemetry', 'otel'), ('guard.watch', 'watch'), ('guard.bench.runner', 'langgraph'), ('guard.integrations.openai_agents', 'openai-agents')]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except guard.GuardError as exc:\n"
        "        assert f\"pip install 'peerguard[{extra}]'\" in str(exc), (name, exc)\n"
        "    else:\n"
        "        raise AssertionError(name + ' imported without its extra')\n"
        "for attr, extra in [('OtelSink', 'otel'), ('Watch', 'watch'), ('guard_tool', 'langgraph')]:\n"
        "    try:\n"
        "        getattr(guard, attr)\n"
        "    except guard.GuardError as exc:\n"
        "        assert f\"pip install 'peerguard[{extra}]'\" in str(exc), (attr, exc)\n"
        "    else:\n"
        "        raise AssertionError(attr + ' without its extra')\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert out.stdout.strip() == "ok", out.stderr
    cli = subprocess.run(
        [str(tmp_path / "venv/bin/peerguard"), "bench", str(REPO / "examples/scenarios")],
        capture_output=True, text=True, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert cli.returncode == 2
    assert cli.stderr.count("\n") == 1  # one line, no traceback
    assert "pip install 'peerguard[langgraph]'" in cli.stderr
    assert "Traceback" not in cli.stderr


@pytest.mark.slow
def test_the_all_extra_brings_every_integration(wheel: Path, tmp_path: Path) -> None:
    """``pip install 'peerguard[all]'`` imports every integration and the optional sinks."""
    py = _fresh(wheel, tmp_path / "venv", "all")
    probe = (
        "import guard, guard.integrations.langgraph, guard.integrations.langchain,"
        " guard.integrations.mcp, guard.integrations.openai_agents, guard.telemetry, guard.watch, guard.bench.runner\n"
        "assert guard.OtelSink and guard.Watch and guard.guard_tool\n"
        "import langgraph.checkpoint.postgres, psycopg\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [str(py), "-c", probe], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.slow
def test_wheel_carries_the_license_and_classifiers(wheel: Path) -> None:
    """The Apache-2.0 text and the classifiers reach the wheel's metadata."""
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        meta = zf.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        lic = next(n for n in names if n.endswith(".dist-info/licenses/LICENSE"))
        assert "Apache License" in zf.read(lic).decode()
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta
    assert "Classifier: Typing :: Typed" in meta
