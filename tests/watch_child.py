"""A live watch in a process of its own, for tests that stop it or starve it of inotify watches.

Usage: ``python -m tests.watch_child SPEC``, where SPEC is JSON with ``root``, ``hosts``,
``declarations`` and optionally ``max_user_watches`` (written to
``/proc/sys/user/max_inotify_watches`` first: the limit of the user namespace the child runs
in, so run it in one of its own. Not ``/proc/sys/fs/inotify/max_user_watches``: for a child
of real root that is the machine's own limit, and lowering it starves every other watch). Prints one JSON line once watching (``{"ready": true, ...}``), then one
per alert, and runs until its standard input closes.
"""

from __future__ import annotations

import json
import sys
import threading

from guard.engine import Guard
from guard.policy import Declarations
from guard.sinks import Sink
from guard.types import Alert
from guard.watch import Watch


class PrintSink(Sink):
    """Writes each alert to standard output as one JSON line."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def on_alert(self, alert: Alert) -> None:
        """Print the alert."""
        line = json.dumps({"message": alert.message, "gap": alert.enforcement_gap})
        with self._lock:
            print(line, flush=True)


def main() -> int:
    """Watch the roots SPEC names until standard input closes.

    Returns:
        The exit status.
    """
    spec = json.loads(sys.argv[1])
    if spec.get("max_user_watches"):
        with open("/proc/self/uid_map") as fh:
            if fh.read().split() == ["0", "0", "4294967295"]:  # the machine's own namespace
                raise SystemExit("max_user_watches needs a user namespace of its own")
        with open("/proc/sys/user/max_inotify_watches", "w") as fh:
            fh.write(str(spec["max_user_watches"]))
    guard = Guard(
        root=spec["root"],
        hosts=spec["hosts"],
        declarations=Declarations.model_validate(spec["declarations"]),
        sinks=[PrintSink()],
    )
    with Watch(guard, sweep_interval=0.1, polling_interval=0.1) as watch:
        print(json.dumps({"ready": True, "polling": watch.stats.polling}), flush=True)
        sys.stdin.read()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
