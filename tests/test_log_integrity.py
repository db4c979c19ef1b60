"""``log check`` against a hostile DBA, on real SQLite files and real PostgreSQL databases.

Seven files are signed, then the append-only triggers are dropped (what a DBA with
owner rights can do) and one kind of tampering is applied per test. ``check_log`` must
report exactly the expected problem codes and ``authenticity log check`` must exit 1
naming them; an untouched log passes. An operator who also holds the log key can
rewrite history consistently (``log check`` passes): a sidecar written before the
rewrite still exposes it through the consistency proof to its own signed tree head.
Finally ``log prove`` output is checked with the RFC 6962 verifier.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cv2
import numpy as np
import pytest
from sqlalchemy import Engine, Executable, delete, insert, select, text, update
from typer.testing import CliRunner

from authenticity.cli.app import app
from authenticity.config import Settings
from authenticity.provenance.capture import Signer, SignResult
from authenticity.provenance.keys import Algorithm, SigningKey, generate_signing_key, load_private_key
from authenticity.provenance.keystore import create_signer_key, trusted_log_key_ids
from authenticity.provenance.manifest import Manifest, format_timestamp
from authenticity.registry import db, log, merkle, repository
from authenticity.registry.log_check import LogCheckReport, check_log
from authenticity.registry.models import LogKey, LogLeaf, LogNode, PerceptualHash, Record, TreeHead
from authenticity.registry.store import open_registry
from authenticity.verify import Verdict, VerdictState, Verifier

N = 7
APPEND_ONLY = ("record", "log_leaf", "log_node", "tree_head", "log_key", "perceptual_hash")


# --------------------------------------------------------------------------- fixtures and helpers


@dataclass
class SignedLog:
    settings: Settings
    engine: Engine
    signer: Signer
    results: list[SignResult]

    def path(self, leaf: int) -> Path:
        return self.results[leaf].path

    def record_id(self, leaf: int) -> int:
        return self.results[leaf].record_id


def _write_png(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return path


@pytest.fixture
def signed_log(settings: Settings, tmp_path: Path) -> SignedLog:
    """N signed files (leaves 0..N-1, tree heads 1..N) with the append-only triggers still in place."""
    assert settings.key_passphrase is not None
    passphrase = settings.key_passphrase.get_secret_value().encode()
    key = create_signer_key(settings, "cam-1", Algorithm.ED25519, passphrase)
    engine = open_registry(settings)
    with db.session_scope(engine) as session:
        repository.add_signer(session, "cam-1", key.public_key, datetime.now(UTC))
    signer = Signer(settings, "cam-1", passphrase)
    results = [
        signer.sign(_write_png(tmp_path / "media" / f"{i}.png", 100 + i), claims={"author": "Ana"}) for i in range(N)
    ]
    assert [r.leaf_index for r in results] == list(range(N))
    return SignedLog(settings, engine, signer, results)


@pytest.fixture
def hostile(signed_log: SignedLog) -> SignedLog:
    """The same log after a DBA dropped the append-only triggers."""
    _drop_append_only_triggers(signed_log.engine)
    return signed_log


def _drop_append_only_triggers(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for table in APPEND_ONLY:
                for action in ("update", "delete"):
                    conn.execute(text(f"DROP TRIGGER {table}_no_{action}"))
        else:
            for table in APPEND_ONLY:
                conn.execute(text(f"DROP TRIGGER {table}_append_only ON {table}"))


def _dba(engine: Engine, *statements: Executable) -> None:
    """Run statements as the DBA, outside the application's error wrapping."""
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)


def _check(engine: Engine) -> LogCheckReport:
    with db.session_scope(engine) as session:
        return check_log(session, trusted_log_key_ids(Settings()))


def _codes(report: LogCheckReport) -> set[str]:
    return {p.code for p in report.problems}


def _cli_check_fails_with(codes: set[str]) -> None:
    result = CliRunner().invoke(app, ["log", "check"])
    assert result.exit_code == 1, (result.stdout, result.stderr)
    for code in codes:
        assert f"{code}:" in result.stderr, (code, result.stderr)
    assert "log FAILED" in result.stdout


def _record(engine: Engine, record_id: int) -> Record:
    with db.session_scope(engine) as session:
        return repository.get_record(session, record_id)


