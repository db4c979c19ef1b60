"""Soups and ensembles of several seeds against the seeds alone, in and out of distribution.

Input is a ``bench/lofo.py --keep-weights`` results folder in which one recipe ran with several
seeds (variants ``s0``, ``s1``, ... of one recipe), each on every family (``none``) and with
some families held out. For each held-out family (and ``none``) and each size k, the first k
seeds are combined two ways and measured on the same test split, exactly as the LOFO runs are
(``lofo.summarise``: AUC of every family against all test reals, clean and after JPEG 75):

- **soup**: the uniform average of their weights (``bench/soup.py``), one network, scored anew;
- **ensemble**: the mean of their logits (from each run's ``scores.npz``), k networks at
  scoring time.

    python bench/soup_sweep.py --lofo OUT --workdir W --seeds s0,s1,s2,s3 --held-out none,dcgan --sizes 2,4

Writes ``OUT/sweep/<soup|ensemble><k>__<held-out>.json`` (plus each soup's weights and
scores beside it) and ``OUT/sweep/sweep__<held-out>.md``: per held-out family, each seed, the seeds'
mean, then each ensemble and soup, on that family (``none``: on all families) and, for the
all-family models, the share of test reals flagged at the logit that catches 90 % of fakes.

With ``--pairs`` it ensembles every pair of the given runs instead (no soups, so the runs
may differ in recipe, for example in initialisation) and reports each pair's gain over the
mean of its two runs: ``OUT/sweep/pair__<a>+<b>__<held-out>.json`` and ``pairs__<held-out>.md``.

    python bench/soup_sweep.py --lofo OUT --workdir W --seeds s0,s1,in1 --held-out dcgan --pairs
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from authenticity.errors import AuthenticityError
from bench import lofo
from bench.soup import soup

CONDITIONS = ("clean", "jpeg_q75")


def _weights(out: Path, seed: str, held_out: str) -> Path:
    return out / "weights" / (f"{seed}.safetensors" if held_out == lofo.ALL else f"{seed}__{held_out}.safetensors")


def _scores(out: Path, seed: str, held_out: str) -> dict[str, np.ndarray]:
    with np.load(out / "runs" / f"{seed}__{held_out}" / "scores.npz") as npz:
        return {key: npz[key] for key in npz.files}


def flagged_reals(label: np.ndarray, source: np.ndarray, z: np.ndarray, tpr: float = 0.9) -> dict[str, float]:
    """Share of reals (all, and per real source) at or above the logit that flags ``tpr`` of the fakes."""
    cut = np.quantile(z[label == 1], 1.0 - tpr)
    real = label == 0
    shares = {"all": float(np.mean(z[real] >= cut))}
    for name in sorted(set(source[real].tolist())):
        shares[name] = float(np.mean(z[real & (source == name)] >= cut))
    return shares


def ensemble(runs: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Mean logits of runs scored on one test split (refused if their files differ)."""
    first = runs[0]
    for other in runs[1:]:
        if not np.array_equal(other["path"], first["path"]):
            raise SystemExit("error: the runs were scored on different test files; rerun them on one workdir")
    return {**{k: first[k] for k in ("path", "label", "source")},
            **{c: np.mean([r[c] for r in runs], axis=0) for c in CONDITIONS}}  # fmt: skip


def _result(scores: dict[str, np.ndarray], held_out: str) -> dict[str, Any]:
    exclude = () if held_out == lofo.ALL else (held_out,)
    result = lofo.summarise(scores["label"], scores["source"], {c: scores[c] for c in CONDITIONS}, exclude)
    result["flagged_reals_at_90tpr"] = flagged_reals(scores["label"], scores["source"], scores["clean"])
    return result


def _measure_soup(paths: list[Path], workdir: Path, held_out: str, sweep: Path, name: str) -> dict[str, Any]:
    import torch

    from authenticity.detection.model import save_detector
    from authenticity.detection.train.finetune import load_items

    model, cfg = soup(paths)
    save_detector(model, cfg, sweep / f"{name}.safetensors")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    test = load_items(workdir / "dataset", "test")
    exclude = () if held_out == lofo.ALL else (held_out,)
    lofo._measure(model, cfg, test, exclude, device, sweep / f"{name}.npz")
    with np.load(sweep / f"{name}.npz") as npz:
        return _result({key: npz[key] for key in npz.files}, held_out)


