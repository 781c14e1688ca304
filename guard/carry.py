"""What each agent has carried of protected weights so far, across calls.

One tool result, or one content argument, is screened on its own by
:meth:`~guard.content.ContentIndex.find`: a part of a peer's weights is found when that one
payload holds ``min_bytes // 2`` of its tensor bytes (32 KiB by default). An agent that reads
the weights 3 KB at a time (``dd bs=3000 skip=N count=1 ... | base64``, call after call), or
writes them out in many small ``append_file`` calls, never sends one payload that large.

:class:`CarryLedger` adds the pieces up. For each agent, and for each direction (what reaches
it: results; what it sends: content arguments), it keeps:

- every indexed chunk of protected tensor bytes seen whole in any of its payloads (digest,
  length, the files it belongs to): a set, so a piece seen twice counts once;
- the end of its last payload, put in front of the next one, so that pieces read in order
  join into the chunks a single copy would have (a chunk cut in two by a call boundary is
  whole again): as raw bytes, as Latin-1 text, and decoded from every text encoding
  :meth:`~guard.content.ContentIndex.find` reads (base64, base32, hex, ``xxd``/``od``/
  ``hexdump -C`` rows, decimal lists, base85, Ascii85, uuencode), both as it stands and
  with each piece's framing cut out (labels such as ``data:``, JSON keys and quotes, line
  numbers and offsets, a command's report on stderr), which would otherwise put a few
  bytes of junk at every boundary;
- per file, the bytes of the distinct chunks counted so far. Past :data:`MAX_CHUNKS` the
  oldest half of the chunks is forgotten as chunks, never as bytes: reading a flood of other
  indexed weights does not wipe what the agent carried.

A payload is *carrying* a protected file when it adds at least one new chunk of it and the
agent's total for that file, in that direction, then reaches the threshold. The guard treats
that payload as it treats one that holds the part alone: a result is withheld, a content
argument is a copy. Each direction therefore lets at most about one threshold's worth of a
file's tensor bytes through before it stops the agent.

What it does not do: pieces smaller than a chunk (512 bytes at least, 2.4 KiB on average)
taken out of order, or with other bytes of the agent's choosing between them (a decoy
result, a base64 word glued to each piece), or transformed piece by piece (a per-call key),
never form a whole chunk, and are not counted; Ascii85 and base85 pieces inside JSON or other
framing made of their own alphabet are not unframed; the ledger lives in one process (several
workers each keep their own), keeps accounts for the 1,024 agents that used it last (ids come
from the caller), and is not persisted.
"""

from __future__ import annotations

import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

from guard.content import (
    MIN_PAYLOAD,
    ContentIndex,
    Found,
    Hit,
    alphabet_runs,
    dump_like,
    latin1_view,
    may_carry_bytes,
    text_decodings,
)

__all__ = ["CarryLedger", "file_end"]

#: New bytes (one payload, or several small ones) that make the ledger look again: fewer hold
#: no whole chunk (the smallest is 512 bytes) in any encoding.
LEAST = 512
#: The end of an agent's stream put in front of what comes next: a chunk is at most 8 KiB,
#: which base64 makes about 11 KiB and a plain hex dump 16 KiB.
TAIL = 16 << 10
#: The same for dumps in rows (``xxd``, ``od``, ``hexdump -C``) and lists of decimal numbers,
#: 3.5 to 5 characters a byte.
WIDE_TAIL = 40 << 10
#: How much on each side of a boundary says whether a piece may go on across it.
SIDE = 1024
#: How much of the end of a file an append is read with: a part (64 KiB of tensor bytes by
#: default) as a hex dump.
APPEND_WINDOW = 256 << 10
#: Chunks kept per agent and direction; past it the oldest half is forgotten (its bytes
#: still count: a flood of other chunks does not wipe what the agent carried).
MAX_CHUNKS = 1 << 16
#: Accounts kept (agents times two directions): each holds up to ``WIDE_TAIL`` bytes of
#: stream end, so at most about 80 MiB of them; past it the least recently used is dropped.
MAX_ACCOUNTS = 2048
#: The characters of a label a tool or a script puts in front of a printed piece
#: (``data: ``, ``"bytes": ``): cut out before pieces are joined.
_WORD = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-"
#: Runs of the base64 alphabet (which holds base32 and hex) shorter than this, once labels
#: are cut out, are words, numbers or offsets, not pieces.
_PIECE_RUN = 16


