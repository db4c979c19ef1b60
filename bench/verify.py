"""Benchmark of end-to-end ``Verifier.verify`` on 1 MP JPEGs, with and without the detector.

Cases, run in turn on the same files (interleaved, so background load hits all alike):

* **baseline** — what provenance-only verification cannot avoid: decode the JPEG (OpenCV),
  SHA-256 of the file, PDQ of the decoded image;
* **provenance only** — ``Verifier(detector=False).verify``: the baseline plus sniffing and
  header checks, sidecar, C2PA read, registry lookup, near-match index query, and for a
  registered file the signature, revocation and log-inclusion checks;
* **with detector** — ``Verifier(detector=True).verify``: the above plus the shipped detector.

Three kinds of input: registered originals (exact hash hit), re-encoded copies (near-match
path: PDQ + index + the original's record checks), and unrelated photos (every channel misses).
The registry holds the originals plus ``--registered`` extra records, on SQLite.

    python bench/verify.py --quick                 # smoke run
    python bench/verify.py --markdown > out.md     # markdown on stdout, tables on stderr
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from rich.console import Console

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authenticity.config import Settings
from authenticity.media.pdq import pdq_image
from authenticity.provenance.capture import Signer
from authenticity.provenance.keys import Algorithm
from authenticity.provenance.keystore import create_signer_key
from authenticity.registry import db, repository
from authenticity.registry.store import open_registry
from authenticity.verify import Verifier
from bench import Result, err, interleaved, machine_info, median_p95, ms, print_rich, ratio, to_markdown

PASSPHRASE = b"bench"


def photo(path: Path, seed: int, size: tuple[int, int] = (864, 1152)) -> Path:
    """A 1 MP photo-like JPEG (texture at every scale, q=90)."""
    rng = np.random.default_rng(seed)
    h, w = size
    img = cv2.resize(rng.integers(0, 256, (h // 32, w // 32, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    for _ in range(30):
        center = (int(rng.integers(0, w)), int(rng.integers(0, h)))
        cv2.circle(img, center, int(rng.integers(10, 120)), [int(v) for v in rng.integers(0, 256, 3)], -1)
    noise = np.asarray(rng.integers(0, 16, img.shape, dtype=np.uint8), np.uint8)
    img = cv2.add(cv2.GaussianBlur(img, (5, 5), 0), noise)
    cv2.imwrite(str(path), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path


def reencode(src: Path, dst: Path) -> Path:
    img = cv2.imread(str(src))
    assert img is not None
    cv2.imwrite(str(dst), cv2.resize(img, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, 80])  # fmt: skip
    return dst


def baseline(path: Path) -> float:
    start = time.perf_counter()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert digest and img is not None
    pdq_image(img)
    return time.perf_counter() - start


def verify_case(verifier: Verifier, path: Path, expect: str) -> Callable[[], float]:
    def run() -> float:
        start = time.perf_counter()
        verdict = verifier.verify(path)
        seconds = time.perf_counter() - start
        assert verdict.state.value == expect, (path, verdict.state, verdict.codes)
        return seconds

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="few files and rounds, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="markdown on stdout (the tables go to stderr)")
    parser.add_argument("--files", type=int, default=6, help="files per kind")
    parser.add_argument("--registered", type=int, default=200, help="extra registered records in the registry")
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the detector")
    args = parser.parse_args(argv)
    files, extra, rounds = (2, 10, 3) if args.quick else (args.files, args.registered, 8)
    started, load = time.perf_counter(), os.getloadavg()[0]
    import torch

    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as tmp:
        root = Path(tmp)
        settings = Settings(home=root / "home")
        engine = open_registry(settings)
        key = create_signer_key(settings, "bench-cam", Algorithm.ED25519, PASSPHRASE)
        with db.session_scope(engine) as session:
            from datetime import UTC, datetime

            repository.add_signer(session, "bench-cam", key.public_key, datetime.now(UTC))
        signer = Signer(settings, "bench-cam", PASSPHRASE)
        err.log(f"registering {files + extra} originals")
        originals = [photo(root / f"orig{i}.jpg", seed=i) for i in range(files)]
        for path in originals:
            signer.sign(path)
        for i in range(extra):
            signer.sign(photo(root / f"extra{i}.jpg", seed=10_000 + i, size=(96, 128)))
        copies = [reencode(p, root / f"copy{i}.jpg") for i, p in enumerate(originals)]
        unrelated = [photo(root / f"other{i}.jpg", seed=50_000 + i) for i in range(files)]
        for p in originals:  # sidecars are part of the registered case; copies and others have none
            assert Path(str(p) + ".authenticity.json").exists()
        plain = Verifier(settings, detector=False)
        full = Verifier(settings, detector=True)
        kinds = [("registered original", originals, "authentic"), ("re-encoded copy (q80, 0.75×)", copies,
                 "authentic-derivative"), ("unrelated photo", unrelated, None)]  # fmt: skip
        table = Result(
            "verify latency per 1 MP JPEG (median / p95 ms) and ratio to the baseline",
            ["input", "baseline: decode+sha256+PDQ", "provenance only", "ratio", "with detector", "ratio",
             "provenance files/s", "detector files/s"],
        )  # fmt: skip
        for name, paths, expect in kinds:
            base, prov, det = [], [], []
            for path in paths:
                want_plain = expect or "unverified"
                full_expect = expect or full.verify(path).state.value
                samples = interleaved(
                    [functools.partial(baseline, path), verify_case(plain, path, want_plain),
                     verify_case(full, path, full_expect)],
                    count=rounds, budget_s=20.0 if not args.quick else 3.0, minimum=rounds,
                )  # fmt: skip
                base += samples[0]
                prov += samples[1]
                det += samples[2]
            (b50, b95), (p50, p95), (d50, d95) = median_p95(base), median_p95(prov), median_p95(det)
            table.rows.append(
                [
                    name,
                    f"{ms(b50)} / {ms(b95)}",
                    f"{ms(p50)} / {ms(p95)}",
                    ratio(p50 / b50),
                    f"{ms(d50)} / {ms(d95)}",
                    ratio(d50 / b50),
                    f"{1 / p50:.1f}",
                    f"{1 / d50:.1f}",
                ]
            )
            err.log(f"{name}: baseline {ms(b50)} ms, provenance {ms(p50)} ms, with detector {ms(d50)} ms")
        table.notes += [
            f"{files} files per kind, {rounds} interleaved rounds each; registry: SQLite with "
            f"{files + extra} records; detector: shipped model, {args.threads} torch thread(s).",
            "Provenance only also sniffs and checks the header, reads the sidecar and any C2PA manifest, "
            "looks up the digest, and (registered) verifies signature + revocation + log inclusion under the "
            "signed head + consistency from the sidecar's head, or (copy) queries the PDQ index and verifies "
            "the matched original's record.",
        ]
    info = [
        *machine_info([("torch", torch.__version__)], load),
        ("wall time", f"{time.perf_counter() - started:.0f} s"),
    ]
    if args.markdown:
        print_rich([table], info, err)
        command = " ".join(["python bench/verify.py", *sys.argv[1:]])
        print(f"### End-to-end verify\n\n{to_markdown([table], info, command)}")
    else:
        print_rich([table], info, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