def _verify(signed: SignedLog, leaf: int) -> Verdict:
    return Verifier(signed.settings, detector=False).verify(signed.path(leaf))


def _flip(data: bytes, at: int = 0) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x01]) + data[at + 1 :]


# --------------------------------------------------------------------------- untouched log


def test_untouched_log_passes(signed_log: SignedLog) -> None:
    report = _check(signed_log.engine)
    assert report.ok, report.problems
    assert (report.tree_size, report.leaves_checked, report.heads_checked) == (N, N, N)
    result = CliRunner().invoke(app, ["log", "check"])
    assert result.exit_code == 0, result.stderr
    assert f"log OK: {N} leaves, {N} tree heads checked, 0 problems" in result.stdout
    for leaf in range(N):
        verdict = _verify(signed_log, leaf)
        assert verdict.state is VerdictState.AUTHENTIC, verdict.codes
        assert "log.consistency.verified" in verdict.codes


def test_dropping_the_triggers_alone_is_not_tampering(hostile: SignedLog) -> None:
    assert _check(hostile.engine).ok


# --------------------------------------------------------------------------- edited records


def test_edited_manifest_is_a_leaf_mismatch_and_a_bad_signature(hostile: SignedLog) -> None:
    rid = hostile.record_id(3)
    original = Manifest.from_json(_record(hostile.engine, rid).manifest)
    forged = dataclasses.replace(original, claims={"author": "Bob"}).canonical_bytes()
    _dba(hostile.engine, update(Record).where(Record.id == rid).values(manifest=forged))

    expected = {"log.leaf.mismatch", "provenance.signature.invalid"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)
    verdict = _verify(hostile, 3)
    assert verdict.state is VerdictState.TAMPERED
    assert {"provenance.signature.invalid", "log.leaf.mismatch"} <= set(verdict.codes)
    assert "provenance.sidecar.record_mismatch" in verdict.codes  # the sidecar still has the true manifest
    assert _verify(hostile, 2).state is VerdictState.AUTHENTIC


def test_edited_signature_is_a_leaf_mismatch_and_a_bad_signature(hostile: SignedLog) -> None:
    rid = hostile.record_id(0)
    signature = _record(hostile.engine, rid).signature
    _dba(hostile.engine, update(Record).where(Record.id == rid).values(signature=_flip(signature, 5)))

    expected = {"log.leaf.mismatch", "provenance.signature.invalid"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)
    verdict = _verify(hostile, 0)
    assert verdict.state is VerdictState.TAMPERED
    assert {"provenance.signature.invalid", "log.leaf.mismatch"} <= set(verdict.codes)


def test_edited_logged_at_is_a_leaf_mismatch(hostile: SignedLog) -> None:
    """Backdating a record (say, to before a key compromise) changes its leaf."""
    rid = hostile.record_id(6)
    logged_at = _record(hostile.engine, rid).logged_at
    _dba(hostile.engine, update(Record).where(Record.id == rid).values(logged_at=logged_at - timedelta(days=30)))

    expected = {"log.leaf.mismatch"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)
    verdict = _verify(hostile, 6)
    assert verdict.state is VerdictState.TAMPERED
    assert "log.leaf.mismatch" in verdict.codes
    assert "provenance.signature.valid" in verdict.codes  # the signer's signature does not cover logged_at


def test_record_inserted_without_a_leaf_is_unlogged(signed_log: SignedLog, tmp_path: Path) -> None:
    """INSERT is allowed even with the triggers in place: a record smuggled in beside the log."""
    donor = _record(signed_log.engine, signed_log.record_id(0))
    _dba(
        signed_log.engine,
        insert(Record).values(
            content_digest="sha256:" + "0" * 64,
            signer_id=donor.signer_id,
            media_type=donor.media_type,
            size_bytes=donor.size_bytes,
            manifest=donor.manifest,
            signature=donor.signature,
            logged_at=donor.logged_at,
        ),
    )
    expected = {"log.record.unlogged"}
    assert _codes(_check(signed_log.engine)) == expected
    _cli_check_fails_with(expected)


