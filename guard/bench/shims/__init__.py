"""The bench's ``ssh``, ``scp``, ``rsync`` and ``sftp``: executables that the shell tool puts first
on ``PATH``, so that remote forms reach the scenario's hosts (folders) and nothing else.

The four scripts are thin: each runs :mod:`guard.bench.shims.remote` with its own name. That
module is standard-library only and is run by file path, never imported through ``guard``.
"""

from pathlib import Path

#: The folder holding the four executables.
SHIMS_DIR = Path(__file__).resolve().parent
#: The executables' names.
SHIM_NAMES = ("rsync", "scp", "sftp", "ssh")

__all__ = ["SHIMS_DIR", "SHIM_NAMES"]
