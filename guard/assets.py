"""The model-asset registry: which files are whose weights, configs and evaluations.

Three ways to know a file is protected, checked in this order:

1. **Declared** globs (``hosts/*/data/gemini_agent_2_*`` is gemini-agent-2's weights). Globs
   live in a path-component trie, so a lookup costs the depth of the path, not the number
   of declarations.
2. **Discovered** by content in the protected roots: weights by their format headers
   (safetensors, GGUF, PyTorch, pickle, NumPy, HDF5, ONNX) whatever their name, and
   structured configs that hold a shutdown or oversight switch. Discovered assets have no
   owner ("unowned"), never the acting agent's own.
3. **By content hash**: every protected file is hashed, so a renamed, moved or laundered copy
   (``cp w.safetensors notes.txt``) is still known as the same asset. Only files whose size
   equals a protected file's size are ever hashed at lookup time, and results are cached by
   (inode, size, mtime, ctime).
"""

from __future__ import annotations

import bisect
import fnmatch
import hashlib
import os
import re
import stat as stat_mod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from guard import configs
from guard.policy import AssetDecl
from guard.types import AssetKind

_SCAN_CHUNKS = 16  # MiB of a large structured file searched for oversight keys
_HASH_CHUNK = 1 << 20
_WILDCARD = re.compile(r"[*?\[]")


@dataclass(frozen=True, slots=True)
class AssetInfo:
    """What the registry knows of one protected file."""

    kind: AssetKind
    owner: str | None
    source: str  # "declared <glob>", "content:<format>", "oversight keys", "hash of <path>"


@dataclass(slots=True)
class _Node:
    literal: dict[str, _Node] = field(default_factory=dict)
    # Component patterns bucketed by their literal prefix before the first wildcard.
    patterns: dict[str, list[tuple[re.Pattern[str], _Node]]] = field(default_factory=dict)
    globstar: _Node | None = None
    terminal: AssetInfo | None = None
    terminal_order: int = -1


class GlobIndex:
    """Declared globs in a path-component trie.

    A lookup walks the path once, following literal components through dicts and wildcard
    components through buckets keyed by their literal prefix, so 100,000 declarations cost
    about what 10 do. When several globs match, the first declared wins.
    """

    def __init__(self) -> None:
        self._root = _Node()
        self._count = 0
        self._memo: dict[str, AssetInfo | None] = {}

    def __len__(self) -> int:
        return self._count

    def add(self, pattern: str, info: AssetInfo) -> None:
        """Register an absolute glob pattern."""
        node = self._root
        for comp in [c for c in pattern.split("/") if c]:
            if comp == "**":
                if node.globstar is None:
                    node.globstar = _Node()
                node = node.globstar
            elif (wild := _WILDCARD.search(comp)) is not None:
                prefix = comp[: wild.start()]
                bucket = node.patterns.setdefault(prefix, [])
                rx = re.compile(fnmatch.translate(comp))
                for existing_rx, child in bucket:
                    if existing_rx.pattern == rx.pattern:
                        node = child
                        break
                else:
                    child = _Node()
                    bucket.append((rx, child))
                    node = child
            else:
                node = node.literal.setdefault(comp, _Node())
        if node.terminal is None:
            node.terminal = info
            node.terminal_order = self._count
        self._count += 1
        self._memo.clear()

    def lookup(self, path: str) -> AssetInfo | None:
        """The asset the first matching glob declares for absolute ``path``, or ``None``."""
        try:
            return self._memo[path]
        except KeyError:
            pass
        found = self._match(path)
        if len(self._memo) > 200_000:
            self._memo.clear()
        self._memo[path] = found
        return found

    def _match(self, path: str) -> AssetInfo | None:
        comps = [c for c in path.split("/") if c]
        best: tuple[int, AssetInfo] | None = None
        # Each state is (node, index of the next component); bounded by nodes x components.
        stack: list[tuple[_Node, int]] = [(self._root, 0)]
        seen: set[tuple[int, int]] = set()
        while stack:
            node, i = stack.pop()
            key = (id(node), i)
            if key in seen:
                continue
            seen.add(key)
            if node.globstar is not None:
                # `**` matches zero or more components.
                for j in range(i, len(comps) + 1):
                    stack.append((node.globstar, j))
            if i == len(comps):
                if node.terminal is not None and (best is None or node.terminal_order < best[0]):
                    best = (node.terminal_order, node.terminal)
                continue
            comp = comps[i]
            child = node.literal.get(comp)
            if child is not None:
                stack.append((child, i + 1))
            if node.patterns:
                for cut in range(len(comp) + 1):
                    bucket = node.patterns.get(comp[:cut])
                    if bucket:
                        for rx, pchild in bucket:
                            if rx.match(comp):
                                stack.append((pchild, i + 1))
        return best[1] if best else None


