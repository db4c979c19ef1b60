"""Benchmark of the provenance channel: sign, verify, registry lookup, transparency log.

Each figure has a baseline measured in the same run, interleaved with it (file by file,
round by round) and reported as a ratio (CONVENTIONS rule 13): sign and verify against
bare SHA-256 + one raw Ed25519 operation, ``find_record_by_digest`` at 100k records
against 1k, log append / proofs at 10^5 and 10^6 leaves against 10^3 (beside log2 ratios).
Registry and log run on SQLite, and on PostgreSQL when reachable at ``--postgres-url``
(throw-away databases, dropped afterwards). See bench/README.md for the commands.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import random
import secrets
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import cryptography
import cv2
import numpy as np
import sqlalchemy
from cryptography.hazmat.primitives.asymmetric import ed25519  # the bare primitive, for baselines only
from rich.console import Console
from sqlalchemy import Engine, create_engine, event, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from authenticity.config import Settings
from authenticity.media import MediaType, inspect_media, read_capture_metadata, sha256_file
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm, SigningKey, generate_signing_key
from authenticity.provenance.keystore import create_signer_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp
from authenticity.registry import db, log, merkle, repository
from authenticity.registry.models import LogKey, LogLeaf, LogNode, Record, TreeHead
from authenticity.registry.models import Signer as SignerRow
from authenticity.registry.store import open_registry
from authenticity.verify import Verdict, VerdictState, Verifier

if __package__ in (None, ""):  # run as `python bench/provenance.py`: the checkout root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import (
    Result,
    err,
    interleaved,
    machine_info,
    median_p95,
    ms,
    print_rich,
    progress,
    ratio,
    timed,
    to_markdown,
)

PASSPHRASE = b"bench-passphrase"
DEFAULT_PG_URL = os.environ.get("AUTHENTICITY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
IMAGE_SIZE = (1280, 800)  # width, height: 1.02 MP
INSERT_BATCH = 50_000


@dataclass(frozen=True)
class Sizes:
    files: int
    records: int
    lookups: int
    log_sizes: tuple[int, ...]
    appends: int
    proofs: int
    budget_s: float  # per log operation: stop (after at least 10 rounds) once past this
    base_records: int = 1_000


FULL = Sizes(200, 100_000, 1_000, (10**3, 10**5, 10**6), appends=50, proofs=300, budget_s=20.0)
QUICK = Sizes(20, 10_000, 200, (10**3, 10**4), appends=20, proofs=50, budget_s=5.0)


# ---------------------------------------------------------------- sign and verify


def write_jpegs(folder: Path, count: int, seed: int) -> list[Path]:
    """~1 MP JPEGs, each different: a smooth random field, filled circles and sensor-like noise."""
    rng, (width, height) = np.random.default_rng(seed), IMAGE_SIZE
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    with progress(f"writing {count} JPEGs ({width}x{height})", count) as advance:
        for i in range(count):
            coarse = rng.uniform(0, 255, (9, 14, 3)).astype(np.float32)
            img = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
            for _ in range(15):
                center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
                cv2.circle(img, center, int(rng.integers(10, 200)), [float(c) for c in rng.uniform(0, 255, 3)], -1)
            img += rng.normal(0.0, 6.0, size=(height, width, 3)).astype(np.float32)
            paths.append(folder / f"photo-{i:04d}.jpg")
            if not cv2.imwrite(str(paths[-1]), np.clip(img, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, 90]):
                raise SystemExit(f"OpenCV could not write {paths[-1]}")
            advance(1)
    return paths


def per_file(label: str, paths: list[Path], steps: Sequence[Callable[[Path], object]]) -> list[list[float]]:
    """Seconds of each step on each file, the steps run in turn on one file before the next file."""
    samples: list[list[float]] = [[] for _ in steps]
    with progress(label, len(paths)) as advance:
        for path in paths:
            for step, out in zip(steps, samples, strict=True):
                out.append(timed(partial(step, path))[1])
            advance(1)
    return samples


def raw_hash_and(crypto_op: Callable[[], object], path: Path) -> None:
    """The baseline: SHA-256 of the file's bytes, then one raw Ed25519 operation on 200 bytes."""
    hashlib.sha256(path.read_bytes()).digest()
    crypto_op()


