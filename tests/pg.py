"""A throw-away PostgreSQL server on loopback, for tests of the Postgres checkpointer.

Import the fixture into a test module (``from tests.pg import postgres_url``). It never
skips: a machine without PostgreSQL fails the test, since CI installs it (``.ci/run`` runs
``apt-get install -y postgresql``).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

INSTALL_HINT = (
    "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): .ci/run installs it "
    "with `apt-get install -y postgresql`; run that to test locally"
)


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if found:
        return Path(found[0]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """Start a PostgreSQL server on 127.0.0.1 for the session; yield its connection URL."""
    bindir = _bindir()
    if bindir is None:
        pytest.fail(INSTALL_HINT)
    # The server refuses to run as root: as root, run it as the `postgres` user, in a folder
    # that user owns (pytest's tmp_path sits under a root-only folder).
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    base = Path(tempfile.mkdtemp(prefix="peerguard-pg-"))
    if as_root:
        shutil.chown(base, user="postgres")
    data, log = base / "db", base / "log"
    port = _free_port()
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {base} -c fsync=off"
    try:
        for command in (
            ["initdb", "-D", str(data), "-A", "trust", "-U", "postgres"],
            ["pg_ctl", "-D", str(data), "-o", options, "-l", str(log), "-w", "start"],
        ):
            command[0] = str(bindir / command[0])
            subprocess.run(
                [*prefix, *command], check=True, capture_output=True, text=True, timeout=120
            )
    except subprocess.CalledProcessError as exc:
        detail = log.read_text() if log.exists() else ""
        shutil.rmtree(base, ignore_errors=True)
        pytest.fail(f"could not start PostgreSQL: {exc.stderr}\n{detail}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(base, ignore_errors=True)
