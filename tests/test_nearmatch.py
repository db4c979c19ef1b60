"""The multi-index near-match index returns exactly what a linear scan returns."""

from __future__ import annotations

import doctest
from collections.abc import Callable

import numpy as np
import pytest
from numpy.typing import NDArray

import authenticity.registry.nearmatch as nearmatch_module
from authenticity.errors import UsageError
from authenticity.media.pdq import PdqHash
from authenticity.registry.nearmatch import MAX_DISTANCE, Match, NearMatchIndex, linear_scan


def expect(code: str, call: Callable[[], object]) -> UsageError:
    with pytest.raises(UsageError) as info:
        call()
    assert info.value.code == code, info.value.diagnostics()
    return info.value


def flip(h: NDArray[np.uint8], bits: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """A copy of *h* with exactly *bits* distinct bits flipped."""
    out = h.copy()
    for bit in rng.choice(256, bits, replace=False):
        out[bit // 8] ^= np.uint8(1 << (bit % 8))
    return out


def planted(seed: int, count: int, queries: int) -> tuple[NDArray[np.uint8], list[NDArray[np.uint8]]]:
    """*count* random hashes with near-duplicates at distances 0..40 of each query planted among them.

    Flips are spread evenly over the chunks for some copies (the hardest case for
    multi-index hashing: as few bits per chunk as the pigeonhole bound allows).
    """
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 256, (count, 32), dtype=np.uint8)
    centres = [rng.integers(0, 256, 32, dtype=np.uint8) for _ in range(queries)]
    rows = iter(rng.permutation(count))
    for centre in centres:
        for distance in range(41):
            hashes[next(rows)] = flip(centre, distance, rng)
            hashes[next(rows)] = spread(centre, distance, rng)
    return hashes, centres


def spread(h: NDArray[np.uint8], distance: int, rng: np.random.Generator) -> NDArray[np.uint8]:
    """Flip *distance* bits dealt round-robin over the 16 chunks (chunk = 2 bytes)."""
    out, order = h.copy(), rng.permutation(16)
    for k in range(distance):
        chunk, within = order[k % 16], k // 16  # k // 16 < 16 distinct bits per chunk
        bit = chunk * 16 + within
        out[bit // 8] ^= np.uint8(1 << (7 - bit % 8))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_index_equals_linear_scan_on_planted_near_duplicates(seed: int) -> None:
    hashes, centres = planted(seed, 20_000, 5)
    index = NearMatchIndex()
    index.add_many(np.arange(len(hashes)), hashes)
    rng = np.random.default_rng(seed + 100)
    queries = [*centres, *(hashes[i] for i in rng.integers(0, len(hashes), 10))]
    for q in queries:
        for max_distance in (0, 1, 15, 16, 17, 30, 31, 32, 40, 47, 48, 64, 130):
            expected = linear_scan(hashes, q.tobytes(), max_distance)
            assert index.query(q.tobytes(), max_distance) == expected, max_distance
    # the planted copies really sit around the threshold, so the check above is not vacuous
    distances = [m.distance for m in index.query(centres[0].tobytes(), 40)]
    assert set(range(41)) <= set(distances)


def test_spread_flips_reach_the_pigeonhole_bound() -> None:
    rng = np.random.default_rng(0)
    centre = rng.integers(0, 256, 32, dtype=np.uint8)
    copy = spread(centre, 31, rng)
    per_chunk = np.unpackbits(centre ^ copy).reshape(16, 16).sum(axis=1)
    assert per_chunk.sum() == 31 and per_chunk.min() == 1 and per_chunk.max() == 2
    index = NearMatchIndex()
    index.add(5, copy.tobytes())
    assert index.query(centre.tobytes(), 31) == [Match(5, 31)]
    assert index.query(centre.tobytes(), 30) == []


def test_one_by_one_adds_and_batches_agree_with_bulk() -> None:
    hashes, centres = planted(9, 6_000, 2)
    bulk, incremental = NearMatchIndex(), NearMatchIndex()
    bulk.add_many(np.arange(len(hashes)), hashes)
    for row in range(5_000):  # crosses the merge threshold once, then leaves a pending batch
        incremental.add(row, hashes[row].tobytes())
    incremental.add_many(np.arange(5_000, len(hashes)), hashes[5_000:])
    assert len(incremental) == len(bulk) == len(hashes)
    for q in centres:
        assert incremental.query(q.tobytes(), 31) == bulk.query(q.tobytes(), 31) == linear_scan(hashes, q.tobytes())


def test_items_with_several_hashes_and_shared_hashes() -> None:
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 256, 32, dtype=np.uint8)
    added = [
        (10, flip(frame, 12, rng)),  # item 10: three frames, best at distance 3
        (10, flip(frame, 3, rng)),
        (10, flip(frame, 30, rng)),
        (4, frame),  # items 4 and 7 share the exact hash
        (7, frame),
        (2, flip(frame, 3, rng)),  # ties with item 10: smaller id first
        (99, flip(frame, 32, rng)),  # just out of range
    ]
    index = NearMatchIndex()
    for item_id, h in added:
        index.add(item_id, PdqHash(h.tobytes(), 100) if item_id == 10 else h.tobytes())
    assert len(index) == 7
    assert index.query(PdqHash(frame.tobytes(), 100)) == [Match(4, 0), Match(7, 0), Match(2, 3), Match(10, 3)]
    assert index.query(frame.tobytes(), 32)[-1] == Match(99, 32)
    ids, rows = np.array([i for i, _ in added]), np.stack([h for _, h in added])
    for max_distance in (0, 3, 31, 32, 200):
        assert linear_scan(rows, frame.tobytes(), max_distance, ids=ids) == index.query(frame.tobytes(), max_distance)


def test_empty_index_and_empty_batches() -> None:
    index = NearMatchIndex()
    assert len(index) == 0
    assert index.query(bytes(32)) == [] and index.query(bytes(32), MAX_DISTANCE) == []
    index.add_many(np.zeros(0, np.int64), np.zeros((0, 32), np.uint8))
    assert len(index) == 0
    assert linear_scan(np.zeros((0, 32), np.uint8), bytes(32)) == []


def test_extreme_distances_and_ids() -> None:
    index = NearMatchIndex()
    index.add_many(np.array([2**63 - 1, -(2**63)], np.int64), np.array([[0] * 32, [255] * 32], np.uint8))
    assert index.query(bytes(32), 0) == [Match(2**63 - 1, 0)]
    assert index.query(bytes(32), 255) == [Match(2**63 - 1, 0)]
    assert index.query(bytes(32), MAX_DISTANCE) == [Match(2**63 - 1, 0), Match(-(2**63), 256)]
    uint_ids = NearMatchIndex()
    uint_ids.add_many(np.array([3], np.uint32), np.zeros((1, 32), np.uint8))
    assert uint_ids.query(bytes(32)) == [Match(3, 0)]


def test_index_copies_the_callers_arrays() -> None:
    hashes, ids = np.zeros((5_000, 32), np.uint8), np.arange(5_000)
    index = NearMatchIndex()
    index.add_many(ids, hashes)
    hashes[:] = 255
    ids[:] = -1
    assert index.query(bytes(32), 0)[:2] == [Match(0, 0), Match(1, 0)]


@pytest.mark.parametrize("max_distance", [-1, MAX_DISTANCE + 1, 31.0, True, None, "31"])
def test_max_distance_bounds(max_distance: object) -> None:
    index = NearMatchIndex()
    expect("usage.nearmatch.distance", lambda: index.query(bytes(32), max_distance))  # type: ignore[arg-type]
    expect("usage.nearmatch.distance", lambda: linear_scan(np.zeros((1, 32), np.uint8), bytes(32), max_distance))  # type: ignore[arg-type]


@pytest.mark.parametrize("h", [bytes(31), bytes(33), bytearray(32), "00" * 32, None])
def test_hash_must_be_32_bytes(h: object) -> None:
    index = NearMatchIndex()
    expect("usage.nearmatch.hash", lambda: index.add(1, h))  # type: ignore[arg-type]
    expect("usage.nearmatch.hash", lambda: index.query(h))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "hashes",
    [np.zeros((2, 31), np.uint8), np.zeros((2, 32), np.int8), np.zeros(64, np.uint8), [[0] * 32] * 2],
    ids=["short-rows", "int8", "flat", "list"],
)
def test_add_many_rejects_bad_hash_arrays(hashes: object) -> None:
    expect("usage.nearmatch.hash", lambda: NearMatchIndex().add_many(np.arange(2), hashes))  # type: ignore[arg-type]
    expect("usage.nearmatch.hash", lambda: linear_scan(hashes, bytes(32)))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "ids",
    [np.arange(3), np.arange(2.0), np.array([[1, 2]]), [1, 2], np.array([2**63, 1], np.uint64)],
    ids=["length", "float", "2d", "list", "uint64-overflow"],
)
def test_add_many_rejects_bad_ids(ids: object) -> None:
    expect("usage.nearmatch.item", lambda: NearMatchIndex().add_many(ids, np.zeros((2, 32), np.uint8)))  # type: ignore[arg-type]


@pytest.mark.parametrize("item_id", [2**63, -(2**63) - 1, 1.0, True, "1", None])
def test_add_rejects_bad_item_ids(item_id: object) -> None:
    expect("usage.nearmatch.item", lambda: NearMatchIndex().add(item_id, bytes(32)))  # type: ignore[arg-type]


def test_linear_scan_rejects_mismatched_ids() -> None:
    expect("usage.nearmatch.item", lambda: linear_scan(np.zeros((2, 32), np.uint8), bytes(32), ids=np.arange(3)))


def test_docstring_examples() -> None:
    assert doctest.testmod(nearmatch_module).failed == 0