def manifest_and_sign(signer: Signer, capture: dict[str, str | int], path: Path) -> bytes:
    """What Signer.sign does between hashing and its transaction: build, canonicalise, sign."""
    manifest = Manifest(content_digest="sha256:" + "0" * 64, media_type="image/jpeg", size_bytes=path.stat().st_size,
                        algorithm=signer.key.algorithm, key_id=signer.key.key_id,
                        signed_at=format_timestamp(datetime.now(UTC)), capture=capture)  # fmt: skip
    return signer.key.sign(MANIFEST_CONTEXT, manifest.canonical_bytes())


def bench_sign_verify(folder: Path, sizes: Sizes, seed: int) -> list[Result]:
    home = folder / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'authenticity.db'}")
    key = create_signer_key(settings, "bench-cam", Algorithm.ED25519, PASSPHRASE)
    with db.session_scope(open_registry(settings)) as session:
        repository.add_signer(session, "bench-cam", key.public_key, datetime.now(UTC))
    signer, load_s = timed(partial(Signer, settings, "bench-cam", PASSPHRASE))
    warmup, *paths = write_jpegs(folder / "media", sizes.files + 1, seed)
    mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1e3
    raw_key, message = ed25519.Ed25519PrivateKey.generate(), os.urandom(200)
    raw_sign = partial(raw_hash_and, partial(raw_key.sign, message))
    raw_verify = partial(raw_hash_and, partial(raw_key.public_key().verify, raw_key.sign(message), message))
    decode = partial(inspect_media, max_pixels=settings.max_pixels)
    capture = read_capture_metadata(warmup, MediaType.JPEG).to_dict()
    stages: dict[str, Callable[[Path], object]] = {
        "inspect_media (decode validation)": decode, "sha256_file": sha256_file,
        "read_capture_metadata": partial(read_capture_metadata, media_type=MediaType.JPEG),
        "manifest + sign": partial(manifest_and_sign, signer, capture)}  # fmt: skip
    steps: list[Callable[[Path], object]] = [raw_sign, signer.sign, *stages.values()]
    for step in steps:
        step(warmup)  # warm-up; the first sign also registers the log key
    base, real, *parts = per_file("Signer.sign vs baseline", paths, steps)
    sign = Result("Sign + register throughput (SQLite file registry, one Signer)",
                  ["measure", "files/s", "median ms", "p95 ms", "ratio / share"])  # fmt: skip
    for label, samples in (("baseline: sha256(file) + raw Ed25519 sign (200 B)", base), ("Signer.sign(path)", real)):
        (med, p95), rate = median_p95(samples), f"{len(samples) / sum(samples):.1f}"
        sign.rows.append([label, rate, ms(med), ms(p95), ratio(sum(samples) / sum(base))])
    mean_sign = statistics.mean(real)
    means = {name: statistics.mean(samples) for name, samples in zip(stages, parts, strict=True)}
    means["registry txn + log append + commit + sidecar (rest)"] = mean_sign - sum(means.values())
    for name, seconds in means.items():
        sign.rows.append([f"  of which {name}, mean", "", ms(seconds), "", f"{seconds / mean_sign:.0%}"])
    sign.notes += [
        f"{len(paths)} JPEGs of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, mean {mean_kb:.0f} kB. Ratio = total time over the "
        "baseline's total time. The 'of which' rows time each step alone on the same file right after its sign.",
        f"One-off Signer() load (registry check + key decryption): {ms(load_s)} ms, not counted above.",
    ]

    verifier, verdicts = Verifier(settings, detector=False), list[Verdict]()
    for step in (raw_verify, verifier.verify, decode):
        step(warmup)
    vbase, vreal, vdecode = per_file("Verifier.verify vs baseline", paths,
                                     [raw_verify, lambda p: verdicts.append(verifier.verify(p)), decode])  # fmt: skip
    if any(verdict.state is not VerdictState.AUTHENTIC for verdict in verdicts):
        raise SystemExit(f"not every file verified as authentic: {[v.state for v in verdicts]}")
    (b_med, b_p95), (v_med, v_p95), (d_med, d_p95) = median_p95(vbase), median_p95(vreal), median_p95(vdecode)
    w_med, w_p95 = median_p95([v - d for v, d in zip(vreal, vdecode, strict=True)])
    verify = Result("Verify latency (SQLite file registry; each file has a sidecar and a record)",
                    ["measure", "median ms", "p95 ms", "ratio / share"])  # fmt: skip
    verify.rows += [
        ["baseline: sha256(file) + raw Ed25519 verify (200 B)", ms(b_med), ms(b_p95), ratio(1.0)],
        ["Verifier.verify(path)", ms(v_med), ms(v_p95), ratio(v_med / b_med)],
        ["  of which inspect_media (decode validation)", ms(d_med), ms(d_p95), f"{sum(vdecode) / sum(vreal):.0%}"],
        ["  verify minus decode, per file", ms(w_med), ms(w_p95), ratio(w_med / b_med)],
    ]
    verify.notes.append(f"{len(paths)} files, every verdict authentic; ratios of medians. inspect_media is timed "
                        "alone on each file right after its verify and subtracted file by file.")  # fmt: skip
    return [sign, verify]


