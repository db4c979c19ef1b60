"""Concurrent signers in separate processes keep the transparency log contiguous.

>= 4 processes x 50 registrations on SQLite and on PostgreSQL: indices unique and
contiguous, one signed tree head per size, ``log check`` clean, every file authentic.
Workers are real processes started with the "spawn" method (no state inherited from
the test process) that all start signing at the same instant (a barrier).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from sqlalchemy import func, select

from authenticity.config import Settings
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key, trusted_log_key_ids
from authenticity.registry import db, repository
from authenticity.registry.log_check import check_log
from authenticity.registry.models import LogKey, LogLeaf, Record, TreeHead
from authenticity.registry.store import open_registry

pytestmark = pytest.mark.slow

WORKERS = 4
PER_WORKER = 50
PASSPHRASE = "concurrency passphrase"
SIGNER = "cam-1"
BUDGET_S = 60.0  # per backend, spawn to last verification


def _write_png(path: Path, worker: int, index: int) -> Path:
    """A 32x32 PNG whose pixels are unique to (worker, index)."""
    rng = np.random.default_rng([worker, index])
    img = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    img[0, 0] = (worker, index, 7)  # distinct even if two seeds collided
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img), path
    return path


def _settings(home: Path, url: str) -> Settings:
    return Settings(home=home, database_url=url, key_passphrase=PASSPHRASE, db_timeout=60)


def _sign_worker(home: str, url: str, worker: int, media: str, barrier: Any, results: Any) -> None:
    """Runs in a spawned process: sign PER_WORKER fresh files, report (path, record, leaf, size)."""
    try:
        from authenticity.provenance.capture import Signer

        paths = [_write_png(Path(media) / f"w{worker}" / f"{i:03d}.png", worker, i) for i in range(PER_WORKER)]
        signer = Signer(_settings(Path(home), url), SIGNER, PASSPHRASE.encode())
        barrier.wait(timeout=60)
        out = []
        for path in paths:
            r = signer.sign(path)
            out.append((str(path), r.record_id, r.leaf_index, r.tree_size))
        results.put((worker, "ok", out))
    except BaseException:
        results.put((worker, "error", traceback.format_exc()))


def _run_workers(home: Path, url: str, media: Path) -> list[tuple[str, int, int, int]]:
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(WORKERS)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_sign_worker, args=(str(home), url, w, str(media), barrier, results)) for w in range(WORKERS)
    ]
    for p in procs:
        p.start()
    collected: dict[int, list[tuple[str, int, int, int]]] = {}
    errors: list[str] = []
    try:
        for _ in procs:
            worker, status, payload = results.get(timeout=180)
            if status == "ok":
                collected[worker] = payload
            else:
                errors.append(f"worker {worker}:\n{payload}")
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.kill()
                p.join()
    assert not errors, "\n".join(errors)
    assert sorted(collected) == list(range(WORKERS))
    for rows in collected.values():
        # Each process sees its own appends in order, and every append signs its own head.
        assert [size for *_, size in rows] == sorted(size for *_, size in rows)
        assert all(size == leaf + 1 for _, _, leaf, size in rows)
    return [row for rows in collected.values() for row in rows]


def test_concurrent_processes_keep_log_indices_unique_and_contiguous(db_url: str, tmp_path: Path) -> None:
    from authenticity.verify import VerdictState, Verifier

    started = time.monotonic()
    home = tmp_path / "home"
    cfg = _settings(home, db_url)
    engine = open_registry(cfg)  # migrated before any worker starts
    assert db.current_revision(engine) == db.head_revision()
    key = create_signer_key(cfg, SIGNER, Algorithm.ED25519, PASSPHRASE.encode())
    with db.session_scope(engine) as session:
        repository.add_signer(session, SIGNER, key.public_key, datetime.now(UTC))
    # The log key is deliberately not created here: the workers race to create it.

    rows = _run_workers(home, db_url, tmp_path / "media")
    signed_s = time.monotonic() - started
    total = WORKERS * PER_WORKER

    assert len(rows) == total
    # The appends really interleaved (otherwise this test proves nothing about locking).
    owner = {leaf: Path(path).parent.name for path, _, leaf, _ in rows}
    switches = sum(owner[i] != owner[i + 1] for i in range(total - 1))
    assert switches >= WORKERS, f"workers barely overlapped ({switches} switches)"
    assert sorted(leaf for _, _, leaf, _ in rows) == list(range(total))
    assert len({record for _, record, _, _ in rows}) == total
    with db.session_scope(engine) as session:
        assert session.scalar(select(func.count()).select_from(Record)) == total
        assert list(session.scalars(select(LogLeaf.leaf_index).order_by(LogLeaf.leaf_index))) == list(range(total))
        assert list(session.scalars(select(TreeHead.tree_size).order_by(TreeHead.tree_size))) == list(
            range(1, total + 1)
        )
        assert session.scalar(select(func.count()).select_from(LogKey)) == 1  # one log key, despite the race
        by_record = dict(session.execute(select(LogLeaf.record_id, LogLeaf.leaf_index)).all())
        assert {record: leaf for _, record, leaf, _ in rows} == by_record
        report = check_log(session, trusted_log_key_ids(cfg))
    assert report.ok, report.problems
    assert (report.tree_size, report.leaves_checked, report.heads_checked) == (total, total, total)

    verifier = Verifier(cfg, detector=False)
    states = {path: verifier.verify(Path(path)) for path, *_ in rows}
    not_authentic = {p: (v.state, v.codes) for p, v in states.items() if v.state is not VerdictState.AUTHENTIC}
    assert not not_authentic
    assert all("log.consistency.verified" in v.codes and "log.inclusion.verified" in v.codes for v in states.values())

    elapsed = time.monotonic() - started
    print(
        f"\n[{engine.dialect.name}] {total} concurrent registrations in {signed_s:.1f}s "
        f"({switches} worker switches), total {elapsed:.1f}s (budget ~{BUDGET_S:.0f}s)"
    )


def _migrate_worker(url: str, barrier: Any, results: Any) -> None:
    try:
        engine = db.create_db_engine(url, timeout=60)
        barrier.wait(timeout=60)
        db.upgrade(engine)
        results.put(("ok", db.current_revision(engine)))
    except BaseException:
        results.put(("error", traceback.format_exc()))


def test_concurrent_first_upgrade_is_safe(db_url: str) -> None:
    """Several processes opening an empty registry at once all end at head, without errors."""
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(WORKERS), ctx.Queue()
    procs = [ctx.Process(target=_migrate_worker, args=(db_url, barrier, results)) for _ in range(WORKERS)]
    for p in procs:
        p.start()
    try:
        outcomes = [results.get(timeout=120) for _ in procs]
    finally:
        for p in procs:
            p.join(timeout=30)
    assert outcomes == [("ok", db.head_revision())] * WORKERS, outcomes
