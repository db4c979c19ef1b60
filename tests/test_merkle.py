"""Tests for the pure Merkle maths in ``authenticity.registry.merkle``.

Three sources of truth: the upstream transparency-dev/merkle vectors in
``../shared/fixtures/merkle``, RFC 6962's reference data and worked example, and a naive
recursive reference written straight from RFC 6962's definitions (MTH, PATH, PROOF).
"""

from __future__ import annotations

import base64
import doctest
import hashlib
import json
import math
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from authenticity.errors import UsageError, VerificationError
from authenticity.registry import merkle
from authenticity.registry.merkle import (
    CONSISTENCY_INVALID,
    INCLUSION_INVALID,
    MemoryTree,
    NodeId,
    append_dependencies,
    compute_append,
    consistency_proof_ranges,
    empty_root,
    inclusion_proof_ranges,
    leaf_hash,
    node_hash,
    nodes_to_store_on_append,
    perfect_nodes_for_range,
    proof_from_nodes,
    required_nodes,
    root_from_nodes,
    subtree_consistency_proof_ranges,
    subtree_inclusion_proof_ranges,
    verify_consistency,
    verify_inclusion,
    verify_subtree_consistency,
    verify_subtree_inclusion,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "merkle"
NO_FIXTURES = "../shared/fixtures/merkle not present (shared test data is only on dev/CI machines)"

# RFC 6962 reference leaves (certificate-transparency's merkle_tree_test data) and the
# roots of their first 1..8 leaves as published with them.
RFC_LEAVES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657",
              "606162636465666768696a6b6c6d6e6f")
]  # fmt: skip
RFC_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
SMALL = 40  # every (index, size) and (size1, size2) pair up to here is checked


# --- naive reference, written from RFC 6962 section 2.1 ----------------------------------


def _k(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def ref_mth(d: list[bytes]) -> bytes:
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return hashlib.sha256(b"\x00" + d[0]).digest()
    k = _k(len(d))
    return hashlib.sha256(b"\x01" + ref_mth(d[:k]) + ref_mth(d[k:])).digest()


def ref_path(m: int, d: list[bytes]) -> list[bytes]:
    if len(d) == 1:
        return []
    k = _k(len(d))
    if m < k:
        return [*ref_path(m, d[:k]), ref_mth(d[k:])]
    return [*ref_path(m - k, d[k:]), ref_mth(d[:k])]


def ref_proof(m: int, d: list[bytes], b: bool = True) -> list[bytes]:
    if m == len(d):
        return [] if b else [ref_mth(d)]
    k = _k(len(d))
    if m <= k:
        return [*ref_proof(m, d[:k], b), ref_mth(d[k:])]
    return [*ref_proof(m - k, d[k:], False), ref_mth(d[:k])]


def _entries(count: int, seed: int = 6962) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randrange(0, 40)) for _ in range(count)]


@pytest.fixture(scope="module")
def small() -> tuple[list[bytes], MemoryTree]:
    entries = _entries(SMALL)
    return entries, MemoryTree(entries)


def _flips(proof: list[bytes]) -> list[list[bytes]]:
    """Every proof with one bit flipped in one element (a different bit per element)."""
    out = []
    for i, element in enumerate(proof):
        bit = (i * 37) % (8 * len(element))
        damaged = bytearray(element)
        damaged[bit // 8] ^= 1 << (bit % 8)
        out.append([*proof[:i], bytes(damaged), *proof[i + 1 :]])
    return out


def _raises(code: str, check: Callable[..., None], *args: Any) -> None:
    with pytest.raises(VerificationError) as caught:
        check(*args)
    assert caught.value.code == code


# --- upstream vectors (transparency-dev/merkle testdata) ----------------------------------


def _vectors() -> list[Path]:
    return sorted(FIXTURES.glob("*/**/*.json")) if FIXTURES.is_dir() else []


VECTORS = _vectors()


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value or "")


def _proof(vector: dict[str, Any]) -> list[bytes]:
    return [_b64(p) for p in vector["proof"] or []]