# ---------------------------------------------------------------- databases and query plans


@dataclass
class Backend:
    """A database server; ``fresh(name)`` gives a new, migrated, empty database on it."""

    label: str
    fresh: Callable[[str], Engine]


@contextmanager
def backends(folder: Path, pg_url: str | None, notes: list[str]) -> Iterator[list[Backend]]:
    """SQLite files, plus PostgreSQL when reachable; every database made is disposed and dropped on exit."""
    with ExitStack() as stack:

        def migrated(url: str) -> Engine:
            engine = db.create_db_engine(url)
            stack.callback(engine.dispose)
            db.upgrade(engine)
            return engine

        found = [Backend(f"SQLite {sqlite3.sqlite_version}", lambda name: migrated(f"sqlite:///{folder / name}.db"))]
        if pg_url is None:
            notes.append("PostgreSQL skipped (--no-postgres).")
            yield found
            return
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        stack.callback(admin.dispose)

        def fresh_pg(purpose: str) -> Engine:
            name = f"authenticity_bench_{purpose}_{secrets.token_hex(4)}"
            execute(admin, f'CREATE DATABASE "{name}"')
            stack.callback(execute, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return migrated(make_url(pg_url).set(database=name).render_as_string(hide_password=False))

        try:
            with admin.connect() as conn:
                version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
            found.append(Backend(f"PostgreSQL {version}", fresh_pg))
        except OperationalError as exc:
            notes.append(f"PostgreSQL skipped: not reachable ({str(exc.orig).strip().splitlines()[0][:100]}).")
        yield found


def execute(engine: Engine, sql: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(sql))
        conn.commit()


def query_plan(engine: Engine, action: Callable[[Session], object], table: str) -> str:
    """The access paths the database chose for the last statement reading *table* during *action*."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if f"FROM {table}" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with db.session_scope(engine, read_only=True) as session:
            action(session)
    finally:
        event.remove(engine, "before_cursor_execute", grab)
    statement, parameters = seen[-1]
    explain = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(explain + statement, parameters).all()
    lines = [str(row[-1]).strip().removeprefix("->").strip().split("  (cost")[0] for row in rows]
    return "; ".join(dict.fromkeys(line for line in lines if "SCAN" in line.upper() or "SEARCH" in line))


def add_dummy_signer(conn: sqlalchemy.Connection, name: str) -> int:
    row = {"name": name, "key_id": secrets.token_hex(32), "algorithm": "ed25519",
           "public_key": secrets.token_bytes(44), "created_at": datetime.now(UTC)}  # fmt: skip
    return int(conn.execute(insert(SignerRow).returning(SignerRow.id), row).scalar_one())


# ---------------------------------------------------------------- registry lookup


def registry_with(engine: Engine, count: int, rng: random.Random) -> list[str]:
    """*count* synthetic records (manifest-sized payloads, ~400 B), each with its log_leaf row; their digests."""
    now, digests = datetime.now(UTC), list[str]()
    with engine.begin() as conn:
        signer_id = add_dummy_signer(conn, "bench-lookup")
    with progress(f"inserting {count:,} records", count) as advance:
        for start in range(0, count, INSERT_BATCH):
            rows, first = [], len(digests)
            for _ in range(min(INSERT_BATCH, count - start)):
                digests.append(digest := "sha256:" + rng.randbytes(32).hex())
                manifest = (b'{"content_digest":"' + digest.encode() + b'","pad":"').ljust(400, b"x") + b'"}'
                rows.append({"content_digest": digest, "signer_id": signer_id, "media_type": "image/jpeg",
                             "size_bytes": rng.randrange(10**5, 10**7), "manifest": manifest,
                             "signature": rng.randbytes(64), "logged_at": now})  # fmt: skip
            with engine.begin() as conn:
                last = conn.scalar(select(func.coalesce(func.max(Record.id), 0)))
                conn.execute(insert(Record), rows)
                ids = conn.scalars(select(Record.id).where(Record.id > last).order_by(Record.id)).all()
                leaves = [{"leaf_index": first + k, "record_id": i, "leaf_hash": rng.randbytes(32)}
                          for k, i in enumerate(ids)]  # fmt: skip
                conn.execute(insert(LogLeaf), leaves)
            advance(len(rows))
    execute(engine, "ANALYZE")
    return digests


def lookup_case(session: Session, queries: list[str], expected: set[str]) -> Callable[[], float]:
    """One lookup per call, through the queries in order; checks hit or miss."""
    remaining = iter(queries)

    def one() -> float:
        digest = next(remaining)
        session.expunge_all()
        record, seconds = timed(partial(repository.find_record_by_digest, session, digest))
        if (record is not None) != (digest in expected):
            raise SystemExit(f"lookup of {digest} returned the wrong answer")
        return seconds

    return one


def bench_lookup(found: list[Backend], sizes: Sizes, seed: int) -> Result:
    result = Result(f"Registry lookup: find_record_by_digest, {sizes.lookups} random digests (half hits)",
                    ["backend", "records", "median µs", "p95 µs", f"ratio vs {sizes.base_records:,}"])  # fmt: skip
    for backend in found:
        rng, cases = random.Random(seed), []
        engines = [backend.fresh(f"lookup_{count}") for count in (sizes.base_records, sizes.records)]
        with ExitStack() as stack:
            for engine, count in zip(engines, (sizes.base_records, sizes.records), strict=True):
                digests = registry_with(engine, count, rng)
                hits = rng.sample(digests, sizes.lookups // 2)
                queries = hits + ["sha256:" + rng.randbytes(32).hex() for _ in range(sizes.lookups - len(hits))]
                rng.shuffle(queries)
                session = stack.enter_context(db.session_scope(engine, read_only=True))  # as verify does
                for digest in digests[:50]:  # warm the connection, statement cache and pages
                    repository.find_record_by_digest(session, digest)
                cases.append(lookup_case(session, queries, set(hits)))
            samples = interleaved(cases, sizes.lookups, math.inf)
        base_med = median_p95(samples[0])[0]
        for count, case_samples in zip((sizes.base_records, sizes.records), samples, strict=True):
            med, p95 = median_p95(case_samples)
            cells = [f"{count:,}", f"{med * 1e6:.0f}", f"{p95 * 1e6:.0f}", ratio(med / base_med)]
            result.rows.append([backend.label, *cells])
        plan = query_plan(engines[1], partial(repository.find_record_by_digest, content_digest=digests[0]), "record")
        result.notes.append(f"{backend.label} plan: {plan}")
    result.notes.append("One database per size, lookups alternating between them; ANALYZE after the bulk insert.")
    return result


# ---------------------------------------------------------------- transparency log


def build_tree(size: int, seed: int) -> tuple[merkle.MemoryTree, list[tuple[merkle.NodeId, bytes]]]:
    """A MemoryTree over random leaf hashes, and its perfect nodes in completion order.

    The first ``2n - popcount(n)`` nodes are exactly those of the tree at ``n`` leaves,
    so one tree serves every log size and every backend.
    """
    rng, tree = random.Random(seed), merkle.MemoryTree()
    with progress(f"MemoryTree over {size:,} random leaves", size) as advance:
        while tree.size < size:
            step = min(10_000, size - tree.size)
            for _ in range(step):
                tree.append_leaf_hash(rng.randbytes(32))
            advance(step)
    return tree, list(tree.nodes.items())


def log_with(engine: Engine, tree: merkle.MemoryTree, nodes: list[Any], n: int, key: SigningKey) -> int:
    """A log of *n* leaves built directly (nodes + one signed head), plus a record for appends; its id."""
    now, wanted = datetime.now(UTC), 2 * n - n.bit_count()
    head = log.SignedTreeHead(n, tree.root(n), format_timestamp(now), key.key_id, b"")
    with engine.begin() as conn:
        conn.execute(insert(LogKey), {"key_id": key.key_id, "algorithm": key.algorithm.value,
                                      "public_key": key.public_key.spki_der, "created_at": now})  # fmt: skip
        record = {"content_digest": "sha256:" + "0" * 64, "signer_id": add_dummy_signer(conn, "bench-log"),
                  "media_type": "image/jpeg", "size_bytes": 1, "manifest": b"{}", "signature": bytes(64),
                  "logged_at": now}  # fmt: skip
        record_id = int(conn.execute(insert(Record).returning(Record.id), record).scalar_one())
    with progress(f"inserting {wanted:,} log_node rows", wanted) as advance:
        for start in range(0, wanted, INSERT_BATCH):
            chunk = nodes[start : min(wanted, start + INSERT_BATCH)]
            with engine.begin() as conn:
                conn.execute(insert(LogNode), [{"level": lvl, "node_index": idx, "hash": h} for (lvl, idx), h in chunk])
            advance(len(chunk))
    row = {"tree_size": n, "root_hash": head.root_hash, "signed_at": now, "key_id": key.key_id,
           "signature": key.sign(log.TREE_HEAD_CONTEXT, head.signed_bytes())}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(TreeHead), row)
    execute(engine, "ANALYZE")
    return record_id


def append_once(engine: Engine, n: int, record_id: int, key: SigningKey) -> float:
    """Time one append at *n* leaves inside a transaction that is then rolled back (the log stays at n)."""
    with sessionmaker(engine)() as session:
        session.connection()  # BEGIN (IMMEDIATE on SQLite) here, outside the timed region
        db.lock_log(session)
        now = datetime.now(UTC)
        (index, head), seconds = timed(partial(log.append_leaf, session, record_id, b"entry", key, now))
        session.rollback()  # commit + fsync are part of the sign benchmark
    if index != n or head.tree_size != n + 1:
        raise SystemExit(f"append at {n} gave leaf {index} and size {head.tree_size}")
    return seconds


def proof_once(kind: str, session: Session, tree: merkle.MemoryTree, n: int, rng: random.Random,
               lengths: list[int]) -> float:  # fmt: skip
    """Time one random inclusion or consistency proof at *n* leaves and verify it against the in-memory tree."""
    if kind == "inclusion":
        leaf = rng.randrange(n)
        proof, seconds = timed(partial(log.inclusion_proof, session, leaf, n))
        merkle.verify_inclusion(tree.get((0, leaf)), leaf, n, list(proof.hashes), tree.root(n))
        lengths.append(len(proof.hashes))
        return seconds
    old = rng.randrange(1, n)
    hashes, seconds = timed(partial(log.consistency_proof, session, old, n))
    merkle.verify_consistency(old, n, hashes, tree.root(old), tree.root(n))
    lengths.append(len(hashes))
    return seconds


def bench_log(backend: Backend, tree: merkle.MemoryTree, nodes: list[Any], sizes: Sizes, seed: int) -> Result:
    rng, key, ns = random.Random(seed), generate_signing_key(Algorithm.ED25519), sizes.log_sizes
    engines = [backend.fresh(f"log_{n}") for n in ns]
    record_ids = [log_with(engine, tree, nodes, n, key) for engine, n in zip(engines, ns, strict=True)]
    err.log(f"{backend.label}: logs at {', '.join(f'{n:,}' for n in ns)} leaves built; timing, sizes in turn")
    cases = [partial(append_once, e, n, r, key) for e, n, r in zip(engines, ns, record_ids, strict=True)]
    for case in cases:
        case()  # warm-up
    timings = {"append_leaf (rolled back)": (interleaved(cases, sizes.appends, sizes.budget_s), [0.0] * len(ns))}
    for kind in ("inclusion", "consistency"):
        with ExitStack() as stack:
            sessions = [stack.enter_context(db.session_scope(engine, read_only=True)) for engine in engines]
            lengths: list[list[int]] = [[] for _ in ns]
            per_size = zip(sessions, ns, lengths, strict=True)
            cases = [partial(proof_once, kind, session, tree, n, rng, out) for session, n, out in per_size]
            for case in cases:
                case()  # warm-up
            samples = interleaved(cases, sizes.proofs, sizes.budget_s)
        timings[f"{kind}_proof"] = (samples, [statistics.mean(out) for out in lengths])
    result = Result(f"Transparency log on {backend.label}: time vs leaves (baseline: {ns[0]:,} leaves)",
                    ["operation", "leaves", "samples", "median ms", "p95 ms", "ratio vs base", "log2 ratio",
                     "hashes"])  # fmt: skip
    for op, (samples, hashes) in timings.items():
        base_med = median_p95(samples[0])[0]
        for n, case_samples, mean_hashes in zip(ns, samples, hashes, strict=True):
            med, p95 = median_p95(case_samples)
            shown = [ms(med), ms(p95), ratio(med / base_med), ratio(math.log2(n) / math.log2(ns[0]))]
            hashes_cell = f"{mean_hashes:.1f}" if mean_hashes else ""
            result.rows.append([op, f"{n:,}", str(len(case_samples)), *shown, hashes_cell])
    plan = query_plan(engines[-1], partial(log.inclusion_proof, leaf_index=ns[-1] // 3, size=ns[-1]), "log_node")
    result.notes += [
        f"Node fetch plan at {ns[-1]:,} leaves: {plan}",
        f"One database per size, built directly (MemoryTree nodes bulk-inserted, one signed head); sizes measured in "
        f"turn, up to {sizes.appends} appends and {sizes.proofs} random proofs each, fewer (at least 10) once an "
        f"operation passes {sizes.budget_s:.0f} s. Every proof is verified against the in-memory tree.",
    ]
    return result


# ---------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="markdown on stdout (the tables go to stderr)")
    parser.add_argument("--postgres-url", default=DEFAULT_PG_URL, help="admin URL of a PostgreSQL server")
    parser.add_argument("--no-postgres", action="store_true", help="skip PostgreSQL even when reachable")
    parser.add_argument("--seed", type=int, default=6962)
    args = parser.parse_args(argv)
    sizes, started, load = QUICK if args.quick else FULL, time.perf_counter(), os.getloadavg()[0]
    pg_notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="authenticity-bench-") as tmp:
        folder = Path(tmp)
        results = bench_sign_verify(folder, sizes, args.seed)
        with backends(folder, None if args.no_postgres else args.postgres_url, pg_notes) as found:
            results.append(bench_lookup(found, sizes, args.seed))
            results[-1].notes += pg_notes
            tree, nodes = build_tree(max(sizes.log_sizes), args.seed)
            results += [bench_log(backend, tree, nodes, sizes, args.seed) for backend in found]
            versions = [f"{m.__name__} {m.__version__}" for m in (sqlalchemy, cryptography, cv2)]
            extra = [("databases", ", ".join(b.label for b in found)), ("libraries", ", ".join(versions))]
            info = [*machine_info(extra, load), ("wall time", f"{time.perf_counter() - started:.0f} s")]
    if args.markdown:
        print_rich(results, info, err)
        print(to_markdown(results, info, " ".join(["python bench/provenance.py", *sys.argv[1:]])))
    else:
        print_rich(results, info, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
