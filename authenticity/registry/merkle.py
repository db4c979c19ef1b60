"""RFC 6962 / RFC 9162 Merkle tree maths over SHA-256: pure functions, no I/O.

The log stores only *perfect* nodes. A :data:`NodeId` ``(level, index)`` names the
complete subtree of ``2**level`` leaves covering ``[index * 2**level, (index + 1) * 2**level)``;
level 0 holds the leaf hashes. A perfect node never changes once it is complete, so a
store that writes each node as it completes can answer the root, inclusion proof or
consistency proof for any past size with O(log n) node reads, never rebuilding the tree.
Functions that read nodes take ``get`` (a stored node's hash); :func:`append_dependencies`
and :func:`required_nodes` name those nodes first, so a database layer fetches them in
one query.

Verification follows RFC 9162 sections 2.1.3.2 and 2.1.4.2 and raises
:class:`~authenticity.errors.VerificationError` (``log.proof.inclusion.invalid`` or
``log.proof.consistency.invalid``), never returning a bool. Subtree proofs over aligned
ranges ``[start, end)`` (draft-ietf-plants-merkle-tree-certs; the ``subtree*`` vectors
of transparency-dev/merkle) are supported too: RFC 6962's proofs are their special
cases. Asking a generator for a proof that cannot exist raises
:class:`~authenticity.errors.UsageError` (``log.range.invalid``).

>>> tree = MemoryTree([b"a", b"b", b"c"])
>>> verify_inclusion(leaf_hash(b"b"), 1, 3, tree.inclusion_proof(1), tree.root())
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from authenticity.errors import UsageError, VerificationError

__all__ = [
    "CONSISTENCY_INVALID",
    "HASH_SIZE",
    "INCLUSION_INVALID",
    "RANGE_INVALID",
    "MemoryTree",
    "NodeGetter",
    "NodeId",
    "append_dependencies",
    "compute_append",
    "consistency_proof_ranges",
    "empty_root",
    "inclusion_proof_ranges",
    "leaf_hash",
    "node_hash",
    "nodes_to_store_on_append",
    "perfect_nodes_for_range",
    "proof_from_nodes",
    "required_nodes",
    "root_from_nodes",
    "subtree_consistency_proof_ranges",
    "subtree_hash",
    "subtree_inclusion_proof_ranges",
    "verify_consistency",
    "verify_inclusion",
    "verify_subtree_consistency",
    "verify_subtree_inclusion",
]

HASH_SIZE = 32
INCLUSION_INVALID = "log.proof.inclusion.invalid"
CONSISTENCY_INVALID = "log.proof.consistency.invalid"
RANGE_INVALID = "log.range.invalid"

NodeId = tuple[int, int]
"""``(level, index)``: the perfect subtree of ``2**level`` leaves from leaf ``index * 2**level``."""
NodeGetter = Callable[[NodeId], bytes]
"""Returns the stored hash of a complete perfect node."""

# A proof step seen from the root down: the sibling's leaf range, whether it sits left
# of the path, and whether it is also the left part of the subtree being proved.
_Step = tuple[tuple[int, int], bool, bool]


def leaf_hash(data: bytes) -> bytes:
    """Hash a log entry as a leaf: ``SHA-256(0x00 || data)``.

    >>> leaf_hash(b"").hex()[:16]
    '6e340b9cffb37a98'
    """
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Hash two children into their parent: ``SHA-256(0x01 || left || right)``.

    >>> node_hash(leaf_hash(b"a"), leaf_hash(b"b")) == MemoryTree([b"a", b"b"]).root()
    True
    """
    return hashlib.sha256(b"\x01" + left + right).digest()


def empty_root() -> bytes:
    """Root of the empty tree: ``SHA-256("")``.

    >>> empty_root().hex()[:16]
    'e3b0c44298fc1c14'
    """
    return hashlib.sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two below ``n >= 2``: where RFC 6962 splits ``n`` leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def _is_subtree(start: int, end: int) -> bool:
    """Whether ``[start, end)`` (non-empty) is a node of every tree containing it.

    That holds when ``start`` is a multiple of the smallest power of two >= ``end - start``.
    """
    return 0 <= start < end and start % (1 << (end - start - 1).bit_length()) == 0


def _refuse(message: str) -> UsageError:
    return UsageError(RANGE_INVALID, message)