def _check_vector(kind: str, v: dict[str, Any]) -> tuple[str, Callable[[], None]]:
    """The error code a failing vector must carry, and the check it describes."""
    if kind == "inclusion":
        return INCLUSION_INVALID, lambda: verify_inclusion(
            _b64(v["leafHash"]), v["leafIdx"], v["treeSize"], _proof(v), _b64(v["root"])
        )
    if kind == "consistency":
        return CONSISTENCY_INVALID, lambda: verify_consistency(
            v["size1"], v["size2"], _proof(v), _b64(v["root1"]), _b64(v["root2"])
        )
    if kind == "subtreeinclusion":
        return INCLUSION_INVALID, lambda: verify_subtree_inclusion(
            _b64(v["leafHash"]), v["leafIdx"], v["start"], v["end"], _proof(v), _b64(v["root"])
        )
    if kind == "subtreeconsistency":
        return CONSISTENCY_INVALID, lambda: verify_subtree_consistency(
            v["start"], v["end"], v["size"], _proof(v), _b64(v["root1"]), _b64(v["root2"])
        )
    pytest.fail(f"unknown vector kind {kind!r}: teach this test about it")


def test_upstream_vectors_are_present() -> None:
    if not FIXTURES.is_dir():
        pytest.skip(NO_FIXTURES)
    kinds = {p.relative_to(FIXTURES).parts[0] for p in VECTORS}
    assert len(VECTORS) > 0
    assert kinds == {"inclusion", "consistency", "subtreeinclusion", "subtreeconsistency"}


@pytest.mark.parametrize(
    "path",
    VECTORS or [pytest.param(None, marks=pytest.mark.skip(reason=NO_FIXTURES))],
    ids=lambda p: str(p.relative_to(FIXTURES)) if p else "absent",
)
def test_upstream_vector(path: Path) -> None:
    vector = json.loads(path.read_text())
    code, check = _check_vector(path.relative_to(FIXTURES).parts[0], vector)
    if vector["wantErr"]:
        _raises(code, check)
    else:
        check()


# --- known answers from RFC 6962 ----------------------------------------------------------


def test_rfc6962_reference_roots() -> None:
    tree = MemoryTree()
    assert tree.root() == empty_root() == hashlib.sha256(b"").digest()
    for n, (entry, want) in enumerate(zip(RFC_LEAVES, RFC_ROOTS, strict=True), start=1):
        tree.append(entry)
        assert tree.root().hex() == want == ref_mth(RFC_LEAVES[:n]).hex()
    assert [tree.root(n).hex() for n in range(1, 9)] == RFC_ROOTS


def test_rfc6962_worked_example_ranges() -> None:
    """Section 2.1.3's seven-leaf tree, with each named node as a leaf range."""
    a, b, c, d, e, f, j = ((i, i + 1) for i in range(7))
    g, h, i, k, l = (0, 2), (2, 4), (4, 6), (0, 4), (4, 7)  # noqa: E741 (the RFC's names)
    assert inclusion_proof_ranges(0, 7) == [b, h, l]
    assert inclusion_proof_ranges(3, 7) == [c, g, l]
    assert inclusion_proof_ranges(4, 7) == [f, j, k]
    assert inclusion_proof_ranges(6, 7) == [i, k]
    assert consistency_proof_ranges(3, 7) == [c, d, g, l]
    assert consistency_proof_ranges(4, 7) == [l]
    assert consistency_proof_ranges(6, 7) == [i, j, k]
    assert consistency_proof_ranges(7, 7) == []
    assert (a, e) == ((0, 1), (4, 5))


def test_roots_match_reference_for_every_size_up_to_64() -> None:
    entries = _entries(64, seed=1)
    tree = MemoryTree()
    assert tree.root() == ref_mth([])
    for n, entry in enumerate(entries, start=1):
        assert tree.append(entry) == n - 1
        assert tree.size == n
        assert tree.root() == ref_mth(entries[:n])
    for n in range(65):  # historic roots come from the same stored nodes
        assert tree.root(n) == ref_mth(entries[:n])