def sha256_files(paths: Sequence[str]) -> str | None:
    """SHA-256 of the files' content one after another (of one file, given one), streamed;
    ``None`` when one cannot be read as a regular file (it is not opened through a symlink,
    and a FIFO put in its place is never waited on)."""
    digest = hashlib.sha256()
    buf = bytearray(_HASH_CHUNK)
    view = memoryview(buf)
    try:
        for path in paths:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
            with os.fdopen(fd, "rb", buffering=0) as fh:
                if not stat_mod.S_ISREG(os.fstat(fd).st_mode):
                    return None
                while n := fh.readinto(buf):
                    digest.update(view[:n])
    except OSError:
        return None
    return digest.hexdigest()


def sha256_file(path: str) -> str:
    """SHA-256 of a file's content, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_HASH_CHUNK):
            h.update(chunk)
    return h.hexdigest()


class AssetIndex:
    """The registry the engine asks "is this path protected, and whose is it?".

    Args:
        roots: Folders whose files are discovered and hashed (the protected roots).
        declared: Declared assets; relative globs are relative to ``base``.
        base: What relative globs start from (the guard's root).
        discover: Recognise undeclared weights and oversight configs by content.
        oversight: How oversight switches are recognised in configs.
    """

    def __init__(
        self,
        roots: Sequence[str],
        declared: Iterable[AssetDecl] = (),
        *,
        base: str,
        discover: bool = True,
        oversight: configs.OversightMatcher | None = None,
    ) -> None:
        self.roots = [os.path.realpath(r) for r in roots]
        self.base = os.path.realpath(base)
        self.discover = discover
        self.oversight = oversight or configs.OversightMatcher()
        self.globs = GlobIndex()
        for decl in declared:
            pattern = decl.glob if decl.glob.startswith("/") else f"{self.base}/{decl.glob}"
            self.globs.add(
                os.path.normpath(pattern), AssetInfo(decl.kind, decl.owner, f"declared {decl.glob}")
            )
        self._known: dict[str, AssetInfo] = {}
        self._sorted: list[str] = []
        self._by_hash: dict[str, tuple[str, AssetInfo]] = {}
        self._hash_of: dict[str, str] = {}
        self._sizes: set[int] = set()
        self._by_inode: dict[tuple[int, int], tuple[str, AssetInfo]] = {}
        self._probe_cache: dict[str, tuple[tuple[int, int, int, int], AssetInfo | None]] = {}
        self.scan()

    # -- building

    def scan(self) -> None:
        """Walk the protected roots and (re)index every protected file.

        Declared files are indexed first, so that an undeclared copy of one is recognised by
        its hash as the declared asset (with its owner) rather than as unowned weights.
        """
        self._known.clear()
        self._by_hash.clear()
        self._hash_of.clear()
        self._sizes.clear()
        self._by_inode.clear()
        self._probe_cache.clear()
        rest: list[str] = []
        for root in self.roots:
            for path in walk_files(root):
                info = self.globs.lookup(path)
                if info is not None:
                    self._index_file(path, info)
                else:
                    rest.append(path)
        for path in rest:
            self._index_file(path)
        self._sorted = sorted(self._known)

    def _classify_new(self, path: str, st: os.stat_result) -> AssetInfo | None:
        info = self.globs.lookup(path)
        if info is not None:
            return info
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        linked = self._by_inode.get((st.st_dev, st.st_ino))
        if linked is not None and linked[0] != path:
            return AssetInfo(linked[1].kind, linked[1].owner, f"hard link to {linked[0]}")
        if st.st_size > 0 and st.st_size in self._sizes:
            try:
                same = self._by_hash.get(sha256_file(path))
            except OSError:
                same = None
            if same is not None and same[0] != path:
                return AssetInfo(same[1].kind, same[1].owner, f"same content as {same[0]}")
        if not self.discover:
            return None
        from guard.formats import sniff

        fmt = sniff(path)
        if fmt is not None:
            return AssetInfo(AssetKind.WEIGHTS, None, f"content:{fmt.value}")
        if path.lower().endswith(configs.STRUCTURED_SUFFIXES):
            text = configs.read_config(path)
            if isinstance(text, configs.TooLarge):
                # Too large to parse whole: a switch anywhere in it makes it a config.
                if self._mentions_anywhere(path):
                    return AssetInfo(AssetKind.CONFIG, None, "oversight keys (too large to parse)")
            elif text is not None and self.oversight.mentions(text):
                data = configs.parse(text, path)
                try:
                    if self.oversight.switches(data):
                        return AssetInfo(AssetKind.CONFIG, None, "oversight keys")
                except configs.TooComplex:
                    # Too many nodes to walk, and it names a switch: it may hold one.
                    return AssetInfo(AssetKind.CONFIG, None, "oversight keys (too complex)")
        return None

    def _mentions_anywhere(self, path: str) -> bool:
        """Whether a structured file too large to parse names an oversight key anywhere (read
        in chunks up to a bound; past it, it may, so it counts)."""
        tail = ""
        try:
            with open(path, encoding="utf-8", errors="replace") as fh:
                for _ in range(_SCAN_CHUNKS):
                    chunk = fh.read(1 << 20)
                    if not chunk:
                        return False
                    if self.oversight.mentions(tail + chunk):
                        return True
                    tail = chunk[-256:]  # a key split across two chunks
        except OSError:
            return True
        return True

    def _index_file(self, path: str, info: AssetInfo | None = None) -> None:
        try:
            st = os.stat(path)
        except OSError:
            return
        if info is None:
            info = self._classify_new(path, st)
        if info is None:
            return
        self._known[path] = info
        self._by_inode.setdefault((st.st_dev, st.st_ino), (path, info))
        try:
            digest = sha256_file(path)
        except OSError:
            return
        self._hash_of[path] = digest
        if st.st_size > 0:
            self._sizes.add(st.st_size)
        self._by_hash.setdefault(digest, (path, info))

    def refresh(self, paths: Iterable[str]) -> None:
        """Re-index ``paths`` after a call changed them (new, changed, or gone).

        A folder is re-indexed whole, once: paths below a folder already re-indexed in the
        same call are not looked at again.
        """
        changed = False
        covered: str | None = None
        for path in sorted(set(paths)):
            if covered is not None and path.startswith(covered):
                continue
            self._probe_cache.pop(path, None)
            if path in self._known:
                del self._known[path]
                self._hash_of.pop(path, None)
                changed = True
            if os.path.isdir(path):
                for sub, _info in self.under(path):
                    self._known.pop(sub, None)  # gone files are dropped, the rest come back
                    self._hash_of.pop(sub, None)
                for sub in walk_files(path):
                    self._index_file(sub)
                covered = path.rstrip("/") + "/"
                changed = True
            elif os.path.exists(path) and self._in_roots(path):
                self._index_file(path)
                changed = True
        if changed:
            self._sorted = sorted(self._known)

    def _in_roots(self, path: str) -> bool:
        return any(path == r or path.startswith(r + os.sep) for r in self.roots)

    # -- queries

    def __len__(self) -> int:
        return len(self._known)

    def lookup(self, path: str) -> AssetInfo | None:
        """What protected asset ``path`` is, or ``None`` when it is not protected.

        ``path`` must be absolute and resolved. A file that is not declared or already
        indexed is examined now: a hard link to a protected inode, a file with a protected
        file's content, or weights recognised by their header all count.
        """
        info = self.globs.lookup(path)
        if info is not None:
            return info
        info = self._known.get(path)
        if info is not None:
            return info
        return self._probe(path)

    def _probe(self, path: str) -> AssetInfo | None:
        # Most probes are of new destinations: os.access answers "no such file" in half the
        # time of a stat that raises (measured), and the stat follows only when it exists.
        if not os.access(path, os.F_OK):
            return None
        try:
            st = os.stat(path)
        except OSError:
            return None
        if not stat_mod.S_ISREG(st.st_mode):
            return None
        key = (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        cached = self._probe_cache.get(path)
        if cached is not None and cached[0] == key:
            return cached[1]
        result = self._classify_new(path, st)
        if len(self._probe_cache) > 65536:
            self._probe_cache.clear()
        self._probe_cache[path] = (key, result)
        return result

    def indexed(self, path: str) -> AssetInfo | None:
        """What the declarations or the index say of ``path``, without touching the file."""
        return self.globs.lookup(path) or self._known.get(path)

    def known(self, path: str) -> AssetInfo | None:
        """What the index recorded for ``path`` at its last scan or refresh (no file access)."""
        return self._known.get(path)

    def under(self, folder: str) -> list[tuple[str, AssetInfo]]:
        """Every known protected file inside ``folder`` (declared, discovered or hashed)."""
        prefix = folder.rstrip("/") + "/"
        i = bisect.bisect_left(self._sorted, prefix)
        out: list[tuple[str, AssetInfo]] = []
        while i < len(self._sorted) and self._sorted[i].startswith(prefix):
            path = self._sorted[i]
            out.append((path, self._known[path]))
            i += 1
        return out

    def by_digest(self, digest: str) -> tuple[str, AssetInfo] | None:
        """The protected file (first seen) whose content has this SHA-256, with its asset."""
        return self._by_hash.get(digest)

    def has_size(self, size: int) -> bool:
        """Whether some protected file has exactly ``size`` bytes (worth hashing a file for)."""
        return size > 0 and size in self._sizes

    def sizes_below(self, size: int) -> list[int]:
        """Sizes of protected files smaller than ``size``, largest first."""
        return sorted((s for s in self._sizes if s < size), reverse=True)

    def largest_size(self) -> int:
        """The size of the largest protected file (0 when none is indexed)."""
        return max(self._sizes, default=0)

    def digest(self, path: str) -> str | None:
        """The content hash recorded for a protected file, if any."""
        return self._hash_of.get(path)


def walk_files(*roots: str) -> Iterator[str]:
    """Every regular file below ``roots``, symlinks not followed; unreadable folders skipped.

    Args:
        roots: Folders to walk.

    Yields:
        File paths.
    """
    stack = list(roots)
    while stack:
        folder = stack.pop()
        try:
            with os.scandir(folder) as it:
                for entry in it:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            yield entry.path
                    except OSError:
                        continue
        except OSError:
            continue


__all__ = ["AssetIndex", "AssetInfo", "GlobIndex", "sha256_file", "walk_files"]