def nodes_to_store_on_append(size: int) -> list[NodeId]:
    """The perfect nodes completed by appending leaf number ``size`` (tree grows to ``size + 1``).

    >>> nodes_to_store_on_append(3)
    [(0, 3), (1, 1), (2, 0)]
    """
    if size < 0:
        raise _refuse(f"tree size must be >= 0, got {size}")
    nodes = [(0, size)]
    level = 1
    while (size + 1) % (1 << level) == 0:
        nodes.append((level, size >> level))
        level += 1
    return nodes


def append_dependencies(size: int) -> list[NodeId]:
    """The stored nodes :func:`compute_append` reads when appending leaf number ``size``.

    >>> append_dependencies(3)
    [(0, 2), (1, 0)]
    """
    return [(level - 1, index << 1) for level, index in nodes_to_store_on_append(size)[1:]]


def compute_append(size: int, leaf: bytes, get: NodeGetter) -> list[tuple[NodeId, bytes]]:
    """The ``(node, hash)`` pairs to store when the leaf hash ``leaf`` becomes leaf ``size``.

    ``leaf`` is :func:`leaf_hash` of the entry (the caller keeps it with the leaf row);
    ``get`` is only asked for :func:`append_dependencies(size) <append_dependencies>`.

    >>> stored = dict(compute_append(0, leaf_hash(b"a"), {}.__getitem__))
    >>> new = compute_append(1, leaf_hash(b"b"), stored.__getitem__)
    >>> new[-1] == ((1, 0), MemoryTree([b"a", b"b"]).root())
    True
    """
    if len(leaf) != HASH_SIZE:
        raise _refuse(f"a leaf hash is {HASH_SIZE} bytes, got {len(leaf)}")
    nodes = nodes_to_store_on_append(size)
    current = leaf
    out = [(nodes[0], current)]
    for level, index in nodes[1:]:
        # The new node's right child is the one just computed; its left child completed earlier.
        current = node_hash(get((level - 1, index << 1)), current)
        out.append(((level, index), current))
    return out


def perfect_nodes_for_range(start: int, end: int) -> list[NodeId]:
    """Split leaves ``[start, end)`` into maximal aligned perfect nodes, left to right.

    >>> perfect_nodes_for_range(0, 7)
    [(2, 0), (1, 2), (0, 6)]
    """
    if not 0 <= start <= end:
        raise _refuse(f"invalid leaf range [{start}, {end})")
    nodes = []
    while start < end:
        level = (end - start).bit_length() - 1
        if start:
            level = min(level, (start & -start).bit_length() - 1)
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def subtree_hash(start: int, end: int, get: NodeGetter) -> bytes:
    """MTH(D[start:end]) of a subtree from its stored perfect nodes (``empty_root()`` if empty).

    Folds right to left, as RFC 6962 hashes a range that is not perfect:
    ``node_hash(perfect left part, rest)``.

    >>> tree = MemoryTree([b"a", b"b", b"c", b"d", b"e"])
    >>> subtree_hash(0, 5, tree.get) == tree.root()
    True
    """
    if start == end >= 0:
        return empty_root()
    if not _is_subtree(start, end):
        raise _refuse(f"[{start}, {end}) is not a subtree: start must be aligned to its size")
    nodes = perfect_nodes_for_range(start, end)
    result = get(nodes[-1])
    for node in reversed(nodes[:-1]):
        result = node_hash(get(node), result)
    return result


def root_from_nodes(size: int, get: NodeGetter) -> bytes:
    """Root of the tree's first ``size`` leaves; ``empty_root()`` for 0.

    >>> tree = MemoryTree([b"a", b"b", b"c"])
    >>> root_from_nodes(2, tree.get) == MemoryTree([b"a", b"b"]).root()
    True
    """
    if size < 0:
        raise _refuse(f"tree size must be >= 0, got {size}")
    return subtree_hash(0, size, get)


def _plan(start: int, end: int, size: int) -> tuple[list[_Step], tuple[int, int] | None]:
    """Walk from the root of ``size`` leaves down to the valid subtree ``[start, end)``.

    Returns the steps top-down and, when the proof has to carry it (RFC 6962's
    ``SUBPROOF(m, D[m], false)``), the range of the node the walk ended on.
    """
    steps: list[_Step] = []
    lo, hi, known = 0, size, True
    while (lo, hi) != (start, end):
        mid = lo + _split(hi - lo)
        if end <= mid:
            steps.append(((mid, hi), False, False))
            hi = mid
        elif start >= mid:
            steps.append(((lo, mid), True, False))
            lo = mid
        else:
            # Only a prefix [lo, end) can straddle mid; its left part is the perfect
            # [lo, mid), so what is left to prove is [mid, end), whose hash nobody knows.
            steps.append(((lo, mid), True, True))
            lo = start = mid
            known = False
    return steps, None if known else (start, end)