def test_stored_nodes_are_exactly_the_complete_perfect_subtrees() -> None:
    entries = _entries(37, seed=2)
    tree = MemoryTree(entries)
    want = {(lvl, idx) for lvl in range(6) for idx in range(37) if (idx + 1) << lvl <= 37}
    assert set(tree.nodes) == want
    for (lvl, idx), value in tree.nodes.items():
        assert value == ref_mth(entries[idx << lvl : (idx + 1) << lvl])


def test_inclusion_proofs_match_reference_and_verify(small: tuple[list[bytes], MemoryTree]) -> None:
    entries, tree = small
    for size in range(1, SMALL + 1):
        root = tree.root(size)
        for index in range(size):
            proof = tree.inclusion_proof(index, size)
            assert proof == ref_path(index, entries[:size])
            verify_inclusion(leaf_hash(entries[index]), index, size, proof, root)
            # A one-leaf subtree's consistency proof is the inclusion proof.
            verify_subtree_consistency(index, index + 1, size, proof, leaf_hash(entries[index]), root)


def test_consistency_proofs_match_reference_and_verify(small: tuple[list[bytes], MemoryTree]) -> None:
    entries, tree = small
    for size2 in range(1, SMALL + 1):
        for size1 in range(1, size2 + 1):
            proof = tree.consistency_proof(size1, size2)
            assert proof == ref_proof(size1, entries[:size2])
            root1, root2 = tree.root(size1), tree.root(size2)
            verify_consistency(size1, size2, proof, root1, root2)
            verify_subtree_consistency(0, size1, size2, proof, root1, root2)


def test_any_flipped_bit_fails(small: tuple[list[bytes], MemoryTree]) -> None:
    entries, tree = small
    for size in range(1, SMALL + 1):
        root = tree.root(size)
        for index in range(size):
            leaf = leaf_hash(entries[index])
            proof = tree.inclusion_proof(index, size)
            for bad in _flips(proof):
                _raises(INCLUSION_INVALID, verify_inclusion, leaf, index, size, bad, root)
            [bad_leaf, bad_root] = [flipped[i] for i, flipped in enumerate(_flips([leaf, root]))]
            _raises(INCLUSION_INVALID, verify_inclusion, bad_leaf, index, size, proof, root)
            _raises(INCLUSION_INVALID, verify_inclusion, leaf, index, size, proof, bad_root)
        for size1 in range(1, size):
            root1 = tree.root(size1)
            proof = tree.consistency_proof(size1, size)
            for bad in _flips(proof):
                _raises(CONSISTENCY_INVALID, verify_consistency, size1, size, bad, root1, root)
                _raises(CONSISTENCY_INVALID, verify_subtree_consistency, 0, size1, size, bad, root1, root)
            [bad1, bad2] = [flipped[i] for i, flipped in enumerate(_flips([root1, root]))]
            _raises(CONSISTENCY_INVALID, verify_consistency, size1, size, proof, bad1, root)
            _raises(CONSISTENCY_INVALID, verify_consistency, size1, size, proof, root1, bad2)


