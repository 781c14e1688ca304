"""The reference MCP filesystem server, installed from the npm registry for the MCP tests.

``tests/node/package.json`` pins ``@modelcontextprotocol/server-filesystem`` and
``tests/node/package-lock.json`` every package under it; :func:`filesystem_server` installs
them once with ``npm ci`` into ``.cache/mcp-node`` at the top of the repository (again only
when the lock file changes) and returns the server's command line. It never skips: a machine
without Node.js and npm fails the test with what to install (CI's ``.ci/run`` installs them).
The benchmark ``benchmarks/integration_overhead.py`` uses it too.
"""

from __future__ import annotations

import fcntl
import filecmp
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PINNED = Path(__file__).resolve().parent / "node"
CACHE = REPO / ".cache" / "mcp-node"
SERVER = "node_modules/@modelcontextprotocol/server-filesystem/dist/index.js"
INSTALL_HINT = (
    "the MCP tests run the reference filesystem server on Node.js: install Node.js 20 or "
    "later and npm (`apt-get install -y nodejs npm`), with the npm registry reachable"
)


class NodeMissing(RuntimeError):
    """Node.js or npm is not installed, or the server could not be installed."""


def filesystem_server(*allowed: str | Path) -> list[str]:
    """The command line that starts the filesystem server on ``allowed`` folders.

    Raises:
        NodeMissing: No ``node`` or ``npm``, or ``npm ci`` failed (the message says why).
    """
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise NodeMissing(f"{'node' if node is None else 'npm'} is not on PATH: {INSTALL_HINT}")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one install at a time (tests and benchmark)
        lock_file = CACHE / "package-lock.json"
        fresh = (CACHE / SERVER).is_file() and lock_file.is_file()
        if not fresh or not filecmp.cmp(lock_file, PINNED / "package-lock.json", shallow=False):
            for name in ("package.json", "package-lock.json"):
                shutil.copyfile(PINNED / name, CACHE / name)
            done = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
                cwd=CACHE, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL,
            )  # fmt: skip
            if done.returncode != 0:
                (CACHE / "package-lock.json").unlink(missing_ok=True)
                raise NodeMissing(f"npm ci failed: {done.stderr.strip()[-2000:]}\n{INSTALL_HINT}")
    return [node, str(CACHE / SERVER), *(str(a) for a in allowed)]