def subtree_consistency_proof_ranges(start: int, end: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose hashes prove subtree ``[start, end)`` is part of the tree of ``size``.

    Bottom-up order, as RFC 6962 section 2.1.2 (the case ``start == 0``) defines it.

    >>> subtree_consistency_proof_ranges(4, 6, 7)
    [(6, 7), (0, 4)]
    """
    if not 0 <= start <= end <= size:
        raise _refuse(f"[{start}, {end}) is not within a tree of size {size}")
    if start == end:
        return []
    if not _is_subtree(start, end):
        raise _refuse(f"[{start}, {end}) is not a subtree: start must be aligned to its size")
    steps, seed = _plan(start, end, size)
    ranges = [sibling for sibling, _, _ in reversed(steps)]
    return ranges if seed is None else [seed, *ranges]


def consistency_proof_ranges(size1: int, size2: int) -> list[tuple[int, int]]:
    """Leaf ranges of RFC 6962 PROOF(size1, D[size2]), bottom-up (empty when the sizes match).

    >>> consistency_proof_ranges(3, 7)  # RFC 6962 section 2.1.3: [c, d, g, l]
    [(2, 3), (3, 4), (0, 2), (4, 7)]
    """
    if not 0 < size1 <= size2:
        raise _refuse(f"no consistency proof from size {size1} to size {size2}")
    return subtree_consistency_proof_ranges(0, size1, size2)


def inclusion_proof_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges of RFC 6962 PATH(index, D[size]), bottom-up.

    >>> inclusion_proof_ranges(3, 7)  # RFC 6962 section 2.1.3: [c, g, l]
    [(2, 3), (0, 2), (4, 7)]
    """
    if not 0 <= index < size:
        raise _refuse(f"leaf {index} is not in a tree of size {size}")
    return subtree_consistency_proof_ranges(index, index + 1, size)


def subtree_inclusion_proof_ranges(index: int, start: int, end: int) -> list[tuple[int, int]]:
    """Leaf ranges proving leaf ``index`` is in the subtree ``[start, end)``, bottom-up.

    >>> subtree_inclusion_proof_ranges(9, 8, 12)
    [(8, 9), (10, 12)]
    """
    if not _is_subtree(start, end):
        raise _refuse(f"[{start}, {end}) is not a non-empty aligned subtree")
    if not start <= index < end:
        raise _refuse(f"leaf {index} is not in the subtree [{start}, {end})")
    return [(a + start, b + start) for a, b in inclusion_proof_ranges(index - start, end - start)]


def required_nodes(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    """Every perfect node that :func:`proof_from_nodes` will read, without duplicates.

    >>> required_nodes(inclusion_proof_ranges(3, 7))
    [(0, 2), (1, 0), (1, 2), (0, 6)]
    """
    seen: dict[NodeId, None] = {}
    for start, end in ranges:
        seen.update(dict.fromkeys(perfect_nodes_for_range(start, end)))
    return list(seen)


def proof_from_nodes(ranges: Iterable[tuple[int, int]], get: NodeGetter) -> list[bytes]:
    """The proof hashes for ``ranges``, from stored perfect nodes.

    >>> tree = MemoryTree([b"a", b"b", b"c"])
    >>> proof_from_nodes(inclusion_proof_ranges(2, 3), tree.get) == tree.inclusion_proof(2)
    True
    """
    return [subtree_hash(start, end, get) for start, end in ranges]


def _check_hashes(code: str, **named: bytes) -> None:
    for name, value in named.items():
        if len(value) != HASH_SIZE:
            raise VerificationError(code, f"{name} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof(code: str, proof: Sequence[bytes], want: int) -> None:
    if len(proof) != want:
        raise VerificationError(code, f"proof has {len(proof)} hashes, expected {want}")
    for i, element in enumerate(proof):
        _check_hashes(code, **{f"proof[{i}]": element})


def verify_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` of the ``size``-leaf tree ``root`` (RFC 9162 2.1.3.2).

    >>> tree = MemoryTree([b"a", b"b", b"c"])
    >>> verify_inclusion(tree.get((0, 0)), 0, 3, tree.inclusion_proof(0), tree.root())
    """
    code = INCLUSION_INVALID
    if not 0 <= index < size:
        raise VerificationError(code, f"leaf index {index} is not in a tree of size {size}")
    _check_hashes(code, leaf_hash=leaf_hash, root=root)
    _check_proof(code, proof, len(inclusion_proof_ranges(index, size)))
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        if sn == 0:
            raise VerificationError(code, "proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(code, "proof is shorter than the path to the root")
    if r != root:
        raise VerificationError(code, f"proof for leaf {index} of {size} does not lead to the root")


def verify_consistency(size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes) -> None:
    """Check that tree ``size1``/``root1`` is a prefix of ``size2``/``root2`` (RFC 9162 2.1.4.2).

    ``size1 == 0`` is refused: every tree extends the empty one, so such a "proof"
    proves nothing (the upstream vectors expect an error). With equal sizes the proof
    must be empty and the roots equal; nothing is hashed, so their length is not checked.

    >>> old, new = MemoryTree([b"a"]), MemoryTree([b"a", b"b", b"c"])
    >>> verify_consistency(1, 3, new.consistency_proof(1), old.root(), new.root())
    """
    code = CONSISTENCY_INVALID
    if not 0 <= size1 <= size2:
        raise VerificationError(code, f"sizes {size1} -> {size2} do not grow")
    if size1 == 0:
        raise VerificationError(code, "a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if proof:
            raise VerificationError(code, f"equal sizes need no proof, got {len(proof)} hashes")
        if root1 != root2:
            raise VerificationError(code, f"roots differ for the same size {size1}")
        return
    _check_hashes(code, root1=root1, root2=root2)
    _check_proof(code, proof, len(consistency_proof_ranges(size1, size2)))
    # When size1 is a power of two its root is a node of the new tree and the proof omits it.
    path = [root1, *proof] if size1 & (size1 - 1) == 0 else list(proof)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise VerificationError(code, "proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(code, "proof is shorter than the path to the root")
    if fr != root1:
        raise VerificationError(code, f"proof does not rebuild root1 of the tree of size {size1}")
    if sr != root2:
        raise VerificationError(code, f"proof does not rebuild root2 of the tree of size {size2}")


def verify_subtree_inclusion(
    leaf_hash: bytes, index: int, start: int, end: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that ``leaf_hash`` is leaf ``index`` (absolute) of subtree ``[start, end)`` hashing to ``root``.

    A subtree's hash is the MTH of its leaves, so this is an inclusion proof of
    ``index - start`` in a tree of ``end - start`` leaves.

    >>> tree = MemoryTree([b"a", b"b", b"c", b"d"])
    >>> proof = tree.subtree_inclusion_proof(3, 2, 4)
    >>> verify_subtree_inclusion(leaf_hash(b"d"), 3, 2, 4, proof, tree.get((1, 1)))
    """
    code = INCLUSION_INVALID
    if not _is_subtree(start, end):
        raise VerificationError(code, f"[{start}, {end}) is not a non-empty aligned subtree")
    if not start <= index < end:
        raise VerificationError(code, f"leaf {index} is not in the subtree [{start}, {end})")
    verify_inclusion(leaf_hash, index - start, end - start, proof, root)


def verify_subtree_consistency(
    start: int, end: int, size: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that subtree ``[start, end)`` hashing to ``root1`` is in tree ``size``/``root2``.

    An empty subtree (``start == end <= size``) is part of every tree: the proof must be
    empty and ``root1`` the empty root; ``root2`` is not looked at.

    >>> tree = MemoryTree([b"a", b"b", b"c", b"d", b"e"])
    >>> proof = tree.subtree_consistency_proof(2, 4)
    >>> verify_subtree_consistency(2, 4, 5, proof, tree.get((1, 1)), tree.root())
    """
    code = CONSISTENCY_INVALID
    if not 0 <= start <= end <= size:
        raise VerificationError(code, f"[{start}, {end}) is not within a tree of size {size}")
    if start == end:
        if proof:
            raise VerificationError(code, f"an empty subtree needs no proof, got {len(proof)} hashes")
        if root1 != empty_root():
            raise VerificationError(code, "an empty subtree's hash must be the empty root")
        return
    if not _is_subtree(start, end):
        raise VerificationError(code, f"[{start}, {end}) is not a subtree: start is not aligned to its size")
    steps, seed = _plan(start, end, size)
    _check_proof(code, proof, len(steps) + (seed is not None))
    if proof:  # with no proof nothing is hashed: the check is root1 == root2
        _check_hashes(code, root1=root1, root2=root2)
    elements = iter(proof)
    sub = node = next(elements) if seed is not None else root1
    for (_, sibling_left, straddles), p in zip(reversed(steps), elements, strict=True):
        if sibling_left:
            node = node_hash(p, node)
            if straddles:
                sub = node_hash(p, sub)
        else:
            node = node_hash(node, p)
    if sub != root1:
        raise VerificationError(code, f"proof does not rebuild the hash of [{start}, {end})")
    if node != root2:
        raise VerificationError(code, f"proof does not rebuild the root of the tree of size {size}")


class MemoryTree:
    """An append-only log held in a dict of perfect nodes: the DB layer's algorithm, in memory.

    >>> tree = MemoryTree()
    >>> tree.append(b"x")
    0
    >>> tree.size, tree.root() == leaf_hash(b"x")
    (1, True)
    """

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._nodes: dict[NodeId, bytes] = {}
        self._size = 0
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return self._size

    def get(self, node: NodeId) -> bytes:
        """A complete node's hash (``KeyError`` if it is not complete yet).

        >>> MemoryTree([b"x"]).get((0, 0)) == leaf_hash(b"x")
        True
        """
        return self._nodes[node]

    @property
    def nodes(self) -> Mapping[NodeId, bytes]:
        """Every stored perfect node, leaves (level 0) included; read-only.

        >>> sorted(MemoryTree([b"a", b"b"]).nodes)
        [(0, 0), (0, 1), (1, 0)]
        """
        return MappingProxyType(self._nodes)

    def append(self, data: bytes) -> int:
        """Append an entry; returns its leaf index.

        >>> MemoryTree([b"a"]).append(b"b")
        1
        """
        return self.append_leaf_hash(leaf_hash(data))

    def append_leaf_hash(self, leaf: bytes) -> int:
        """Append a leaf by its hash (:func:`leaf_hash` of the entry); returns its index.

        >>> MemoryTree().append_leaf_hash(leaf_hash(b"a"))
        0
        """
        self._nodes.update(compute_append(self._size, leaf, self.get))
        self._size += 1
        return self._size - 1

    def root(self, size: int | None = None) -> bytes:
        """Root at ``size`` leaves (default: now).

        >>> MemoryTree([b"a", b"b"]).root(1) == leaf_hash(b"a")
        True
        """
        return root_from_nodes(self._at(size), self.get)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """PATH(index, D[size]) (default size: now).

        >>> MemoryTree([b"a", b"b"]).inclusion_proof(0) == [leaf_hash(b"b")]
        True
        """
        return proof_from_nodes(inclusion_proof_ranges(index, self._at(size)), self.get)

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """PROOF(size1, D[size2]) (default size2: now).

        >>> MemoryTree([b"a", b"b"]).consistency_proof(1) == [leaf_hash(b"b")]
        True
        """
        return proof_from_nodes(consistency_proof_ranges(size1, self._at(size2)), self.get)

    def subtree_inclusion_proof(self, index: int, start: int, end: int) -> list[bytes]:
        """Proof that leaf ``index`` is in subtree ``[start, end)``.

        >>> MemoryTree([b"a", b"b", b"c"]).subtree_inclusion_proof(2, 2, 3)
        []
        """
        self._at(end)
        return proof_from_nodes(subtree_inclusion_proof_ranges(index, start, end), self.get)

    def subtree_consistency_proof(self, start: int, end: int, size: int | None = None) -> list[bytes]:
        """Proof that subtree ``[start, end)`` is part of the tree at ``size`` (default: now).

        >>> MemoryTree([b"a", b"b"]).subtree_consistency_proof(1, 2) == [leaf_hash(b"a")]
        True
        """
        ranges = subtree_consistency_proof_ranges(start, end, self._at(size))
        return proof_from_nodes(ranges, self.get)

    def _at(self, size: int | None) -> int:
        if size is None:
            return self._size
        if not 0 <= size <= self._size:
            raise _refuse(f"the tree has {self._size} leaves, not {size}")
        return size