def _perceptual_edit(engine: Engine, record_id: int, how: str) -> None:
    if how == "edited":
        _dba(engine, update(PerceptualHash).where(PerceptualHash.record_id == record_id).values(hash=bytes(32)))
    elif how == "deleted":
        _dba(engine, delete(PerceptualHash).where(PerceptualHash.record_id == record_id))
    else:  # a row added to a record whose signer never signed that hash
        _dba(engine, insert(PerceptualHash).values(record_id=record_id, frame_index=7, algorithm="pdq",
                                                   hash=bytes(range(32)), quality=100))  # fmt: skip


@pytest.mark.parametrize("how", ["edited", "deleted", "inserted"])
def test_perceptual_rows_must_equal_the_signed_hashes(hostile: SignedLog, how: str) -> None:
    """The near-match index is loaded from these rows; log check holds them to the manifests."""
    rid = hostile.record_id(4)
    assert Manifest.from_json(_record(hostile.engine, rid).manifest).perceptual  # signed at capture
    _perceptual_edit(hostile.engine, rid, how)
    expected = {"registry.perceptual.mismatch"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)
    assert _verify(hostile, 4).state is VerdictState.AUTHENTIC  # exact-hash verification does not use them


@pytest.mark.parametrize(
    "values",
    [{"content_digest": "sha256:" + "1" * 64}, {"size_bytes": 1}, {"media_type": "image/gif"}],
    ids=["content_digest", "size_bytes", "media_type"],
)
def test_edited_denormalised_record_columns_are_detected(hostile: SignedLog, values: dict[str, object]) -> None:
    """These columns are copies of manifest fields the leaf does not cover on its own."""
    _dba(hostile.engine, update(Record).where(Record.id == hostile.record_id(2)).values(**values))
    report = _check(hostile.engine)
    assert not report.ok
    assert CliRunner().invoke(app, ["log", "check"]).exit_code == 1


# --------------------------------------------------------------------------- deleted / reordered leaves


def test_deleted_last_leaf(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(LogLeaf).where(LogLeaf.leaf_index == N - 1))

    report = _check(hostile.engine)
    codes = _codes(report)
    # Leaves 0..N-2 remain, the newest head still says N, record N is orphaned and the
    # stored node (0, N-1) no longer matches any leaf.
    assert {"log.size.mismatch", "log.record.unlogged", "log.node.mismatch"} <= codes
    assert codes <= {"log.size.mismatch", "log.record.unlogged", "log.node.mismatch", "log.node.missing"}
    _cli_check_fails_with({"log.size.mismatch", "log.record.unlogged"})
    verdict = _verify(hostile, N - 1)
    assert verdict.state is VerdictState.TAMPERED
    assert "log.leaf.mismatch" in verdict.codes


def test_deleted_middle_leaf_is_a_gap(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(LogLeaf).where(LogLeaf.leaf_index == 3))

    report = _check(hostile.engine)
    codes = _codes(report)
    assert {"log.leaf.gap", "log.record.unlogged", "log.size.mismatch", "log.node.mismatch"} <= codes
    assert codes <= {"log.leaf.gap", "log.record.unlogged", "log.size.mismatch", "log.node.mismatch",
                     "log.node.missing"}  # fmt: skip
    assert report.leaves_checked == 3
    gap = next(p for p in report.problems if p.code == "log.leaf.gap")
    assert "leaf index 3 is missing" in gap.message
    _cli_check_fails_with({"log.leaf.gap", "log.record.unlogged", "log.size.mismatch"})


def test_extra_stored_nodes_are_not_reported_as_missing(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(LogLeaf).where(LogLeaf.leaf_index == N - 1))
    report = _check(hostile.engine)
    assert "log.node.mismatch" in _codes(report)
    for problem in report.problems:
        assert not (problem.code == "log.node.missing" and problem.message.startswith("-")), problem


def test_swapped_leaves_break_nodes_and_heads(hostile: SignedLog) -> None:
    """Reordering two leaves: each leaf still matches its record, but the tree does not match the heads."""
    _dba(
        hostile.engine,
        update(LogLeaf).where(LogLeaf.leaf_index == 2).values(leaf_index=-1),
        update(LogLeaf).where(LogLeaf.leaf_index == 5).values(leaf_index=2),
        update(LogLeaf).where(LogLeaf.leaf_index == -1).values(leaf_index=5),
    )
    with db.session_scope(hostile.engine) as session:
        moved = session.scalar(select(LogLeaf.record_id).where(LogLeaf.leaf_index == 2))
    assert moved == hostile.record_id(5)

    report = _check(hostile.engine)
    expected = {"log.node.mismatch", "log.tree_head.inconsistent"}
    assert _codes(report) == expected
    inconsistent = sorted(p.message for p in report.problems if p.code == "log.tree_head.inconsistent")
    assert inconsistent == sorted(f"tree head {s}: root does not match the leaves" for s in range(3, N + 1))
    _cli_check_fails_with(expected)


