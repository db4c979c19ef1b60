"""Exact near-duplicate search over 256-bit PDQ hashes: multi-index hashing, in memory.

Each hash is cut into 16 chunks of 16 bits. Two hashes at Hamming distance *d* differ
in fewer than ``d // 16 + 1`` bits in at least one chunk (pigeonhole: were every chunk
to differ in ``d // 16 + 1`` bits or more, the total would exceed *d*). So probing,
for each chunk, every 16-bit value within radius ``d // 16`` of the query's chunk
finds every stored hash within *d* - the search is exact, not approximate. For
PDQ's threshold of 31 that is 16 x 17 = 272 bucket probes; with *n* random hashes a
bucket holds about ``n / 65536`` of them, so a query at a million hashes checks a few
thousand candidates instead of a million. Beyond radius 2 (distance 48 and up) the
probes would cover a good part of the index, so :meth:`NearMatchIndex.query` scans
everything instead - still exact.

Pure: no I/O, no database. Not thread-safe: guard an index shared between threads.

>>> index = NearMatchIndex()
>>> index.add(7, bytes(32))
>>> index.query(bytes(31) + b"\\x03")
[Match(item_id=7, distance=2)]
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from authenticity.errors import UsageError
from authenticity.media.pdq import HASH_BYTES, MATCH_DISTANCE, PdqHash, hamming_distances

__all__ = ["MAX_DISTANCE", "Match", "NearMatchIndex", "linear_scan"]

MAX_DISTANCE = 8 * HASH_BYTES
"""Largest meaningful ``max_distance`` (every hash is within 256 of every other)."""

_CHUNKS = 16
_BUCKETS = 1 << 16
_MAX_RADIUS = 2  # radius 3 would mean 16 x 697 probes, about a sixth of a million-hash index
# Adds wait in a small unindexed batch (scanned linearly by queries) until it reaches
# this size or 1/16 of the index, so one-by-one adds cost O(1) amortised, not a rebuild each.
_MIN_MERGE = 4096


@dataclass(frozen=True)
class Match:
    """An item whose best hash is *distance* bits from the query."""

    item_id: int
    distance: int


def _flip_masks(radius: int) -> NDArray[np.int64]:
    """Every 16-bit mask with at most *radius* bits set (1, 17, 137 masks)."""
    masks = [0]
    for bits in range(1, radius + 1):
        masks += [sum(1 << b for b in chosen) for chosen in itertools.combinations(range(16), bits)]
    return np.array(masks, np.int64)


_MASKS = [_flip_masks(radius) for radius in range(_MAX_RADIUS + 1)]


def _hash_bytes(h: PdqHash | bytes) -> NDArray[np.uint8]:
    bits = h.bits if isinstance(h, PdqHash) else h
    if not isinstance(bits, bytes) or len(bits) != HASH_BYTES:
        raise UsageError("usage.nearmatch.hash", f"a hash is a PdqHash or {HASH_BYTES} bytes, got {bits!r:.80}")
    return np.frombuffer(bits, np.uint8)


def _check_distance(max_distance: int) -> None:
    if isinstance(max_distance, bool) or not isinstance(max_distance, int) or not 0 <= max_distance <= MAX_DISTANCE:
        raise UsageError("usage.nearmatch.distance", f"max_distance is an int from 0 to {MAX_DISTANCE}, got "
                                                     f"{max_distance!r}")  # fmt: skip


def _check_rows(hashes: object) -> NDArray[np.uint8]:
    if not isinstance(hashes, np.ndarray) or hashes.dtype != np.uint8 or hashes.shape[1:] != (HASH_BYTES,):
        shape, dtype = getattr(hashes, "shape", None), getattr(hashes, "dtype", type(hashes).__name__)
        raise UsageError("usage.nearmatch.hash", f"hashes must be a uint8 array of shape (n, {HASH_BYTES}), "
                                                 f"got {dtype} {shape}")  # fmt: skip
    return np.ascontiguousarray(hashes)


def _best_per_item(ids: NDArray[np.int64], distances: NDArray[np.int32]) -> list[Match]:
    """One match per item (its smallest distance), ordered by distance then item id."""
    # Sorts rather than np.unique, which costs ~1 ms even on a few thousand ints (numpy 2.4).
    order = np.lexsort((distances, ids))  # by id, then distance: each item's best row comes first
    ids, distances = ids[order], distances[order]
    first = np.ones(len(ids), bool)
    first[1:] = ids[1:] != ids[:-1]
    ids, distances = ids[first], distances[first]
    order = np.lexsort((ids, distances))
    return [Match(int(i), int(d)) for i, d in zip(ids[order], distances[order], strict=True)]


def linear_scan(
    hashes: NDArray[np.uint8], q: PdqHash | bytes, max_distance: int = MATCH_DISTANCE, *,
    ids: NDArray[np.int64] | None = None,
) -> list[Match]:  # fmt: skip
    """Compare *q* with every row of *hashes*: the baseline :class:`NearMatchIndex` must equal.

    Items are the row numbers, or ``ids[row]`` when *ids* is given (one match per item,
    its best distance), ordered by distance then item id.

    >>> linear_scan(np.zeros((3, 32), np.uint8), b"\\x01" + bytes(31), 1)
    [Match(item_id=0, distance=1), Match(item_id=1, distance=1), Match(item_id=2, distance=1)]
    """
    _check_distance(max_distance)
    rows = _check_rows(hashes)
    item_ids = np.arange(len(rows), dtype=np.int64) if ids is None else np.asarray(ids, np.int64)
    if item_ids.shape != (len(rows),):
        raise UsageError("usage.nearmatch.item", f"{len(item_ids)} ids for {len(rows)} hashes")
    distances = hamming_distances(rows, _hash_bytes(q))
    hit = distances <= max_distance
    return _best_per_item(item_ids[hit], distances[hit])


class NearMatchIndex:
    """In-memory index of ``(item_id, 256-bit hash)`` pairs answering exact Hamming-radius queries.

    An item may be added with several hashes (a video's frames) and several items may
    share a hash; :meth:`query` returns each item once, with its best distance.

    >>> index = NearMatchIndex()
    >>> index.add_many(np.array([1, 2]), np.array([[0] * 32, [255] * 32], np.uint8))
    >>> index.query(bytes(32), max_distance=31), len(index)
    ([Match(item_id=1, distance=0)], 2)
    """

    def __init__(self) -> None:
        self._hashes = np.zeros((0, HASH_BYTES), np.uint8)  # indexed rows
        self._ids = np.zeros(0, np.int64)
        self._postings = np.zeros(0, np.int32)  # per chunk: row numbers ordered by that chunk's value
        self._offsets = np.zeros(_CHUNKS * (_BUCKETS + 1), np.int64)  # bucket starts in _postings, per chunk
        self._pending: list[tuple[NDArray[np.int64], NDArray[np.uint8]]] = []
        self._pending_rows = 0

    def __len__(self) -> int:
        """Number of ``(item_id, hash)`` pairs added (not distinct items)."""
        return len(self._ids) + self._pending_rows

    def add(self, item_id: int, h: PdqHash | bytes) -> None:
        """Add one hash for *item_id*.

        >>> index = NearMatchIndex(); index.add(1, bytes(32)); len(index)
        1
        """
        if isinstance(item_id, bool) or not isinstance(item_id, int) or not -(2**63) <= item_id < 2**63:
            raise UsageError("usage.nearmatch.item", f"item_id must be a 64-bit int, got {item_id!r}")
        self._stage(np.array([item_id], np.int64), _hash_bytes(h).reshape(1, HASH_BYTES))

    def add_many(self, ids: NDArray[np.integer], hashes: NDArray[np.uint8]) -> None:
        """Add ``hashes[k]`` (rows of 32 uint8, as ``PdqHash.bits``) for ``ids[k]``; vectorised.

        >>> index = NearMatchIndex(); index.add_many(np.arange(3), np.zeros((3, 32), np.uint8)); len(index)
        3
        """
        rows = _check_rows(hashes)
        if not isinstance(ids, np.ndarray) or ids.dtype.kind not in "iu" or ids.shape != (len(rows),):
            shape = getattr(ids, "shape", None)
            raise UsageError("usage.nearmatch.item", f"ids must be an int array of shape ({len(rows)},), got {shape}")
        if ids.dtype.kind == "u" and len(ids) and int(ids.max()) >= 2**63:
            raise UsageError("usage.nearmatch.item", "ids must fit in a signed 64-bit int")
        self._stage(ids.astype(np.int64), rows.copy())  # copies: later changes to the caller's arrays stay out

    def query(self, h: PdqHash | bytes, max_distance: int = MATCH_DISTANCE) -> list[Match]:
        """Every item with a hash within *max_distance* bits of *h*, best distance first, then by id.

        Exactly what :func:`linear_scan` over all added hashes returns.

        >>> NearMatchIndex().query(bytes(32))
        []
        """
        _check_distance(max_distance)
        q = _hash_bytes(h)
        radius = max_distance // _CHUNKS
        if radius > _MAX_RADIUS:
            distances = hamming_distances(self._hashes, q)
            hit = distances <= max_distance
            ids, found = self._ids[hit], distances[hit]
        else:
            rows = self._candidates(q, radius)
            distances = hamming_distances(self._hashes[rows], q)
            hit = distances <= max_distance
            ids, found = self._ids[rows[hit]], distances[hit]
        for pending_ids, pending_hashes in self._pending:  # small: under 1/16 of the index
            pending_distances = hamming_distances(pending_hashes, q)
            close = pending_distances <= max_distance
            ids, found = np.concatenate([ids, pending_ids[close]]), np.concatenate([found, pending_distances[close]])
        return _best_per_item(ids, found)

    def _candidates(self, q: NDArray[np.uint8], radius: int) -> NDArray[np.int32]:
        """Indexed rows sharing a chunk within *radius* bits with *q*'s.

        A row close to *q* in several chunks comes back several times; that is cheaper
        than removing the repeats here, and :func:`_best_per_item` keeps one per item.
        """
        chunk_values = (q[0::2].astype(np.int64) << 8) | q[1::2]
        buckets = (chunk_values[:, None] ^ _MASKS[radius][None, :]) + (np.arange(_CHUNKS) * (_BUCKETS + 1))[:, None]
        starts, ends = self._offsets[buckets.ravel()], self._offsets[buckets.ravel() + 1]
        lengths = ends - starts
        total = int(lengths.sum())
        if total == 0:
            return np.zeros(0, np.int32)
        # Concatenate the ranges [start, end) without a Python loop: position k of the output
        # belongs to the range whose cumulative length first exceeds k.
        shift = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)
        return self._postings[shift + np.arange(total)]

    def _stage(self, ids: NDArray[np.int64], rows: NDArray[np.uint8]) -> None:
        if len(ids) == 0:
            return
        self._pending.append((ids, rows))
        self._pending_rows += len(ids)
        if self._pending_rows >= max(_MIN_MERGE, len(self._ids) // 16):
            self._rebuild()

    def _rebuild(self) -> None:
        """Fold the pending batch into the indexed rows and rebuild every chunk's buckets."""
        if len(self._ids) + self._pending_rows >= 2**31:  # postings are int32; refuse before changing anything
            raise UsageError("usage.nearmatch.size", "an index holds at most 2**31 - 1 hashes")
        self._ids = np.concatenate([self._ids, *(ids for ids, _ in self._pending)])
        self._hashes = np.concatenate([self._hashes, *(rows for _, rows in self._pending)])
        self._pending, self._pending_rows = [], 0
        count = len(self._ids)
        chunk_values = (self._hashes[:, 0::2].astype(np.uint16) << 8) | self._hashes[:, 1::2]
        postings = np.empty(_CHUNKS * count, np.int32)
        offsets = np.empty((_CHUNKS, _BUCKETS + 1), np.int64)
        for chunk in range(_CHUNKS):  # 16 passes, each vectorised over every row
            column = chunk_values[:, chunk]
            postings[chunk * count : (chunk + 1) * count] = np.argsort(column, kind="stable")  # radix sort
            offsets[chunk, 0] = chunk * count
            offsets[chunk, 1:] = chunk * count + np.cumsum(np.bincount(column, minlength=_BUCKETS))
        self._postings, self._offsets = postings, offsets.ravel()
