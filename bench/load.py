"""Load benchmark of the running HTTP service: concurrent verify uploads plus device registrations.

Starts ``authenticity serve`` on 127.0.0.1 (a fresh home; SQLite by default, PostgreSQL with
``--database-url``), registers a device signer over the admin API, then drives it with
``--clients`` concurrent clients for ``--requests`` ``POST /v1/verify`` uploads of 1 MP JPEGs
(half of them registered originals, half unrelated photos) while one more client registers
``--registrations`` device-signed manifests. Reports p50/p99 latency and throughput, and
checks: 0 errors, every verdict as expected, every registration acknowledged is in the
registry with a log leaf, and ``authenticity log check`` passes afterwards.

Baseline, same run: the same uploads verified in-process (``Verifier.verify``, no HTTP, one
thread) — so the table shows what HTTP + multipart spooling + concurrency cost or gain.

    python bench/load.py --quick                       # smoke run (~1 min)
    python bench/load.py --markdown > out.md           # 8 clients, 2,000 verifies
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authenticity.config import Settings
from authenticity.provenance.keys import generate_signing_key
from authenticity.provenance.manifest import MANIFEST_CONTEXT, Manifest, PerceptualEntry, format_timestamp
from authenticity.registry import db, repository
from authenticity.registry.models import LogLeaf, Record
from authenticity.registry.store import open_registry
from authenticity.verify import Verifier
from bench import Result, err, machine_info, median_p95, ms, print_rich, progress, ratio, to_markdown
from bench.verify import photo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cli(env: dict[str, str], *args: str) -> str:
    proc = subprocess.run([sys.executable, "-m", "authenticity", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"authenticity {' '.join(args)} failed: {proc.stderr}")
    return proc.stdout.strip()


def _p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[max(0, int(0.99 * len(ordered) + 0.5) - 1)]


def _manifest_body(device: Any, n: int) -> dict[str, Any]:
    manifest = Manifest(
        content_digest="sha256:" + f"{n:064x}", media_type="image/jpeg", size_bytes=1000 + n,
        algorithm=device.algorithm, key_id=device.key_id, signed_at=format_timestamp(datetime.now(UTC)),
        perceptual=(PerceptualEntry(hash=f"{n * 7919:064x}", quality=90),),
    )  # fmt: skip
    signature = device.sign(MANIFEST_CONTEXT, manifest.canonical_bytes())
    return {"manifest": manifest.to_dict(), "signature": base64.b64encode(signature).decode()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="100 verifies, 2 clients: a smoke run")
    parser.add_argument("--markdown", action="store_true", help="markdown on stdout (the tables go to stderr)")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--registrations", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--detector", action="store_true", help="serve with the shipped detector (slower)")
    parser.add_argument("--database-url", default=None, help="default: SQLite in the temporary home")
    parser.add_argument("--time-limit", type=float, default=1200.0, help="stop sending after this many seconds")
    args = parser.parse_args(argv)
    if args.quick:
        args.clients, args.requests, args.registrations = 2, 100, 20
    started, load = time.perf_counter(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-load-") as tmp:
        root = Path(tmp)
        env = {**os.environ, "AUTHENTICITY_HOME": str(root / "home"), "HF_HUB_OFFLINE": "1",
               "AUTHENTICITY_KEY_PASSPHRASE": "bench"}  # fmt: skip
        if args.database_url:
            env["AUTHENTICITY_DATABASE_URL"] = args.database_url
        settings = Settings(home=root / "home", database_url=args.database_url)
        _cli(env, "db", "upgrade")
        _cli(env, "signer", "create", "bench-cam")
        admin = _cli(env, "apikey", "create", "bench-admin", "--role", "admin").splitlines()[-1].strip()
        reviewer = _cli(env, "apikey", "create", "bench-reviewer", "--role", "reviewer").splitlines()[-1].strip()
        err.log("writing 1 MP JPEGs and signing half of them")
        originals = [photo(root / f"orig{i}.jpg", seed=i) for i in range(8)]
        _cli(env, "sign", *map(str, originals), "--signer", "bench-cam")
        for p in originals:  # uploads carry the bytes only, as a platform would receive them
            Path(str(p) + ".authenticity.json").unlink()
        unrelated = [photo(root / f"other{i}.jpg", seed=1000 + i) for i in range(8)]
        uploads = [(p, "authentic") for p in originals] + [(p, None) for p in unrelated]

        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        serve = [sys.executable, "-m", "authenticity", "serve", "--host", "127.0.0.1", "--port", str(port),
                 "--workers", str(args.workers), "--log-level", "warning"]  # fmt: skip
        if not args.detector:
            serve.append("--no-detector")
        server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            for _ in range(600):
                try:
                    if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
            device = generate_signing_key()
            r = httpx.post(
                f"{url}/v1/signers",
                headers={"Authorization": f"Bearer {admin}"},
                json={"name": "bench-device", "public_key": device.public_key.pem()},
                timeout=30,
            )
            r.raise_for_status()
            device_key = _cli(env, "apikey", "create", "bench-device", "--role", "signer", "--signer",
                              "bench-device").splitlines()[-1].strip()  # fmt: skip

            expected: dict[Path, str] = {}
            with httpx.Client(timeout=120) as client:  # warm-up: detector load, and the expected states
                for path, state in uploads:
                    resp = client.post(f"{url}/v1/verify", headers={"Authorization": f"Bearer {reviewer}"},
                                       files={"file": (path.name, path.read_bytes(), "image/jpeg")})  # fmt: skip
                    resp.raise_for_status()
                    expected[path] = state or resp.json()["state"]
            payloads = {path: path.read_bytes() for path, _ in uploads}
            latencies: list[float] = []
            errors: list[str] = []
            acked: list[int] = []
            lock = threading.Lock()
            deadline = time.perf_counter() + args.time_limit

            def verify_worker(indices: range, advance: Any) -> None:
                with httpx.Client(timeout=120, headers={"Authorization": f"Bearer {reviewer}"}) as client:
                    for i in indices:
                        if time.perf_counter() > deadline:
                            return
                        path = uploads[i % len(uploads)][0]
                        t0 = time.perf_counter()
                        resp = client.post(
                            f"{url}/v1/verify", files={"file": (path.name, payloads[path], "image/jpeg")}
                        )
                        dt = time.perf_counter() - t0
                        with lock:
                            latencies.append(dt)
                            if resp.status_code != 200:
                                errors.append(f"verify {resp.status_code} {resp.text[:120]}")
                            elif resp.json()["state"] != expected[path]:
                                errors.append(f"verify {path.name}: {resp.json()['state']} != {expected[path]}")
                        advance(1)

            def register_worker() -> None:
                with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {device_key}"}) as client:
                    for n in range(1, args.registrations + 1):
                        if time.perf_counter() > deadline:
                            return
                        resp = client.post(f"{url}/v1/records", json=_manifest_body(device, n))
                        with lock:
                            if resp.status_code == 201:
                                acked.append(int(resp.json()["record_id"]))
                            else:
                                errors.append(f"register {resp.status_code} {resp.text[:120]}")

            per = [range(c, args.requests, args.clients) for c in range(args.clients)]
            with progress(f"{args.requests} verifies, {args.clients} clients", args.requests) as advance:
                t0 = time.perf_counter()
                with ThreadPoolExecutor(args.clients + 1) as pool:
                    futures = [pool.submit(verify_worker, r, advance) for r in per]
                    futures.append(pool.submit(register_worker))
                    for f in futures:
                        f.result()
                wall = time.perf_counter() - t0
            metrics = httpx.get(f"{url}/metrics", timeout=30).text
        finally:
            server.terminate()
            server.wait(timeout=60)

        check = subprocess.run([sys.executable, "-m", "authenticity", "log", "check"], env=env, capture_output=True,
                               text=True, timeout=600, check=False)  # fmt: skip
        engine = open_registry(settings)
        with db.session_scope(engine, read_only=True) as session:
            stored = {rid for rid in acked if repository.get_record(session, rid) is not None}
            logged = {rid for (rid,) in session.query(LogLeaf.record_id).filter(LogLeaf.record_id.in_(acked))}
            records = session.query(Record).count()
        err.log("baseline: the same uploads verified in-process")
        verifier = Verifier(settings, detector=args.detector)
        baseline = []
        for _ in range(3):
            for path, _state in uploads:
                t0 = time.perf_counter()
                verifier.verify(path)
                baseline.append(time.perf_counter() - t0)

    n = len(latencies)
    p50, p99 = median_p95(latencies)[0], _p99(latencies)
    b50 = median_p95(baseline)[0]
    table = Result(
        f"POST /v1/verify under load: {args.clients} clients, {args.workers} uvicorn workers, "
        f"detector {'on' if args.detector else 'off'}",
        ["requests", "errors", "wall s", "throughput req/s", "p50 ms", "p99 ms", "in-process p50 ms",
         "p50 / in-process", "throughput × in-process p50"],
    )  # fmt: skip
    table.rows.append([str(n), str(len(errors)), f"{wall:.1f}", f"{n / wall:.1f}", ms(p50), ms(p99), ms(b50),
                       ratio(p50 / b50), ratio(n / wall * b50)])  # fmt: skip
    reg = Result(
        "Registrations during the load (POST /v1/records, one device client)",
        ["sent", "acknowledged (201)", "in registry", "with log leaf", "records total", "log check"],
    )
    reg.rows.append([str(args.registrations), str(len(acked)), str(len(stored)), str(len(logged)), str(records),
                     "OK" if check.returncode == 0 else "FAILED"])  # fmt: skip
    table.notes += [
        "Uploads: 16 distinct 1 MP JPEGs (q=90), 8 registered originals (expected `authentic`) and 8 unrelated "
        "photos; every response's state is checked against the expected one (a mismatch counts as an error).",
        "In-process baseline: Verifier.verify on the same files, one thread, same database. "
        "'throughput × in-process p50' > 1 means the server does more than one in-process verifier would.",
    ]
    if errors:
        table.notes.append("First errors: " + "; ".join(errors[:5]))
    verdict_lines = [ln for ln in metrics.splitlines() if ln.startswith("authenticity_verdicts_total")]
    if verdict_lines:
        reg.notes.append("Server metrics (one worker's view): " + ", ".join(verdict_lines[:4]))
    info = [
        *machine_info([("httpx", httpx.__version__)], load),
        ("wall time", f"{time.perf_counter() - started:.0f} s"),
    ]
    results = [table, reg]
    if args.markdown:
        print_rich(results, info, err)
        command = " ".join(["python bench/load.py", *sys.argv[1:]])
        print(f"### HTTP service under load\n\n{to_markdown(results, info, command)}")
    else:
        print_rich(results, info, Console())
    ok = not errors and len(stored) == len(logged) == len(acked) and check.returncode == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