# --------------------------------------------------------------------------- nodes


def test_edited_node_is_a_node_mismatch(hostile: SignedLog) -> None:
    _dba(hostile.engine, update(LogNode).where(LogNode.level == 1, LogNode.node_index == 1)
         .values(hash=b"\x00" * 32))  # fmt: skip

    expected = {"log.node.mismatch"}
    report = _check(hostile.engine)
    assert _codes(report) == expected
    assert [p.message for p in report.problems] == ["stored node (1, 1) does not match the leaves"]
    _cli_check_fails_with(expected)
    # Proofs are served from the stored nodes, so the leaves under (1, 1)'s sibling no longer prove.
    verdict = _verify(hostile, 0)
    assert verdict.state is VerdictState.TAMPERED
    assert "log.inclusion.invalid" in verdict.codes


def test_deleted_node_is_missing(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(LogNode).where(LogNode.level == 0, LogNode.node_index == 4))

    expected = {"log.node.missing"}
    report = _check(hostile.engine)
    assert _codes(report) == expected
    assert report.problems[0].message == "1 interior nodes missing"
    _cli_check_fails_with(expected)


def test_verify_with_a_deleted_node_is_tampered_not_an_error(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(LogNode).where(LogNode.level == 1, LogNode.node_index == 2))
    verdict = _verify(hostile, 0)  # leaf 0's proof in a tree of 7 needs node (1, 2)
    assert verdict.state is VerdictState.TAMPERED


# --------------------------------------------------------------------------- tree heads


def test_edited_tree_head_root(hostile: SignedLog) -> None:
    _dba(hostile.engine, update(TreeHead).where(TreeHead.tree_size == 4).values(root_hash=b"\x11" * 32))

    expected = {"log.tree_head.signature.invalid", "log.tree_head.inconsistent"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)


def test_edited_tree_head_signature(hostile: SignedLog) -> None:
    with db.session_scope(hostile.engine) as session:
        signature = session.scalar(select(TreeHead.signature).where(TreeHead.tree_size == N))
    assert signature is not None
    _dba(hostile.engine, update(TreeHead).where(TreeHead.tree_size == N).values(signature=_flip(signature)))

    expected = {"log.tree_head.signature.invalid"}
    assert _codes(_check(hostile.engine)) == expected
    _cli_check_fails_with(expected)
    verdict = _verify(hostile, 0)  # verified under the newest head, whose signature is now bad
    assert verdict.state is VerdictState.TAMPERED
    assert "log.tree_head.signature.invalid" in verdict.codes


def test_deleted_middle_tree_head_is_a_gap(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(TreeHead).where(TreeHead.tree_size == 4))

    expected = {"log.tree_head.gap"}
    report = _check(hostile.engine)
    assert _codes(report) == expected
    assert report.problems[0].message == "tree head for size 4 is missing"
    _cli_check_fails_with(expected)


def test_deleted_newest_tree_head_is_a_size_mismatch(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(TreeHead).where(TreeHead.tree_size == N))

    expected = {"log.size.mismatch"}
    report = _check(hostile.engine)
    assert _codes(report) == expected
    assert report.tree_size == N - 1
    _cli_check_fails_with(expected)


def test_verify_when_newest_head_was_deleted_is_tampered_not_an_error(hostile: SignedLog) -> None:
    _dba(hostile.engine, delete(TreeHead).where(TreeHead.tree_size == N))
    verdict = _verify(hostile, N - 1)
    assert verdict.state is VerdictState.TAMPERED


# --------------------------------------------------------------------------- an operator with the log key