def headline(result: dict[str, Any], held_out: str, condition: str) -> float:
    """The figure a row reports: the held-out family's AUC, or for ``none`` the all-family AUC."""
    cell = result[condition]
    return float(cell["auc_all"] if held_out == lofo.ALL else cell["per_family"][held_out])


def report(rows: dict[str, list[tuple[str, dict[str, Any]]]]) -> str:
    """Markdown tables, one per held-out family; a ``gain`` entry (pairs) adds a column."""
    lines: list[str] = []
    for held_out, entries in rows.items():
        what = "all families (in distribution)" if held_out == lofo.ALL else f"`{held_out}` (held out: unseen)"
        gains = any("gain" in result for _, result in entries)
        lines += [f"### {what}", "",
                  "| model | clean AUC | JPEG 75 AUC | reals flagged at 90 % TPR (all / photo / face) |"
                  + (" gain over the pair's mean, clean / JPEG 75 |" if gains else ""),
                  "|---|---:|---:|---:|" + ("---:|" if gains else "")]  # fmt: skip
        for name, result in entries:
            flagged = result.get("flagged_reals_at_90tpr")
            shares = (" / ".join(f"{100 * flagged.get(k, float('nan')):.0f} %" for k in ("all", "photo", "face"))
                      if flagged else "—")  # fmt: skip
            gain = result.get("gain")
            extra = (f" {gain['clean']:+.3f} / {gain['jpeg_q75']:+.3f} |" if gain else " |") if gains else ""
            lines.append(f"| {name} | {headline(result, held_out, 'clean'):.3f} "
                         f"| {headline(result, held_out, 'jpeg_q75'):.3f} | {shares} |{extra}")  # fmt: skip
        lines.append("")
    return "\n".join(lines)


