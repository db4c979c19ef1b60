"""Shared harness for the benchmark scripts in ``bench/`` (CONVENTIONS rule 13).

A benchmark is a script, ``python bench/NAME.py``, not a timed test. It measures each
figure against a baseline taken in the same run and reports the ratio, prints its tables
with rich, and with ``--markdown`` prints the same tables as markdown for
``docs/benchmarks.md``. This module holds what every such script needs: timing,
statistics, progress on stderr, a description of the machine, and the two renderers.

>>> samples = [timed(lambda: sum(range(1000)))[1] for _ in range(20)]
>>> median, p95 = median_p95(samples)
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

__all__ = [
    "Result",
    "err",
    "interleaved",
    "machine_info",
    "median_p95",
    "ms",
    "print_rich",
    "progress",
    "ratio",
    "timed",
    "to_markdown",
]

T = TypeVar("T")
err = Console(stderr=True)
"""Progress and log lines go to stderr, so stdout carries only the report."""


@dataclass
class Result:
    """One table of a report: a title, columns, rows of already formatted cells, and notes under it."""

    title: str
    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """Call *fn*; return its value and the seconds it took (``time.perf_counter``)."""
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def interleaved(
    cases: Sequence[Callable[[], float]], count: int, budget_s: float, minimum: int = 10
) -> list[list[float]]:
    """Run every case once per round, for *count* rounds or fewer once past *budget_s*; samples per case.

    Each case returns the seconds it measured. Running a measurement and its baseline in
    turn, rather than one after the other, means background load that comes and goes hits
    both alike, so their ratio stays meaningful on a busy machine. At least *minimum*
    rounds run whatever the budget, so a slow case still has a median.

    >>> [len(s) for s in interleaved([lambda: 0.0, lambda: 0.0], count=5, budget_s=1.0)]
    [5, 5]
    """
    samples: list[list[float]] = [[] for _ in cases]
    deadline = time.perf_counter() + budget_s
    for done in range(count):
        if done >= minimum and time.perf_counter() > deadline:
            break
        for case, out in zip(cases, samples, strict=True):
            out.append(case())
    return samples


def median_p95(samples: list[float]) -> tuple[float, float]:
    """Median and nearest-rank 95th percentile.

    >>> median_p95([float(i) for i in range(1, 101)])
    (50.5, 95.0)
    """
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    """Seconds as milliseconds with two decimals.

    >>> ms(0.0123)
    '12.30'
    """
    return f"{seconds * 1e3:.2f}"


def ratio(value: float) -> str:
    """A ratio as shown in the tables.

    >>> ratio(2.5)
    '2.50×'
    """
    return f"{value:.2f}×"


@contextmanager
def progress(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """A transient rich progress bar on stderr; yields ``advance(n)``; logs a line when done."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
    err.log(f"{description}: done")


def machine_info(extra: list[tuple[str, str]], load_at_start: float) -> list[tuple[str, str]]:
    """Date, CPU and usable cores, OS, Python, *extra* entries, git commit and load average."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), "?")
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False)
    return [
        ("date (UTC)", datetime.now(UTC).strftime("%Y-%m-%d %H:%M")),
        ("cpu", f"{cpu or platform.processor()}, {len(os.sched_getaffinity(0))} cores usable (nproc)"),
        ("os", platform.platform()),
        ("python", platform.python_version()),
        *extra,
        ("commit", git.stdout.strip() or "unknown"),
        ("load average (1 min) at start / end", f"{load_at_start:.2f} / {os.getloadavg()[0]:.2f}"),
    ]


def print_rich(results: list[Result], info: list[tuple[str, str]], console: Console) -> None:
    """The machine line, then each table with its notes."""
    console.print(" · ".join(f"{k}: {v}" for k, v in info), style="dim")
    for result in results:
        table = Table(*result.columns, title=result.title, title_justify="left")
        for row in result.rows:
            table.add_row(*row)
        console.print(table)
        for note in result.notes:
            console.print(f"  {note}", style="dim")


def to_markdown(results: list[Result], info: list[tuple[str, str]], command: str) -> str:
    """The command, the machine as a list, then each table (first column left-aligned) with its notes."""
    lines = [f"Command: `{command}`", "", *(f"- {k}: {v}" for k, v in info), ""]
    for result in results:
        lines += [f"#### {result.title}", "", "| " + " | ".join(result.columns) + " |"]
        lines.append("|" + "|".join(["---", *["---:"] * (len(result.columns) - 1)]) + "|")
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in result.rows]
        lines += ["", *(f"- {note}" for note in result.notes), ""]
    return "\n".join(lines)
