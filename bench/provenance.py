"""Benchmark of the provenance channel: sign, verify, registry lookup, transparency log.

Each figure is paired with a baseline measured in the same run and reported as a ratio
(CONVENTIONS rule 13): sign and verify against bare SHA-256 + one raw Ed25519 operation,
``find_record_by_digest`` at 100k records against 1k, and log append / proofs at 10^5
and 10^6 leaves against 10^3 (next to the log2(n) ratio that O(log n) work predicts).

    python bench/provenance.py                        # full run, a few minutes on 2 cores
    python bench/provenance.py --quick                # smoke run, seconds
    python bench/provenance.py --markdown > out.md    # markdown on stdout, tables on stderr

Registry and log run on SQLite, and on PostgreSQL when reachable at ``--postgres-url``
(throw-away databases are created there and dropped afterwards).
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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

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
from authenticity.media import inspect_media, read_capture_metadata, sha256_file
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm, SigningKey, generate_signing_key
from authenticity.provenance.keystore import create_signer_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, format_timestamp
from authenticity.registry import db, log, merkle, repository
from authenticity.registry.models import LogKey, LogLeaf, LogNode, Record, TreeHead
from authenticity.registry.models import Signer as SignerRow
from authenticity.registry.store import open_registry
from authenticity.verify import VerdictState, Verifier

if __package__ in (None, ""):  # run as `python bench/provenance.py`: the checkout root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import Result, err, machine_info, median_p95, ms, print_rich, progress, ratio, sample, timed, to_markdown

T = TypeVar("T")
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
    budget_s: float  # per operation and log size: stop sampling (after at least 10) once past this
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


def raw_baseline(paths: list[Path], *, verify: bool) -> list[float]:
    """The irreducible work per file: SHA-256 of its bytes and one Ed25519 sign or verify of 200 bytes."""
    key, message = ed25519.Ed25519PrivateKey.generate(), os.urandom(200)
    crypto_op = partial(key.public_key().verify, key.sign(message), message) if verify else partial(key.sign, message)
    samples = []
    for path in paths:
        start = time.perf_counter()
        hashlib.sha256(path.read_bytes()).digest()
        crypto_op()
        samples.append(time.perf_counter() - start)
    return samples


def sign_stages(signer: Signer, paths: list[Path]) -> dict[str, float]:
    """Mean seconds of each step Signer.sign runs before its transaction, re-run alone on the same files."""
    names = ("inspect_media (decode validation)", "sha256_file", "read_capture_metadata", "manifest + sign")
    totals = dict.fromkeys(names, 0.0)
    for path in paths:
        info, t0 = timed(partial(inspect_media, path, max_pixels=signer.settings.max_pixels))
        digest, t1 = timed(partial(sha256_file, path))
        capture, t2 = timed(partial(read_capture_metadata, path, info.media_type))
        manifest = Manifest(content_digest=digest, media_type=info.media_type.value, size_bytes=info.size_bytes,
                            algorithm=signer.key.algorithm, key_id=signer.key.key_id,
                            signed_at=format_timestamp(datetime.now(UTC)), capture=capture.to_dict())  # fmt: skip
        _, t3 = timed(partial(_sign_manifest, signer.key, manifest))
        for name, seconds in zip(names, (t0, t1, t2, t3), strict=True):
            totals[name] += seconds
    return {name: total / len(paths) for name, total in totals.items()}


def _sign_manifest(key: SigningKey, manifest: Manifest) -> bytes:
    return key.sign(MANIFEST_CONTEXT, manifest.canonical_bytes())


def time_each(label: str, paths: list[Path], fn: Callable[[Path], T]) -> list[tuple[T, float]]:
    out = []
    with progress(label, len(paths)) as advance:
        for path in paths:
            out.append(timed(partial(fn, path)))
            advance(1)
    return out


def bench_sign_verify(folder: Path, sizes: Sizes, seed: int) -> list[Result]:
    home = folder / "home"
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'authenticity.db'}")
    key = create_signer_key(settings, "bench-cam", Algorithm.ED25519, PASSPHRASE)
    with db.session_scope(open_registry(settings)) as session:
        repository.add_signer(session, "bench-cam", key.public_key, datetime.now(UTC))
    signer, load_s = timed(lambda: Signer(settings, "bench-cam", PASSPHRASE))
    warmup, *paths = write_jpegs(folder / "media", sizes.files + 1, seed)
    mean_kb = sum(p.stat().st_size for p in paths) / len(paths) / 1e3

    raw_baseline([warmup], verify=False)
    base = raw_baseline(paths, verify=False)
    signer.sign(warmup)  # the first append also registers the log key
    real = [seconds for _, seconds in time_each("Signer.sign", paths, signer.sign)]
    stages = sign_stages(signer, paths)
    sign = Result("Sign + register throughput (SQLite file registry, one Signer)",
                  ["measure", "files/s", "median ms", "p95 ms", "ratio / share"])  # fmt: skip
    for label, samples in (("baseline: sha256(file) + raw Ed25519 sign (200 B)", base), ("Signer.sign(path)", real)):
        med, p95 = median_p95(samples)
        rate = f"{len(samples) / sum(samples):.1f}"
        sign.rows.append([label, rate, ms(med), ms(p95), ratio(sum(samples) / sum(base))])
    mean_sign = sum(real) / len(real)
    rest = ("registry txn + log append + commit + sidecar (rest)", mean_sign - sum(stages.values()))
    for name, seconds in [*stages.items(), rest]:
        sign.rows.append([f"  of which {name}, mean", "", ms(seconds), "", f"{seconds / mean_sign:.0%}"])
    sign.notes += [
        f"{len(paths)} JPEGs of {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}, mean {mean_kb:.0f} kB. Ratio = total time over the "
        "baseline's total time; the 'of which' rows re-run each step alone on the same files (share of a mean sign).",
        f"One-off Signer() load (registry check + key decryption): {ms(load_s)} ms, not counted above.",
    ]

    verifier = Verifier(settings)
    verifier.verify(warmup)
    raw_baseline([warmup], verify=True)
    vbase = raw_baseline(paths, verify=True)
    verdicts = time_each("Verifier.verify", paths, verifier.verify)
    if any(verdict.state is not VerdictState.AUTHENTIC for verdict, _ in verdicts):
        raise SystemExit(f"not every file verified as authentic: {[v.state for v, _ in verdicts]}")
    vreal = [seconds for _, seconds in verdicts]
    decode = [timed(partial(inspect_media, path, max_pixels=settings.max_pixels))[1] for path in paths]
    (b_med, b_p95), (v_med, v_p95), (d_med, d_p95) = median_p95(vbase), median_p95(vreal), median_p95(decode)
    w_med, w_p95 = median_p95([v - d for v, d in zip(vreal, decode, strict=True)])
    verify = Result("Verify latency (SQLite file registry; each file has a sidecar and a record)",
                    ["measure", "median ms", "p95 ms", "ratio / share"])  # fmt: skip
    verify.rows += [
        ["baseline: sha256(file) + raw Ed25519 verify (200 B)", ms(b_med), ms(b_p95), ratio(1.0)],
        ["Verifier.verify(path)", ms(v_med), ms(v_p95), ratio(v_med / b_med)],
        ["  of which inspect_media (decode validation)", ms(d_med), ms(d_p95), f"{sum(decode) / sum(vreal):.0%}"],
        ["  verify minus decode, per file", ms(w_med), ms(w_p95), ratio(w_med / b_med)],
    ]
    verify.notes.append(f"{len(paths)} files, every verdict authentic; ratios of medians. inspect_media was timed in "
                        "a separate pass over the same files and subtracted file by file.")  # fmt: skip
    return [sign, verify]


# ---------------------------------------------------------------- databases and query plans


@dataclass
class Backend:
    """One database server with two fresh, migrated databases: one for lookups, one for the log."""

    label: str
    lookup: Engine
    log: Engine


@contextmanager
def backends(folder: Path, pg_url: str | None, notes: list[str]) -> Iterator[list[Backend]]:
    """SQLite files, plus throw-away PostgreSQL databases when reachable (dropped on exit)."""
    with ExitStack() as stack:

        def migrated(url: str) -> Engine:
            engine = db.create_db_engine(url)
            stack.callback(engine.dispose)
            db.upgrade(engine)
            return engine

        found = [Backend(f"SQLite {sqlite3.sqlite_version}", *(migrated(f"sqlite:///{folder / name}.db")
                                                                for name in ("lookup", "log")))]  # fmt: skip
        if pg_url is None:
            notes.append("PostgreSQL skipped (--no-postgres).")
            yield found
            return
        admin = create_engine(pg_url, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        stack.callback(admin.dispose)
        try:
            with admin.connect() as conn:
                version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
                names = [f"authenticity_bench_{purpose}_{secrets.token_hex(4)}" for purpose in ("lookup", "log")]
                for name in names:
                    conn.execute(text(f'CREATE DATABASE "{name}"'))
                    stack.callback(_execute, admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            urls = [make_url(pg_url).set(database=name).render_as_string(hide_password=False) for name in names]
            found.append(Backend(f"PostgreSQL {version}", *(migrated(url) for url in urls)))
        except OperationalError as exc:
            notes.append(f"PostgreSQL skipped: not reachable ({str(exc.orig).strip().splitlines()[0][:100]}).")
        yield found


def _execute(engine: Engine, sql: str) -> None:
    with engine.connect() as conn:
        conn.execute(text(sql))


def query_plan(engine: Engine, action: Callable[[Session], object], table: str) -> str:
    """The access paths the database chose for the last statement reading *table* during *action*."""
    seen: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if f"FROM {table}" in statement:
            seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", grab)
    try:
        with db.session_scope(engine) as session:
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


def insert_records(engine: Engine, signer_id: int, count: int, rng: random.Random, digests: list[str]) -> None:
    """Synthetic records with manifest-sized payloads (~400 B), each with its log_leaf row as in a real registry."""
    now = datetime.now(UTC)
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
    _execute(engine, "ANALYZE")


def time_lookups(engine: Engine, digests: list[str], count: int, rng: random.Random) -> list[float]:
    """Half hits, half misses, shuffled; one session, identity map cleared before each lookup."""
    hits = rng.sample(digests, count // 2)
    queries = hits + ["sha256:" + rng.randbytes(32).hex() for _ in range(count - len(hits))]
    rng.shuffle(queries)
    expected, samples = set(hits), []
    with db.session_scope(engine) as session:
        for digest in queries[:50]:  # warm the connection, statement cache and pages
            repository.find_record_by_digest(session, digest)
        for digest in queries:
            session.expunge_all()
            record, seconds = timed(partial(repository.find_record_by_digest, session, digest))
            if (record is not None) != (digest in expected):
                raise SystemExit(f"lookup of {digest} returned the wrong answer")
            samples.append(seconds)
    return samples


def bench_lookup(found: list[Backend], sizes: Sizes, seed: int) -> Result:
    result = Result(f"Registry lookup: find_record_by_digest, {sizes.lookups} random digests (half hits)",
                    ["backend", "records", "median µs", "p95 µs", f"ratio vs {sizes.base_records:,}"])  # fmt: skip
    for backend in found:
        rng, engine, baseline = random.Random(seed), backend.lookup, 0.0
        digests: list[str] = []
        with engine.begin() as conn:
            signer_id = add_dummy_signer(conn, "bench-lookup")
        for target in (sizes.base_records, sizes.records):
            insert_records(engine, signer_id, target - len(digests), rng, digests)
            med, p95 = median_p95(time_lookups(engine, digests, sizes.lookups, rng))
            baseline = baseline or med
            result.rows.append([backend.label, f"{target:,}", f"{med * 1e6:.0f}", f"{p95 * 1e6:.0f}",
                                ratio(med / baseline)])  # fmt: skip
        plan = query_plan(engine, partial(repository.find_record_by_digest, content_digest=digests[0]), "record")
        result.notes.append(f"{backend.label} plan: {plan}")
    result.notes.append("Records grow in place from the small to the full size; ANALYZE after each bulk insert.")
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


def grow_log(engine: Engine, tree: merkle.MemoryTree, nodes: list[Any], stored: int, n: int, key: SigningKey) -> int:
    """Insert the nodes of the tree at *n* leaves not stored yet, then a tree head at *n* signed by *key*."""
    wanted = 2 * n - n.bit_count()
    with progress(f"inserting {wanted - stored:,} log_node rows", wanted - stored) as advance:
        for start in range(stored, wanted, INSERT_BATCH):
            chunk = nodes[start : min(wanted, start + INSERT_BATCH)]
            with engine.begin() as conn:
                conn.execute(insert(LogNode), [{"level": lvl, "node_index": idx, "hash": h} for (lvl, idx), h in chunk])
            advance(len(chunk))
    now = datetime.now(UTC)
    head = log.SignedTreeHead(n, tree.root(n), format_timestamp(now), key.key_id, b"")
    row = {"tree_size": n, "root_hash": head.root_hash, "signed_at": now, "key_id": key.key_id,
           "signature": key.sign(log.TREE_HEAD_CONTEXT, head.signed_bytes())}  # fmt: skip
    with engine.begin() as conn:
        conn.execute(insert(TreeHead), row)
    if engine.dialect.name == "postgresql":
        _execute(engine, "ANALYZE log_node")
    return wanted


def log_samples(engine: Engine, tree: merkle.MemoryTree, n: int, record_id: int, key: SigningKey, sizes: Sizes,
                rng: random.Random) -> dict[str, tuple[list[float], float]]:  # fmt: skip
    """Samples per operation and mean proof length; every proof is verified against the in-memory tree."""
    root, factory, lengths = tree.root(n), sessionmaker(engine), {"inclusion": [0], "consistency": [0]}

    def append() -> float:
        with factory() as session:
            session.connection()  # BEGIN (IMMEDIATE on SQLite) here, outside the timed region
            db.lock_log(session)
            now = datetime.now(UTC)
            (index, head), seconds = timed(lambda: log.append_leaf(session, record_id, b"entry", key, now))
            session.rollback()  # the log stays at n leaves; commit + fsync is in the sign benchmark
        if index != n or head.tree_size != n + 1:
            raise SystemExit(f"append at {n} gave leaf {index} and size {head.tree_size}")
        return seconds

    def inclusion(session: Session) -> float:
        leaf = rng.randrange(n)
        proof, seconds = timed(lambda: log.inclusion_proof(session, leaf, n))
        merkle.verify_inclusion(tree.get((0, leaf)), leaf, n, list(proof.hashes), root)
        lengths["inclusion"].append(len(proof.hashes))
        return seconds

    def consistency(session: Session) -> float:
        old = rng.randrange(1, n)
        hashes, seconds = timed(lambda: log.consistency_proof(session, old, n))
        merkle.verify_consistency(old, n, hashes, tree.root(old), root)
        lengths["consistency"].append(len(hashes))
        return seconds

    for _ in range(3):
        append()  # warm-up
    out = {"append_leaf (rolled back)": (sample(append, sizes.appends, sizes.budget_s), 0.0)}
    with db.session_scope(engine) as session:
        for name, one in (("inclusion", inclusion), ("consistency", consistency)):
            one(session)  # warm-up
            lengths[name] = []
            samples = sample(partial(one, session), sizes.proofs, sizes.budget_s)
            out[f"{name}_proof"] = (samples, statistics.mean(lengths[name]))
    return out


def bench_log(backend: Backend, tree: merkle.MemoryTree, nodes: list[Any], sizes: Sizes, seed: int) -> Result:
    engine, rng, key, now = backend.log, random.Random(seed), generate_signing_key(Algorithm.ED25519), datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(insert(LogKey), {"key_id": key.key_id, "algorithm": key.algorithm.value,
                                      "public_key": key.public_key.spki_der, "created_at": now})  # fmt: skip
        record = {"content_digest": "sha256:" + "0" * 64, "signer_id": add_dummy_signer(conn, "bench-log"),
                  "media_type": "image/jpeg", "size_bytes": 1, "manifest": b"{}", "signature": bytes(64),
                  "logged_at": now}  # fmt: skip
        record_id = int(conn.execute(insert(Record).returning(Record.id), record).scalar_one())
    stored, timings = 0, {}
    for n in sizes.log_sizes:
        stored = grow_log(engine, tree, nodes, stored, n, key)
        err.log(f"{backend.label}: log at {n:,} leaves; timing append and proofs")
        timings[n] = log_samples(engine, tree, n, record_id, key, sizes, rng)
    base_n = sizes.log_sizes[0]
    result = Result(f"Transparency log on {backend.label}: time vs leaves (baseline: {base_n:,} leaves)",
                    ["operation", "leaves", "samples", "median ms", "p95 ms", "ratio vs base", "log2 ratio",
                     "hashes"])  # fmt: skip
    for op in timings[base_n]:
        base_med = median_p95(timings[base_n][op][0])[0]
        for n, ops in timings.items():
            (samples, hashes), (med, p95) = ops[op], median_p95(ops[op][0])
            shown = [ms(med), ms(p95), ratio(med / base_med), ratio(math.log2(n) / math.log2(base_n))]
            result.rows.append([op, f"{n:,}", str(len(samples)), *shown, f"{hashes:.1f}" if hashes else ""])
    n = sizes.log_sizes[-1]
    plan = query_plan(engine, lambda s: log.inclusion_proof(s, n // 3, n), "log_node")
    result.notes += [
        f"Node fetch plan at {n:,} leaves: {plan}",
        f"Up to {sizes.appends} appends and {sizes.proofs} random proofs per size, fewer once an operation passes "
        f"{sizes.budget_s:.0f} s (at least 10). Log built directly: MemoryTree nodes bulk-inserted, one signed head.",
    ]
    return result


# ---------------------------------------------------------------- report


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