def pair_rows(names: list[str], runs: list[dict[str, np.ndarray]], held_out: str) -> list[tuple[str, dict[str, Any]]]:
    """Each run, then the ensemble of every pair (``of``: its two runs) with its gain over their mean."""
    singles = {name: _result(r, held_out) for name, r in zip(names, runs, strict=True)}
    rows: list[tuple[str, dict[str, Any]]] = list(singles.items())
    for (a, ra), (b, rb) in itertools.combinations(zip(names, runs, strict=True), 2):
        result = {"of": [a, b], **_result(ensemble([ra, rb]), held_out)}
        result["gain"] = {c: headline(result, held_out, c)
                          - (headline(singles[a], held_out, c) + headline(singles[b], held_out, c)) / 2
                          for c in CONDITIONS}  # fmt: skip
        rows.append((f"{a} + {b}", result))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lofo", type=Path, required=True, help="a bench/lofo.py --keep-weights results folder")
    parser.add_argument("--workdir", type=Path, required=True, help="the training workdir those runs used")
    parser.add_argument("--seeds", required=True, help="the runs' variant names (seeds), in the order soups take them")
    parser.add_argument("--held-out", default=lofo.ALL, help="held-out families (none: the all-family runs)")
    parser.add_argument("--sizes", help="how many seeds each soup and ensemble takes (default: 2)")
    parser.add_argument("--pairs", action="store_true", help="ensemble every pair of the runs instead (no soups)")
    args = parser.parse_args(argv)
    seeds = [s for s in args.seeds.split(",") if s]
    held = [h for h in args.held_out.split(",") if h]
    if args.pairs and args.sizes is not None:
        print("error: --pairs takes no --sizes: every pair is an ensemble of two", file=sys.stderr)
        return 2
    if args.pairs and (len(seeds) < 2 or len(set(seeds)) < len(seeds)):
        print(f"error: --pairs needs two or more different runs in --seeds, not {args.seeds!r}", file=sys.stderr)
        return 2
    args.sizes = "2" if args.sizes is None or args.pairs else args.sizes
    try:
        sizes = sorted({int(k) for k in args.sizes.split(",") if k})
    except ValueError:
        print(f"error: --sizes {args.sizes!r}: give whole numbers, e.g. 2,4", file=sys.stderr)
        return 2
    if not sizes or sizes[0] < 2 or sizes[-1] > len(seeds):
        print(f"error: --sizes {args.sizes!r}: each size must be 2..{len(seeds)} (the number of --seeds)",
              file=sys.stderr)  # fmt: skip
        return 2
    unknown = [h for h in held if h != lofo.ALL and h not in lofo.FAMILIES]
    if unknown:
        print(f"error: unknown family {', '.join(unknown)}: use none or {', '.join(lofo.FAMILIES)}", file=sys.stderr)
        return 2
    missing = [str(p) for h in held for s in seeds  # pairs ensemble logits: they need no weights
               for p in ((() if args.pairs else (_weights(args.lofo, s, h),))
                         + (args.lofo / "runs" / f"{s}__{h}" / "scores.npz",))
               if not p.is_file()]  # fmt: skip
    if missing:
        runner = "bench/lofo.py" if args.pairs else "bench/lofo.py --keep-weights"
        print(f"error: missing (run {runner} first): {', '.join(missing)}", file=sys.stderr)
        return 2
    scored = {h: [_scores(args.lofo, s, h) for s in seeds] for h in held}
    absent = [h for h, runs in scored.items() if h != lofo.ALL and h not in runs[0]["source"][runs[0]["label"] == 1]]
    if absent:
        print(f"error: the test split holds no fakes of {', '.join(absent)}", file=sys.stderr)
        return 2
    first = next(iter(scored.values()))[0]["path"]
    if any(not np.array_equal(r["path"], first) for runs in scored.values() for r in runs):
        print("error: the runs were scored on different test files; rerun them on one workdir", file=sys.stderr)
        return 2
    sweep = args.lofo / "sweep"
    if args.pairs:
        sweep.mkdir(exist_ok=True)
        pairs = {h: pair_rows(seeds, runs, h) for h, runs in scored.items()}
        for h, entries in pairs.items():
            for _, result in entries[len(seeds) :]:
                a, b = result["of"]
                (sweep / f"pair__{a}+{b}__{h}.json").write_text(json.dumps(result, indent=2) + "\n")
        text = report(pairs)
        (sweep / f"pairs__{'-'.join(held)}.md").write_text(text)
        print(text)
        return 0
    try:  # every weight file loads and fits before anything is written
        for h in held:
            soup([_weights(args.lofo, s, h) for s in seeds])
    except AuthenticityError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 2
    sweep.mkdir(exist_ok=True)
    rows: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for h, runs in scored.items():
        singles = [(s, _result(r, h)) for s, r in zip(seeds, runs, strict=True)]
        mean = {c: {"auc_all": float(np.mean([r[c]["auc_all"] for _, r in singles])),
                    "per_family": {h: float(np.mean([r[c]["per_family"][h] for _, r in singles]))}
                    if h != lofo.ALL else {}} for c in CONDITIONS}  # fmt: skip
        rows[h] = [*singles, (f"mean of {len(seeds)} seeds", mean)]
        for k in sizes:
            for kind in ("ensemble", "soup"):
                name = f"{kind}{k}__{h}"
                if kind == "ensemble":
                    result = _result(ensemble(runs[:k]), h)
                else:
                    result = _measure_soup([_weights(args.lofo, s, h) for s in seeds[:k]], args.workdir, h, sweep, name)
                (sweep / f"{name}.json").write_text(json.dumps({"of": seeds[:k], **result}, indent=2) + "\n")
                rows[h].append((f"{kind} of {k}", result))
                print(f"{name}: clean {headline(result, h, 'clean'):.3f}", flush=True)
    text = report(rows)
    (sweep / f"sweep__{'-'.join(held)}.md").write_text(text)  # one per --held-out list: sweeps can run side by side
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