def test_wrong_shapes_fail(small: tuple[list[bytes], MemoryTree]) -> None:
    # (Sizes whose paths have the same shape, e.g. 12/13/14 for leaf 5, share a proof:
    # the root binds the size, so only shape-changing sizes are tried here.)
    entries, tree = small
    root = tree.root(13)
    leaf, proof = leaf_hash(entries[5]), tree.inclusion_proof(5, 13)
    for bad in (proof[:-1], [*proof, proof[0]], [proof[0], *proof], [*proof[:-1], b""]):
        _raises(INCLUSION_INVALID, verify_inclusion, leaf, 5, 13, bad, root)
    for index, size in ((4, 13), (6, 13), (5, 7), (5, 26), (13, 13), (-1, 13), (0, 0)):
        _raises(INCLUSION_INVALID, verify_inclusion, leaf, index, size, proof, root)
    _raises(INCLUSION_INVALID, verify_inclusion, leaf[:31], 5, 13, proof, root)
    _raises(INCLUSION_INVALID, verify_inclusion, leaf, 5, 13, proof, root + b"\x00")
    cproof, root1 = tree.consistency_proof(6, 13), tree.root(6)
    for bad in (cproof[:-1], [*cproof, cproof[0]], [], [root1, *cproof]):
        _raises(CONSISTENCY_INVALID, verify_consistency, 6, 13, bad, root1, root)
    for size1, size2 in ((5, 13), (7, 13), (6, 7), (6, 26), (13, 6), (0, 13), (-1, 13)):
        _raises(CONSISTENCY_INVALID, verify_consistency, size1, size2, cproof, root1, root)
    _raises(CONSISTENCY_INVALID, verify_consistency, 6, 13, cproof, root, root1)
    _raises(CONSISTENCY_INVALID, verify_consistency, 0, 0, [], empty_root(), empty_root())
    _raises(CONSISTENCY_INVALID, verify_consistency, 6, 6, [root1], root1, root1)
    _raises(CONSISTENCY_INVALID, verify_consistency, 6, 6, [], root1, root)
    verify_consistency(6, 6, [], root1, root1)


# --- subtree proofs --------------------------------------------------------------------------


def _subtrees(size: int) -> list[tuple[int, int]]:
    pairs = [(s, e) for e in range(1, size + 1) for s in range(e)]
    return [(s, e) for s, e in pairs if s % (1 << (e - s - 1).bit_length()) == 0]


def test_subtree_proofs_verify_and_flips_fail(small: tuple[list[bytes], MemoryTree]) -> None:
    entries, tree = small
    for size in range(1, 24):
        root = tree.root(size)
        for start, end in _subtrees(size):
            sub = ref_mth(entries[start:end])
            proof = tree.subtree_consistency_proof(start, end, size)
            verify_subtree_consistency(start, end, size, proof, sub, root)
            for bad in _flips(proof):
                _raises(CONSISTENCY_INVALID, verify_subtree_consistency, start, end, size, bad, sub, root)
            if (start, end) != (0, size):
                _raises(CONSISTENCY_INVALID, verify_subtree_consistency, start, end, size, proof, root, sub)
            else:
                _raises(CONSISTENCY_INVALID, verify_subtree_consistency, start, end, size, [sub], sub, root)
            for index in range(start, end):
                iproof = tree.subtree_inclusion_proof(index, start, end)
                assert iproof == ref_path(index - start, entries[start:end])
                leaf = leaf_hash(entries[index])
                verify_subtree_inclusion(leaf, index, start, end, iproof, sub)
                for bad in _flips(iproof):
                    _raises(INCLUSION_INVALID, verify_subtree_inclusion, leaf, index, start, end, bad, sub)


def test_subtree_edge_cases() -> None:
    empty = empty_root()
    verify_subtree_consistency(3, 3, 5, [], empty, b"anything")
    _raises(CONSISTENCY_INVALID, verify_subtree_consistency, 3, 3, 5, [empty], empty, empty)
    _raises(CONSISTENCY_INVALID, verify_subtree_consistency, 6, 6, 5, [], empty, empty)
    for start, end in ((1, 3), (2, 5), (2, 6), (1, 15), (3, 5)):
        _raises(CONSISTENCY_INVALID, verify_subtree_consistency, start, end, 16, [], empty, empty)
        _raises(INCLUSION_INVALID, verify_subtree_inclusion, empty, start, start, end, [], empty)
        with pytest.raises(UsageError):
            subtree_consistency_proof_ranges(start, end, 16)
    _raises(INCLUSION_INVALID, verify_subtree_inclusion, empty, 0, 1, 2, [], empty)
    _raises(INCLUSION_INVALID, verify_subtree_inclusion, empty, 2, 2, 2, [], empty)
    assert subtree_inclusion_proof_ranges(13, 8, 16) == [(12, 13), (14, 16), (8, 12)]


# --- appending, node addressing, argument checks -------------------------------------------