@dataclass
class _Account:
    chunks: dict[int, tuple[tuple[str, ...], int]] = field(default_factory=dict)
    totals: dict[str, int] = field(default_factory=dict)  # bytes of distinct chunks per file
    tail: bytes = b""  # the end of the stream so far
    fresh: int = 0  # bytes of the tail not yet looked at


class CarryLedger:
    """Per agent, the protected tensor bytes it has carried so far (see the module's notes).

    Args:
        content: The fingerprint index of the protected weights.
    """

    def __init__(self, content: ContentIndex) -> None:
        self.content = content
        self._lock = threading.Lock()
        # Least recently used first; at most MAX_ACCOUNTS (agent ids come from the caller).
        self._accounts: OrderedDict[tuple[str, str], _Account] = OrderedDict()

    def carried(
        self, agent: str, direction: str, payload: bytes, *, append_to: str | None = None
    ) -> Found:
        """Screen ``payload``, what ``agent`` receives (``direction="in"``) or sends
        (``"out"``), on its own and as the continuation of what it carried before; record it.

        Args:
            agent: The agent.
            direction: ``"in"`` (tool results) or ``"out"`` (content it writes or sends).
            payload: The bytes.
            append_to: The file the payload is appended to: a part the payload makes
                larger at its end is a hit.

        Returns:
            The hits of the payload alone (as :meth:`ContentIndex.find` gives them) and of
            the agent's running total, one per file, and what could not be inspected.
        """
        key = (agent, direction)
        extends = self._extends(append_to, payload) if append_to else []
        with self._lock:
            account = self._account(key)
            tail = account.tail
            account.tail = (account.tail + payload)[-WIDE_TAIL:]
            account.fresh += len(payload)
            if account.fresh < LEAST:
                return Found(extends)  # too little new to hold a whole chunk: looked at later
            account.fresh = 0
        shared: dict[int, tuple[tuple[str, ...], int]] = {}
        # The payload alone decides its own hits; the end of the stream before it only adds
        # the chunks that a call boundary cut in two.
        # Under MIN_PAYLOAD, text that cannot hold printed bytes is not looked at (prose).
        small = len(payload) < MIN_PAYLOAD
        if small and not may_carry_bytes(payload):
            alone = Found()
        else:
            alone = self.content.find(payload, least=LEAST, shared=shared)
        # Only where the stream may go on across the boundary: printed bytes on either side.
        if tail and (may_carry_bytes(tail[-SIDE:]) or may_carry_bytes(payload[:SIDE])):
            n = WIDE_TAIL if dump_like(tail[-SIDE:]) or dump_like(payload[:SIDE]) else TAIL
            self._seam(tail[-n:] + payload[:n], shared)
        with self._lock:
            account = self._account(key)
            new = {d: v for d, v in shared.items() if d not in account.chunks}
            if len(account.chunks) + len(new) > MAX_CHUNKS:
                # The oldest half is forgotten as chunks (it may count again if seen again),
                # never as bytes: the totals only grow.
                kept = list(account.chunks.items())[len(account.chunks) // 2 :]
                account.chunks = dict(kept)
            account.chunks.update(new)
            for owners, length in new.values():
                for k in owners:
                    account.totals[k] = account.totals.get(k, 0) + length
            keys = {k for owners, _n in new.values() for k in owners}
            totals = {k: account.totals[k] for k in keys}
        return self._merge(alone, totals, extends)

    def _account(self, key: tuple[str, str]) -> _Account:
        """The account of ``key``, made if new; the least recently used one is dropped past
        :data:`MAX_ACCOUNTS` (its agent starts again from nothing)."""
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = _Account()
            while len(self._accounts) > MAX_ACCOUNTS:
                self._accounts.popitem(last=False)
        else:
            self._accounts.move_to_end(key)
        return account

    def _seam(self, seam: bytes, shared: dict[int, tuple[tuple[str, ...], int]]) -> None:
        """Add the chunks of ``seam`` (the stream's end and the payload's start) as raw bytes,
        as Latin-1 text, and decoded from every text encoding of bytes
        :meth:`ContentIndex.find` reads in one payload (base64, base32, hex, ``xxd`` and
        ``od`` dumps, base85, uuencode...), as they stand and with the framing of each piece
        (labels, quotes, JSON, offsets, a command's chatter) cut out: what a chunk cut by a
        call boundary was carried as. (Archives do not join across calls.)"""
        index = self.content.index()
        candidates = [seam, *text_decodings(seam)]
        latin = latin1_view(_whole_characters(seam))
        if latin is not None:
            candidates.append(latin)
        runs = list(alphabet_runs(_unlabelled(seam), _PIECE_RUN))
        joined = b"\n".join(runs)
        if runs and joined != seam:
            candidates.extend(text_decodings(joined))
        for data in candidates:
            scanner = index.scanner()
            scanner.update(data)
            shared.update(scanner.shared())

    def _extends(self, path: str, payload: bytes) -> list[Hit]:
        """Parts that appending ``payload`` to the file at ``path`` makes larger: the end of
        the file is read with the payload, and a part counts only where the payload adds to
        it (a part already there is not this call's doing). Where neither the payload nor the
        file's last bytes hold printed bytes (a line of prose added to a log), no chunk of
        tensor bytes can form across the two, and the file's end is not read whole."""
        if not may_carry_bytes(file_end(path, SIDE) + payload):
            return []
        end = file_end(path, APPEND_WINDOW)
        if not end:
            return []
        joined = self.content.find(end + payload).hits
        if not joined:
            return []
        prior = {h.path: h.matched_bytes for h in self.content.find(end).hits}
        return [
            Hit(h.path, h.asset, h.matched_bytes, ("the end of the file it extends", *h.how))
            for h in joined
            if h.matched_bytes > prior.get(h.path, 0)
        ]

    def _merge(self, alone: Found, totals: dict[str, int], extends: list[Hit]) -> Found:
        threshold = self.content.index().threshold
        hits = {h.path: h for h in alone.hits}
        for h in extends:
            if h.path not in hits or hits[h.path].matched_bytes < h.matched_bytes:
                hits[h.path] = h
        for fkey, total in totals.items():
            known = self.content.asset_of(fkey)
            if total < threshold or known is None:
                continue
            path, info = known
            if path not in hits or hits[path].matched_bytes < total:
                hits[path] = Hit(path, info, total, ("pieces carried across calls",))
        return Found(sorted(hits.values(), key=lambda h: -h.matched_bytes), alone.uninspected)


def _whole_characters(text: bytes) -> bytes:
    """``text`` without the pieces of UTF-8 characters its two cuts may have left at either
    end (at most 3 bytes each)."""
    start = next((i for i in range(min(3, len(text))) if not 0x80 <= text[i] < 0xC0), 0)
    end = len(text)
    for i in range(max(start, end - 3), end):
        if text[i] >= 0xC0:  # a lead byte: its character may be cut
            need = 2 if text[i] < 0xE0 else 3 if text[i] < 0xF0 else 4
            if i + need > end:
                end = i
            break
    return text[start:end]


def _unlabelled(text: bytes) -> bytes:
    """``text`` with the word (and quote) in front of each colon cut out, and the colon: the
    labels and keys of printed pieces. Linear: strips, not a regex that tries every start."""
    if b":" not in text:
        return text
    parts = text.split(b":")
    cut = [p.rstrip(b" \t").rstrip(b'"').rstrip(_WORD) for p in parts[:-1]]
    return b" ".join([*cut, parts[-1]])


def file_end(path: str, size: int = APPEND_WINDOW) -> bytes:
    """The last ``size`` bytes of the regular file at ``path`` (empty when there is none or it
    cannot be read): what an append continues."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return b""
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode) or st.st_size == 0:
            return b""
        return os.pread(fd, size, max(0, st.st_size - size))
    except OSError:
        return b""
    finally:
        os.close(fd)