def _rewrite_history(signed: SignedLog, mutate: Callable[[Engine], None], key: SigningKey | None = None) -> None:
    """Edit records, then recompute every leaf, node and tree head and re-sign each head.

    With the default *key* (the log key from ``settings.log_key_path``) this is what an
    operator who holds that key can do: the result is internally consistent, so ``log
    check`` cannot tell. Heads keep the key id they had (the log_key table is not touched).
    """
    engine = signed.engine
    key = key or load_private_key(signed.settings.log_key_path, None)
    _drop_append_only_triggers(engine)
    mutate(engine)
    with engine.begin() as conn:
        rows = conn.execute(
            select(LogLeaf.leaf_index, Record.manifest, Record.signature, Record.logged_at)
            .join(Record, Record.id == LogLeaf.record_id)
            .order_by(LogLeaf.leaf_index)
        ).all()
        tree = merkle.MemoryTree()
        for index, manifest, signature, logged_at in rows:
            leaf = merkle.leaf_hash(log.entry_bytes(manifest, signature, logged_at))
            assert tree.append_leaf_hash(leaf) == index
            conn.execute(update(LogLeaf).where(LogLeaf.leaf_index == index).values(leaf_hash=leaf))
        conn.execute(delete(LogNode))
        conn.execute(
            insert(LogNode), [{"level": lv, "node_index": ix, "hash": h} for (lv, ix), h in tree.nodes.items()]
        )
        for size, signed_at, key_id in conn.execute(
            select(TreeHead.tree_size, TreeHead.signed_at, TreeHead.key_id)
        ).all():
            head = log.SignedTreeHead(size, tree.root(size), format_timestamp(signed_at), key_id, b"")
            signature = key.sign(log.TREE_HEAD_CONTEXT, head.signed_bytes())
            conn.execute(
                update(TreeHead).where(TreeHead.tree_size == size).values(root_hash=head.root_hash, signature=signature)
            )


def test_consistent_rewrite_with_the_log_key_is_caught_by_an_old_sidecar(signed_log: SignedLog) -> None:
    """Backdate record 3 and re-sign everything: ``log check`` passes, older sidecars do not."""
    rid = signed_log.record_id(3)
    logged_at = _record(signed_log.engine, rid).logged_at
    _rewrite_history(
        signed_log,
        lambda engine: _dba(
            engine, update(Record).where(Record.id == rid).values(logged_at=logged_at - timedelta(days=30))
        ),
    )
    # The rewrite is self-consistent: nothing in the database alone exposes it.
    assert _check(signed_log.engine).ok
    assert CliRunner().invoke(app, ["log", "check"]).exit_code == 0

    # Sidecars whose signed head predates the edited leaf (sizes 1..3) still extend into the new log.
    for leaf in range(3):
        verdict = _verify(signed_log, leaf)
        assert verdict.state is VerdictState.AUTHENTIC, (leaf, verdict.codes)
    # Every sidecar signed at size >= 4 holds a head whose root the rewritten log contradicts.
    for leaf in range(3, N):
        verdict = _verify(signed_log, leaf)
        assert verdict.state is VerdictState.TAMPERED, (leaf, verdict.codes)
        assert "log.consistency.invalid" in verdict.codes, (leaf, verdict.codes)
        assert "provenance.sidecar.signature.valid" in verdict.codes


def test_rewrite_without_the_log_key_is_caught_by_log_check(signed_log: SignedLog) -> None:
    """The same backdating rewrite by a DBA who lacks the log key: every re-signed head fails."""
    rid = signed_log.record_id(3)
    logged_at = _record(signed_log.engine, rid).logged_at
    _rewrite_history(
        signed_log,
        lambda engine: _dba(
            engine, update(Record).where(Record.id == rid).values(logged_at=logged_at - timedelta(days=30))
        ),
        key=generate_signing_key(),
    )
    report = _check(signed_log.engine)
    assert _codes(report) == {"log.tree_head.signature.invalid"}
    assert len(report.problems) == N
    _cli_check_fails_with({"log.tree_head.signature.invalid"})


def test_rewrite_signed_with_a_key_the_dba_registered_is_caught_by_log_check(signed_log: SignedLog) -> None:
    _forge_history_with_own_log_key(signed_log)
    report = _check(signed_log.engine)
    assert not report.ok
    assert CliRunner().invoke(app, ["log", "check"]).exit_code == 1


def test_rewrite_signed_with_a_key_the_dba_registered_is_caught_by_verify(signed_log: SignedLog) -> None:
    """Log keys are pinned outside the database, so even untouched records now fail: the
    current tree head is signed by a key the verifier does not trust."""
    _forge_history_with_own_log_key(signed_log)
    for leaf in range(N):
        verdict = _verify(signed_log, leaf)
        assert verdict.state is VerdictState.TAMPERED, (leaf, verdict.codes)
        assert "log.key.untrusted" in verdict.codes


