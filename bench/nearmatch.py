"""Benchmark of the PDQ near-match index: query latency against a linear scan, 10^4 to 10^6 hashes.

For each size it stores random 256-bit hashes plus planted near-duplicates (copies of
the query hashes with 0-40 bits flipped, so matches straddle the threshold of 31), then
times :meth:`NearMatchIndex.query` and :func:`linear_scan` on the same queries, round
by round (CONVENTIONS rule 13), and checks that both return identical matches. Half the
queries have planted neighbours, half are fresh random hashes (misses). A second table
shows how the index cost grows with ``max_distance`` at the largest size.

    python bench/nearmatch.py                       # about a minute on 2 cores
    python bench/nearmatch.py --quick               # smoke run
    python bench/nearmatch.py --markdown > out.md   # markdown on stdout, tables on stderr
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from rich.console import Console

from authenticity.media.pdq import MATCH_DISTANCE
from authenticity.registry.nearmatch import Match, NearMatchIndex, linear_scan

if __package__ in (None, ""):  # run as `python bench/nearmatch.py`: the checkout root holds `bench`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import Result, err, interleaved, machine_info, ms, print_rich, ratio, timed, to_markdown

FULL_SIZES, QUICK_SIZES = (10_000, 100_000, 1_000_000), (10_000, 100_000)
COPIES_PER_QUERY = 8  # planted near-duplicates around each query hash, at 0..40 bits
DISTANCES = (15, 31, 47, 63)


def flipped(rng: np.random.Generator, h: NDArray[np.uint8], bits: int) -> NDArray[np.uint8]:
    """*h* with *bits* distinct random bits flipped."""
    mask = np.zeros(256, np.uint8)
    mask[rng.choice(256, bits, replace=False)] = 1
    return h ^ np.packbits(mask)


def dataset(size: int, queries: int, seed: int) -> tuple[NDArray[np.uint8], list[bytes]]:
    """*size* stored hashes (random, with planted near-duplicates) and the query hashes."""
    rng = np.random.default_rng(seed)
    stored = rng.integers(0, 256, (size, 32), dtype=np.uint8)
    centres = rng.integers(0, 256, (queries, 32), dtype=np.uint8)
    rows = iter(rng.permutation(size))
    for centre in centres[: queries // 2]:  # the other half are misses
        for _ in range(COPIES_PER_QUERY):
            stored[next(rows)] = flipped(rng, centre, int(rng.integers(0, 41)))
    return stored, [c.tobytes() for c in centres]


def case(run: Callable[[bytes], list[Match]], queries: list[bytes], out: list[list[Match]]) -> Callable[[], float]:
    """One query per call, through *queries* in order; keeps the answers for the equality check."""
    remaining = iter(queries)

    def one() -> float:
        matches, seconds = timed(lambda: run(next(remaining)))
        out.append(matches)
        return seconds

    return one


def p50_p99(samples: list[float]) -> tuple[float, float]:
    """Median and nearest-rank 99th percentile."""
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]


def compare(index: NearMatchIndex, stored: NDArray[np.uint8], queries: list[bytes], max_distance: int) -> list[str]:
    """Time both on every query (interleaved); the cells of one table row."""
    answers: tuple[list[list[Match]], list[list[Match]]] = ([], [])
    cases = [case(lambda q: index.query(q, max_distance), queries, answers[0]),
             case(lambda q: linear_scan(stored, q, max_distance), queries, answers[1])]  # fmt: skip
    index_s, scan_s = interleaved(cases, len(queries), math.inf)
    if answers[0] != answers[1]:
        raise SystemExit(f"index and linear scan disagree at {len(stored):,} hashes, max_distance {max_distance}")
    (i50, i99), (s50, s99) = p50_p99(index_s), p50_p99(scan_s)
    found = sum(map(len, answers[0])) / len(queries)
    return [str(len(queries)), ms(i50), ms(i99), ms(s50), ms(s99), ratio(s50 / i50), f"{found:.1f}", "yes"]


def built(stored: NDArray[np.uint8], queries: list[bytes]) -> tuple[NearMatchIndex, float]:
    index = NearMatchIndex()
    _, seconds = timed(lambda: index.add_many(np.arange(len(stored)), stored))
    for q in queries[:20]:  # warm caches and numpy's dispatch before timing
        index.query(q)
        linear_scan(stored, q)
    return index, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few queries, for a smoke run")
    parser.add_argument("--markdown", action="store_true", help="markdown on stdout (the tables go to stderr)")
    parser.add_argument("--seed", type=int, default=31)
    args = parser.parse_args(argv)
    started, load = time.perf_counter(), os.getloadavg()[0]
    sizes, queries = (QUICK_SIZES, 40) if args.quick else (FULL_SIZES, 400)
    by_size = Result(
        f"PDQ near-match: NearMatchIndex.query vs linear_scan, max_distance {MATCH_DISTANCE}",
        ["hashes", "build s", "queries", "index p50 ms", "index p99 ms", "scan p50 ms", "scan p99 ms",
         "speedup (p50)", "matches/query", "identical"],
    )  # fmt: skip
    by_distance = Result(
        f"Cost of max_distance at {sizes[-1]:,} hashes",
        ["max_distance", "probe radius", "queries", "index p50 ms", "index p99 ms", "scan p50 ms", "scan p99 ms",
         "speedup (p50)", "matches/query", "identical"],
    )  # fmt: skip
    for size in sizes:
        stored, asked = dataset(size, queries, args.seed)
        index, build_s = built(stored, asked)
        err.log(f"{size:,} hashes: index built in {build_s:.2f} s; timing {queries} queries")
        by_size.rows.append([f"{size:,}", f"{build_s:.2f}", *compare(index, stored, asked, MATCH_DISTANCE)])
    for distance in DISTANCES:  # the last size's index is still in hand
        radius = str(distance // 16) if distance // 16 <= 2 else "scan"
        err.log(f"max_distance {distance}: timing {queries} queries")
        by_distance.rows.append([str(distance), radius, *compare(index, stored, asked, distance)])
    by_size.notes += [
        f"Stored: random hashes plus {COPIES_PER_QUERY} planted copies (0-40 bits flipped) of each of half the "
        "queries; the other half are fresh random hashes. Build = add_many of all rows (numpy radix sort per chunk).",
        "Index: 16 chunks of 16 bits, probing radius max_distance // 16 per chunk (exact by pigeonhole). Baseline: "
        "linear_scan, one vectorised XOR + popcount over every stored hash. speedup = scan p50 / index p50.",
        "Both run on the same queries in turn (interleaved); every query's answers are checked equal.",
    ]
    by_distance.notes.append("Radius 3 and up (max_distance ≥ 48) falls back to a full scan inside the index.")
    info = [*machine_info([("numpy", np.__version__)], load), ("wall time", f"{time.perf_counter() - started:.0f} s")]
    results = [by_size, by_distance]
    if args.markdown:
        print_rich(results, info, err)
        command = " ".join(["python bench/nearmatch.py", *sys.argv[1:]])
        print(f"### PDQ near-match index\n\n{to_markdown(results, info, command)}")
    else:
        print_rich(results, info, Console())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