def test_append_nodes_and_dependencies() -> None:
    assert nodes_to_store_on_append(0) == [(0, 0)]
    assert nodes_to_store_on_append(6) == [(0, 6)]
    assert nodes_to_store_on_append(7) == [(0, 7), (1, 3), (2, 1), (3, 0)]
    assert append_dependencies(7) == [(0, 6), (1, 2), (2, 0)]
    assert append_dependencies(4) == []
    for size in range(200):
        assert len(nodes_to_store_on_append(size)) == 1 + ((size + 1) & -(size + 1)).bit_length() - 1


def test_perfect_node_decomposition() -> None:
    assert perfect_nodes_for_range(0, 0) == []
    assert perfect_nodes_for_range(0, 13) == [(3, 0), (2, 2), (0, 12)]
    assert perfect_nodes_for_range(8, 13) == [(2, 2), (0, 12)]
    assert perfect_nodes_for_range(3, 9) == [(0, 3), (2, 1), (0, 8)]
    for start in range(20):
        for end in range(start, 40):
            nodes = perfect_nodes_for_range(start, end)
            covered = [i for lvl, idx in nodes for i in range(idx << lvl, (idx + 1) << lvl)]
            assert covered == list(range(start, end))


def test_generators_refuse_impossible_requests() -> None:
    for call in (
        lambda: inclusion_proof_ranges(5, 5),
        lambda: inclusion_proof_ranges(-1, 5),
        lambda: consistency_proof_ranges(0, 5),
        lambda: consistency_proof_ranges(6, 5),
        lambda: nodes_to_store_on_append(-1),
        lambda: perfect_nodes_for_range(5, 4),
        lambda: subtree_inclusion_proof_ranges(4, 0, 4),
        lambda: compute_append(0, b"short", MemoryTree().get),
        lambda: MemoryTree([b"a"]).root(2),
        lambda: MemoryTree([b"a"]).consistency_proof(1, 2),
    ):
        with pytest.raises(UsageError) as caught:
            call()
        assert caught.value.code == merkle.RANGE_INVALID


def test_hash_functions() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"l" * 32, b"r" * 32) == hashlib.sha256(b"\x01" + b"l" * 32 + b"r" * 32).digest()
    assert len(empty_root()) == merkle.HASH_SIZE == 32
    assert root_from_nodes(0, MemoryTree().get) == empty_root()


def test_docstring_examples() -> None:
    assert doctest.testmod(merkle, raise_on_error=False).failed == 0


# --- cost: O(log n) node reads ------------------------------------------------------------


class _CountingStore:
    """A fake store of a huge tree: any node's hash is made up on demand, reads are counted."""

    def __init__(self) -> None:
        self.reads: list[NodeId] = []

    def __call__(self, node: NodeId) -> bytes:
        self.reads.append(node)
        return hashlib.sha256(repr(node).encode()).digest()


BIG = 2**20 - 3
BOUND = 4 * math.log2(BIG)


@pytest.mark.parametrize("size", [BIG, BIG + 2, 2**20, 2**40 + 12345])
def test_append_reads_only_its_dependencies(size: int) -> None:
    store = _CountingStore()
    compute_append(size, leaf_hash(b"x"), store)
    assert store.reads == append_dependencies(size)
    assert len(store.reads) <= math.log2(size + 1) + 1


@pytest.mark.parametrize(
    "ranges",
    [inclusion_proof_ranges(i, BIG) for i in (0, 1, 2**19, BIG // 3, BIG - 2, BIG - 1)]
    + [consistency_proof_ranges(m, BIG) for m in (1, 2, 2**19, 2**19 + 1, 12345, BIG - 1, BIG)]
    + [[(0, BIG)]],
)
def test_proofs_read_o_log_n_nodes_in_one_batch(ranges: list[tuple[int, int]]) -> None:
    store = _CountingStore()
    proof_from_nodes(ranges, store)
    needed = required_nodes(ranges)
    assert len(store.reads) <= BOUND
    assert len(needed) <= BOUND
    assert set(store.reads) <= set(needed)  # one query for required_nodes is enough
    assert all((idx + 1) << lvl <= BIG for lvl, idx in needed)  # all complete at this size