def _forge_history_with_own_log_key(signed: SignedLog) -> None:
    """A DBA without the log key backdates record 3, registers a key of their own as a log key
    and re-signs every tree head with it."""
    rid = signed.record_id(3)
    logged_at = _record(signed.engine, rid).logged_at
    forger = generate_signing_key()

    def backdate_and_register_own_log_key(engine: Engine) -> None:
        _dba(
            engine,
            update(Record).where(Record.id == rid).values(logged_at=logged_at - timedelta(days=30)),
            insert(LogKey).values(
                key_id=forger.key_id,
                algorithm=forger.algorithm.value,
                public_key=forger.public_key.spki_der,
                created_at=datetime.now(UTC),
            ),
            update(TreeHead).values(key_id=forger.key_id),
        )

    _rewrite_history(signed, backdate_and_register_own_log_key, key=forger)


# --------------------------------------------------------------------------- log prove


def _prove(*args: str) -> dict[str, object]:
    result = CliRunner().invoke(app, ["log", "prove", *args])
    assert result.exit_code == 0, (result.stdout, result.stderr)
    body: dict[str, object] = json.loads(result.stdout)
    return body


def _assert_proof_verifies(signed: SignedLog, body: dict[str, object], leaf: int, size: int) -> None:
    proof, head = body["inclusion_proof"], body["tree_head"]
    assert isinstance(proof, dict) and isinstance(head, dict)
    assert (proof["leaf_index"], proof["tree_size"], head["tree_size"]) == (leaf, size, size)
    assert body["record_id"] == signed.record_id(leaf)
    assert body["content_digest"] == signed.results[leaf].content_digest
    leaf_hash = base64.b64decode(str(body["leaf_hash"]))
    record = _record(signed.engine, signed.record_id(leaf))
    assert leaf_hash == merkle.leaf_hash(log.entry_bytes(record.manifest, record.signature, record.logged_at))
    hashes = [base64.b64decode(h) for h in proof["hashes"]]
    root = base64.b64decode(head["root_hash"])
    merkle.verify_inclusion(leaf_hash, leaf, size, hashes, root)
    # The printed head is the log's signed head for that size.
    sth = log.SignedTreeHead.from_dict(head)
    with db.session_scope(signed.engine) as session:
        sth.verify(log.log_public_key(session, sth.key_id))
        assert sth == log.tree_head_at(session, size)
    # And a different leaf or root does not verify.
    with pytest.raises(Exception, match="does not lead to the root"):
        merkle.verify_inclusion(_flip(leaf_hash), leaf, size, hashes, root)


@pytest.mark.parametrize("leaf", [0, 3, N - 1])
def test_log_prove_by_file_and_by_record_id(signed_log: SignedLog, leaf: int) -> None:
    by_file = _prove(str(signed_log.path(leaf)))
    _assert_proof_verifies(signed_log, by_file, leaf, N)
    by_id = _prove(str(signed_log.record_id(leaf)))
    assert by_id == by_file


def test_log_prove_against_an_older_tree_size(signed_log: SignedLog) -> None:
    for size in range(3, N + 1):
        body = _prove(str(signed_log.record_id(2)), "--tree-size", str(size))
        _assert_proof_verifies(signed_log, body, 2, size)


def test_log_prove_refusals(signed_log: SignedLog, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["log", "prove", "999"])
    assert result.exit_code == 2
    assert "registry.record.not_found" in result.stderr
    unsigned = _write_png(tmp_path / "other" / "unsigned.png", 999)
    result = runner.invoke(app, ["log", "prove", str(unsigned)])
    assert result.exit_code == 2
    assert "registry.record.not_found" in result.stderr
    result = runner.invoke(app, ["log", "prove", str(signed_log.record_id(4)), "--tree-size", "4"])
    assert result.exit_code == 2
    assert "log.proof.out_of_range" in result.stderr
    result = runner.invoke(app, ["log", "prove", str(signed_log.record_id(0)), "--tree-size", str(N + 1)])
    assert result.exit_code == 2
    assert "log.proof.out_of_range" in result.stderr
