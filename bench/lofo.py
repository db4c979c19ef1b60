"""Leave-one-family-out with the full fine-tuning recipe, for several recipe variants.

For every variant and every fake family F, the detector is fine-tuned exactly as
``authenticity detector train`` does (same GAN-discriminator init, dataset, sampler,
augmentation, PGD hardening, seed) but with F left out of training; it is then scored on
the test split (files no run trained on), where F's AUC against all test reals is the
unseen-family number, clean and after JPEG q=75 on both classes. One more run per variant
trains on every family (the in-distribution model); with ``--attacks`` it is also attacked
white-box (FGSM, PGD-10 at ε = 1, 2, 4 /255) on a stratified subset.

Input is a finished training workdir (``gan/`` and ``dataset/``). Runs go in parallel
processes (one torch thread each); on a machine with a GPU the arithmetic runs there.

    python bench/lofo.py --workdir /tmp/train_run --out /tmp/lofo \\
        --variant base:depth=0 --variant local:depth=4 --jobs 2

Writes ``OUT/<variant>__<held-out>.json`` per run, every test file's logits in
``OUT/runs/<variant>__<held-out>/scores.npz``, the all-family models' weights in
``OUT/weights/<variant>.safetensors`` (every run's with ``--keep-weights``, for
``bench/soup.py``), and ``OUT/lofo.md`` (the tables in docs/detector.md). A variant
with ``ema=`` (TrainParams.ema) is measured twice from one run:
its averaged weights as ``<variant>``, its last weights as ``<variant>-final``.
``--plot PNG`` also draws every run's unseen-family AUC (one column per held-out family);
``--report-only`` trains nothing and rebuilds the tables (and the plot) from ``OUT``:

    python bench/lofo.py --out /tmp/lofo --report-only --variant s0 --variant s1:seed=1 \\
        --plot docs/img/lofo_recipe2.png

``--attack-subset`` trains nothing either: it links the stratified test subset that
``--attacks`` attacks into ``OUT``, so a shipped model can be attacked on the same files:

    python bench/lofo.py --workdir /tmp/train_run --out /tmp/subset --attack-subset
    authenticity detector eval --real /tmp/subset/real --fake /tmp/subset/fake --attack fgsm,pgd
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from multiprocessing import get_context
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from authenticity.detection._transforms import ROBUSTNESS
from authenticity.detection.config import FAKE_FAMILIES, INPUT_TRANSFORMS, InputTransform, input_transform_named

FAMILIES = tuple(sorted(FAKE_FAMILIES))
ALL = "none"  # the run that holds no family out
MATCHED_TPR = 0.85  # the report's reals-flagged table: the line where the all-family model flags this share of fakes
CONDITIONS = ("clean", "jpeg_q75")  # what every run is measured in; --conditions adds more (e.g. upscale_2x)
FINAL = "-final"  # suffix of the arm that measures an averaged run's last trained weights


def _flag(value: str) -> bool:
    return value not in ("0", "false", "no")


def _input_transform(value: str) -> InputTransform:
    transform = input_transform_named(value)
    if transform is not None:
        return transform
    raise SystemExit(f"unknown input transform {value!r}: use {', '.join(INPUT_TRANSFORMS)}")


def _family_weights(value: str) -> tuple[tuple[str, float], ...]:
    """``blend=1.2+sd=0.5`` as TrainParams.family_weights (ValueError on a bad one, as the CLI refuses it)."""
    from authenticity.detection.train.finetune import parse_family_weights

    return parse_family_weights(filter(None, value.split("+")), FAMILIES)


@dataclass(frozen=True)
class Variant:
    name: str
    depth: int = 0
    input_transform: InputTransform = "rgb"  # DetectorCfg.input_transform
    steps: int = 1500
    freeze: int = 2
    adv_fraction: float = 0.25
    adv_steps: int = 2
    small_rescale: float = 0.0
    enlarge: float = 0.0  # TrainParams.enlarge
    pair_blends: bool = False  # TrainParams.pair_blends
    init: str = "gan"  # gan (the adversarial stage's discriminator) | imagenet | scratch
    drop: tuple[str, ...] = ()  # families no run of this variant trains on (e.g. the recipe before a family existed)
    lofo: bool = True  # False: only the all-family run (e.g. an adversarial-training variant)
    seed: int | None = None  # None: the run's --seed (a second seed of a recipe is a variant of its own)
    ema: float = 0.0  # TrainParams.ema; > 0 also measures the run's final weights, as variant ``<name>-final``
    detail_bins: int = 0  # TrainParams.detail_bins: reals drawn to match the fakes' fine-detail distribution
    family_weights: tuple[tuple[str, float], ...] = ()  # TrainParams.family_weights: a family's share of fake draws
    undo_enlargement: bool = False  # TrainParams and DetectorCfg undo_enlargement: trained and scored shrunk back

    def arms(self) -> list[Variant]:
        """The variants one run of this one measures: itself, and with ``ema`` its final weights too."""
        return [self, replace(self, name=f"{self.name}{FINAL}", ema=0.0)] if self.ema else [self]

    @classmethod
    def parse(cls, text: str) -> Variant:
        """``name:key=value,...``; keys: depth input steps freeze adv adv_steps small enlarge pair init lofo drop seed
        ema detail weight undo.

        ``drop`` takes families joined by ``+`` (``drop=autoenc+sd``); ``weight`` takes
        ``FAMILY=W`` joined by ``+``, as ``detector train --family-weight`` (``weight=blend=1.2+sd=0.5``).
        """
        name, _, rest = text.partition(":")
        kinds: dict[str, tuple[str, Callable[[str], Any]]] = {
            "depth": ("depth", int), "input": ("input_transform", _input_transform),
            "steps": ("steps", int), "freeze": ("freeze", int),
            "adv": ("adv_fraction", float), "adv_steps": ("adv_steps", int),
            "small": ("small_rescale", float), "enlarge": ("enlarge", float), "init": ("init", str),
            "pair": ("pair_blends", _flag), "lofo": ("lofo", _flag),
            "drop": ("drop", lambda v: tuple(filter(None, v.split("+")))), "seed": ("seed", int),
            "ema": ("ema", float), "detail": ("detail_bins", int), "weight": ("family_weights", _family_weights),
            "undo": ("undo_enlargement", _flag),
        }  # fmt: skip
        fields: dict[str, Any] = {}
        for pair in filter(None, rest.split(",")):
            key, _, value = pair.partition("=")
            if key not in kinds:
                raise SystemExit(f"unknown variant key {key!r} in {text!r}")
            field, convert = kinds[key]
            try:
                fields[field] = convert(value)
            except ValueError:
                raise SystemExit(f"bad value {value!r} for variant key {key!r} in {text!r}") from None
        return cls(name, **fields)


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _attack_subset(test_root: Path, out: Path, per_source: int, seed: int) -> Path:
    """A stratified subset of the test split (``per_source`` files per source) as symlinks."""
    rng = random.Random(seed)
    for cls in ("real", "fake"):
        for source in sorted(p for p in (test_root / cls).iterdir() if p.is_dir()):
            files = sorted(source.glob("*.png"))
            for path in rng.sample(files, min(per_source, len(files))):
                link = out / cls / source.name / path.name
                link.parent.mkdir(parents=True, exist_ok=True)
                link.symlink_to(path.resolve())
    return out


def run_one(workdir: Path, variant: Variant, held_out: str, out: Path, attacks: bool, seed: int,
            threads: int = 1, keep_weights: bool = False,
            conditions: tuple[str, ...] = CONDITIONS) -> dict[str, Any]:  # fmt: skip
    """Train one model (held_out = a family, or ``none``) and measure it on the test split, in each of
    ``conditions`` (``clean`` and names of evaluate.ROBUSTNESS, applied to both classes).

    The all-family model's weights are kept as ``OUT/weights/<variant>.safetensors``; with
    ``keep_weights`` a held-out run's are kept too, as ``OUT/weights/<variant>__<held_out>.safetensors``.
    """
    import cv2
    import torch

    from authenticity.detection.config import DetectorCfg
    from authenticity.detection.evaluate import evaluate
    from authenticity.detection.model import save_detector
    from authenticity.detection.scoring import Detector
    from authenticity.detection.train.finetune import TrainParams, final_weights, finetune, load_items
    from authenticity.detection.train.pipeline import initialise

    sweep_seed, seed = seed, (seed if variant.seed is None else variant.seed)  # attacks: one subset for all
    torch.set_num_threads(threads)
    cv2.setNumThreads(1)
    device = _device()
    began = time.monotonic()
    cfg = DetectorCfg(depth=variant.depth, input_transform=variant.input_transform,
                      undo_enlargement=variant.undo_enlargement)  # fmt: skip
    model = initialise(cfg, variant.init, workdir / "gan")
    exclude = tuple(dict.fromkeys((*variant.drop, *(() if held_out == ALL else (held_out,)))))
    params = TrainParams(steps=variant.steps, seed=seed, exclude_families=exclude, freeze_blocks=variant.freeze,
                         adv_fraction=variant.adv_fraction, adv_steps=variant.adv_steps,
                         small_rescale=variant.small_rescale, enlarge=variant.enlarge, pair_blends=variant.pair_blends,
                         ema=variant.ema, detail_bins=variant.detail_bins,
                         family_weights=variant.family_weights, undo_enlargement=variant.undo_enlargement,
                         checkpoint_every=variant.steps)  # fmt: skip
    run_dir = out / "runs" / f"{variant.name}__{held_out}"
    run_dir.mkdir(parents=True, exist_ok=True)
    model = finetune(model, cfg, load_items(workdir / "dataset", "train", exclude), params, run_dir,
                     resume=False, device=device)  # fmt: skip
    trained = time.monotonic() - began
    test = load_items(workdir / "dataset", "test")
    header = {"seed": seed, "held_out": held_out, "device": device, "train_s": round(trained, 1), "n_test": len(test)}
    measured = _measure(model, cfg, test, exclude, device, run_dir / "scores.npz", conditions)
    result: dict[str, Any] = {"variant": variant.__dict__, **header, **measured}
    if variant.ema:  # the same run's last trained weights, measured alike
        final = final_weights(initialise(cfg, variant.init, workdir / "gan"), run_dir)
        arm = variant.arms()[1]
        final_scores = run_dir / f"scores{FINAL}.npz"
        arm_result = {
            "variant": arm.__dict__,
            **header,
            **_measure(final, cfg, test, exclude, device, final_scores, conditions),
        }
        (out / f"{arm.name}__{held_out}.json").write_text(json.dumps(arm_result, indent=2) + "\n")
    detector = Detector(model.to(device), cfg, batch_size=256)
    if attacks and held_out == ALL:
        subset = _attack_subset(workdir / "dataset" / "test", run_dir / "attack_subset", 10, sweep_seed)
        report = evaluate(detector, subset / "real", subset / "fake", attacks=["fgsm", "pgd"], progress=False)
        result["attacks"] = {"clean": report.overall.auc,
                             **{f"{row.attack}_{row.epsilon}": row.auc for row in report.attacks}}  # fmt: skip
    if held_out == ALL:  # keep the in-distribution model (uncalibrated: temperature 1, bias 0)
        save_detector(model.cpu(), cfg, out / "weights" / f"{variant.name}.safetensors")
    elif keep_weights:  # e.g. for bench/soup.py: the soup of several seeds' held-out models
        save_detector(model.cpu(), cfg, out / "weights" / f"{variant.name}__{held_out}.safetensors")
    result["total_s"] = round(time.monotonic() - began, 1)
    (out / f"{variant.name}__{held_out}.json").write_text(json.dumps(result, indent=2) + "\n")
    return result


def _measure(model: Any, cfg: Any, test: list[Any], exclude: tuple[str, ...], device: str,
             scores: Path, conditions: tuple[str, ...] = CONDITIONS) -> dict[str, Any]:  # fmt: skip
    """AUC per fake family (against all test reals), of the seen families and overall, in each condition.

    Every test file's logits go to ``scores`` (npz: path, label, source, one array per condition).
    """
    import numpy as np
    import torch

    from authenticity.detection.evaluate import score_files
    from authenticity.detection.scoring import Detector

    detector = Detector(model.to(device), cfg, batch_size=256)
    paths = [i.path for i in test]
    y = np.asarray([i.label for i in test], np.int64)
    with torch.inference_mode():
        curves = {c: score_files(detector, paths, None if c == "clean" else ROBUSTNESS[c]) for c in conditions}
    arrays: dict[str, Any] = {"path": np.array([str(p) for p in paths]), "label": y,
                              "source": np.array([i.source for i in test]), **curves}  # fmt: skip
    np.savez_compressed(scores, **arrays)
    return summarise(y, np.array([i.source for i in test]), curves, exclude)


def summarise(y: Any, source: Any, curves: dict[str, Any], exclude: tuple[str, ...] = ()) -> dict[str, Any]:
    """Per condition in ``curves`` (name -> one logit per test file): AUC overall, of the seen
    families, per fake family (against all test reals) and of blends against their own faces.

    ``y`` holds the labels (1 = fake) and ``source`` each file's source, as arrays in test order;
    the same figures for a trained run, a soup or an ensemble's mean logits.
    """
    import numpy as np

    from authenticity.detection import metrics

    y, source = np.asarray(y), np.asarray(source)
    real = y == 0
    result: dict[str, Any] = {}
    for name, z in curves.items():
        per_family = {}
        for family in sorted(set(source[y == 1].tolist())):
            mask = real | ((y == 1) & (source == family))
            per_family[family] = metrics.auc(y[mask], z[mask])
        seen = real | ((y == 1) & ~np.isin(source, list(exclude)))
        # a blend against the face crop it was made from: the pair that face false positives come from
        pair = np.where(y == 1, source == "blend", source == "face")
        blend_vs_face = metrics.auc(y[pair], z[pair]) if 0 < y[pair].sum() < pair.sum() else None
        result[name] = {"auc_all": metrics.auc(y, z), "auc_seen": metrics.auc(y[seen], z[seen]),
                        "per_family": per_family, "blend_vs_face": blend_vs_face}  # fmt: skip
    return result


def dataset_families(dataset: Path) -> list[str]:
    """The fake families (of :data:`FAMILIES`) that ``dataset``'s train split holds, in that order."""
    return [f for f in FAMILIES if (dataset / "train" / "fake" / f).is_dir()]


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def _extra_conditions(runs: dict[str, dict[str, Any]]) -> list[str]:
    """Conditions beyond clean and JPEG 75 that some run in ``runs`` was measured in, in first-seen order."""
    found = (k for r in runs.values() for k, v in r.items() if isinstance(v, dict) and "per_family" in v)
    return [c for c in dict.fromkeys(found) if c not in CONDITIONS]


def report(out: Path, variants: list[Variant]) -> str:
    """Markdown tables from the per-run JSON files in ``out``."""
    runs = {p.stem: json.loads(p.read_text()) for p in out.glob("*__*.json")}
    extra = _extra_conditions(runs)
    held_columns = (*CONDITIONS, *extra)
    names = {"clean": "clean", "jpeg_q75": "jpeg75"}
    columns = " | ".join(f"{v.name} {names.get(c, c)}" for v in variants if v.lofo for c in held_columns)
    lines = ["## Held-out family: AUC of the unseen family against all test reals", "",
             f"| held-out family | {columns} |",
             "|---|" + "---:|" * (len(held_columns) * sum(v.lofo for v in variants))]  # fmt: skip
    for family in FAMILIES:
        cells = []
        for v in (v for v in variants if v.lofo):
            run = runs.get(f"{v.name}__{family}")
            cells += [_cell(run and run.get(c, {}).get("per_family", {}).get(family)) for c in held_columns]
        lines.append(f"| {family} | " + " | ".join(cells) + " |")
    lines += ["", "## Seen families and the all-family model (AUC, test split)", "",
              "| variant | mean LOFO seen-family AUC | all-family model clean | all-family model jpeg75 "
              + "".join(f"| all-family model {c} " for c in extra)
              + "| blends vs their faces, clean | blends vs their faces, jpeg75 |",
              "|---|" + "---:|" * (5 + len(extra))]  # fmt: skip
    for v in variants:
        seen = [runs[f"{v.name}__{f}"]["clean"]["auc_seen"] for f in FAMILIES if f"{v.name}__{f}" in runs]
        full = runs.get(f"{v.name}__{ALL}")
        mean_seen = sum(seen) / len(seen) if seen else None
        values: list[float | None] = [
            mean_seen,
            full and full["clean"]["auc_all"],
            full and full["jpeg_q75"]["auc_all"],
            *(full and full.get(c, {}).get("auc_all") for c in extra),
            full and full["clean"].get("blend_vs_face"),
            full and full["jpeg_q75"].get("blend_vs_face"),
        ]
        lines.append(f"| {v.name} | " + " | ".join(_cell(c) for c in values) + " |")
    lines += _matched_flag_lines(out, variants, MATCHED_TPR)
    attacked = [
        (v, runs[f"{v.name}__{ALL}"]["attacks"]) for v in variants if "attacks" in runs.get(f"{v.name}__{ALL}", {})
    ]
    if attacked:
        keys = [k for k in attacked[0][1] if k != "clean"]
        lines += ["", "## White-box attacks on the all-family model (AUC, stratified test subset)", "",
                  "| variant | clean | " + " | ".join(keys) + " |", "|---|" + "---:|" * (len(keys) + 1)]  # fmt: skip
        for v, a in attacked:
            lines.append(f"| {v.name} | {_cell(a['clean'])} | " + " | ".join(_cell(a[k]) for k in keys) + " |")
    text = "\n".join(lines) + "\n"
    (out / "lofo.md").write_text(text)
    return text


def matched_flags(scores: Path, tpr: float) -> dict[str, dict[str, float]]:
    """Per condition in an all-family run's ``scores.npz``: the share of each real source's test
    files at or above the threshold that flags ``tpr`` of the fakes (``reals``: all of them).

    Uncalibrated runs have no threshold of their own; matching the fakes flagged compares
    recipes on which real images they flag, apart from where a calibration would put the line.
    """
    import numpy as np

    data = np.load(scores)
    y, source = data["label"], data["source"]
    kinds = sorted(set(source[y == 0].tolist()))
    result: dict[str, dict[str, float]] = {}
    for condition in (c for c in data.files if c not in ("path", "label", "source")):
        z = data[condition]
        line = np.quantile(z[y == 1], 1.0 - tpr)
        row = {"reals": float((z[y == 0] >= line).mean())}
        row |= {k: float((z[(y == 0) & (source == k)] >= line).mean()) for k in kinds}
        result[condition] = row
    return result


def _matched_flag_lines(out: Path, variants: list[Variant], tpr: float) -> list[str]:
    found = [(v, out / "runs" / f"{v.name}__{ALL}" / "scores.npz") for v in variants]
    flags = {v.name: matched_flags(path, tpr) for v, path in found if path.is_file()}
    if not flags:
        return []
    kinds = list(next(iter(next(iter(flags.values())).values())))
    lines = ["", f"## Reals flagged by the all-family model where it flags {tpr:.0%} of the fakes (test split)", "",
             "| variant | condition | " + " | ".join(kinds) + " |", "|---|---|" + "---:|" * len(kinds)]  # fmt: skip
    for name, per_condition in flags.items():
        for condition, row in per_condition.items():
            lines.append(
                f"| {name} | {condition} | " + " | ".join(f"{row.get(k, float('nan')):.1%}" for k in kinds) + " |"
            )
    return lines


def unseen_points(out: Path, variants: list[Variant]) -> dict[str, list[tuple[str, float, float]]]:
    """Per family: ``(variant, clean AUC, JPEG-75 AUC)`` of each LOFO run in ``out`` that held it out."""
    points: dict[str, list[tuple[str, float, float]]] = {}
    for family in FAMILIES:
        for v in (v for v in variants if v.lofo):
            path = out / f"{v.name}__{family}.json"
            if path.is_file():
                run = json.loads(path.read_text())
                cells = (run["clean"]["per_family"].get(family), run["jpeg_q75"]["per_family"].get(family))
                if None not in cells:
                    points.setdefault(family, []).append((v.name, *cells))
    return points


def plot_unseen(points: dict[str, list[tuple[str, float, float]]], png: Path) -> Path:
    """One column per held-out family: each run's unseen-family AUC (filled: clean, hollow: JPEG 75),
    the families sorted by their mean, with the targets (0.95 clean, 0.90 after JPEG 75) and
    chance drawn across. ``ValueError`` if there is nothing to draw."""
    import matplotlib
    import numpy as np

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if not points:
        raise ValueError(f"no leave-one-family-out results to plot for {png}")
    order = sorted(points, key=lambda f: -sum(c for _, c, _ in points[f]) / len(points[f]))
    fig = Figure(figsize=(1.1 * len(order) + 2.5, 4.2))
    ax = fig.add_subplot()
    for x, family in enumerate(order):
        runs = points[family]
        offsets = np.linspace(-0.18, 0.18, len(runs)) if len(runs) > 1 else np.zeros(1)
        ax.scatter(x + offsets, [c for _, c, _ in runs], color="tab:blue", zorder=3,
                   label="clean" if x == 0 else None)  # fmt: skip
        ax.scatter(x + offsets, [j for _, _, j in runs], facecolors="none", edgecolors="tab:orange", zorder=3,
                   label="JPEG q=75" if x == 0 else None)  # fmt: skip
    ax.axhline(0.95, color="tab:green", ls="--", lw=1, label="target, clean (0.95)")
    ax.axhline(0.90, color="tab:olive", ls=":", lw=1, label="target, JPEG 75 (0.90)")
    ax.axhline(0.5, color="grey", lw=0.8, label="chance")
    ax.set_xticks(range(len(order)), order)
    ax.set_ylim(0, 1)
    ax.set_xlabel("family held out of training")
    ax.set_ylabel("AUC of that family vs all test reals")
    ax.legend(loc="lower left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, format="png", dpi=110, bbox_inches="tight")
    return png


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="a training workdir (gan/, dataset/)")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--variant", action="append", default=[], help="name:depth=0,steps=1500,... (repeatable)")
    parser.add_argument("--families", help="comma-separated (default: every family the workdir's dataset holds)")
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--attacks", action="store_true", help="attack each variant's all-family model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run")
    parser.add_argument("--no-all", action="store_true", help="skip the all-family runs")
    parser.add_argument("--skip-done", action="store_true", help="skip runs whose result is already in OUT")
    parser.add_argument("--keep-weights", action="store_true", help="keep the held-out runs' weights too")
    parser.add_argument("--plot", type=Path, help="also draw each run's unseen-family AUC to this PNG")
    extra_help = "conditions to measure beside clean and jpeg_q75, comma-separated (e.g. upscale_2x)"
    parser.add_argument("--conditions", default="", help=extra_help)
    parser.add_argument("--report-only", action="store_true", help="train nothing: tables (and --plot) from OUT")
    parser.add_argument("--attack-subset", action="store_true",
                        help="train nothing: draw the files --attacks attacks (10 per test source, --seed) into OUT "
                        "as links, for `detector eval --attack`")  # fmt: skip
    args = parser.parse_args(argv)
    variants = [Variant.parse(v) for v in args.variant] or [Variant("base")]
    arms = [arm for v in variants for arm in v.arms()]
    if args.report_only:
        if not args.out.is_dir():
            print(f"error: {args.out}: no results folder to report on", file=sys.stderr)
            return 2
        if not any((args.out / f"{a.name}__{f}.json").is_file() for a in arms for f in (*FAMILIES, ALL)):
            names = ", ".join(a.name for a in arms)
            print(f"error: {args.out}: no results of variant {names} (pass the --variant names of the runs)",
                  file=sys.stderr)  # fmt: skip
            return 2
        print(report(args.out, arms))
        return _plot(args.out, arms, args.plot)
    if args.workdir is None:
        print("error: --workdir is needed to train (or pass --report-only)", file=sys.stderr)
        return 2
    for needed in ("gan", "dataset/summary.json"):
        if not (args.workdir / needed).exists():
            print(f"error: {args.workdir / needed} missing (run `authenticity detector train` first)", file=sys.stderr)
            return 2
    if args.attack_subset:
        if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
            print(f"error: {args.out}: already there (the subset goes into a new or empty folder)", file=sys.stderr)
            return 2
        subset = _attack_subset(args.workdir / "dataset" / "test", args.out, 10, args.seed)
        count = sum(1 for _ in subset.glob("*/*/*.png"))
        print(f"{count} test files in {subset}: authenticity detector eval --real {subset / 'real'} "
              f"--fake {subset / 'fake'} --attack fgsm,pgd")  # fmt: skip
        return 0
    held = (dataset_families(args.workdir / "dataset") if args.families is None
            else [f for f in args.families.split(",") if f])  # fmt: skip
    if unknown := [f for f in held if f not in FAMILIES]:
        print(f"error: --families {unknown[0]!r}: use some of {', '.join(FAMILIES)}", file=sys.stderr)
        return 2
    families = held
    extra = [c for c in args.conditions.split(",") if c and c not in CONDITIONS]
    if unknown := [c for c in extra if c not in ROBUSTNESS]:
        print(f"error: --conditions {unknown[0]!r}: use some of {', '.join(ROBUSTNESS)}", file=sys.stderr)
        return 2
    conditions = (*CONDITIONS, *dict.fromkeys(extra))
    jobs = [] if args.no_all else [(v, ALL) for v in variants]  # the slow ones (attacked) first
    jobs += [(v, f) for v in variants if v.lofo for f in families]
    if args.skip_done:  # a sweep that was stopped goes on where it was
        jobs = [(v, f) for v, f in jobs if not (args.out / f"{v.name}__{f}.json").is_file()]
    args.out.mkdir(parents=True, exist_ok=True)
    from rich.progress import Progress

    with Progress(transient=False) as bar, ProcessPoolExecutor(args.jobs, mp_context=get_context("spawn")) as pool:
        task = bar.add_task(f"{len(jobs)} fine-tuning runs", total=len(jobs))
        futures = {
            pool.submit(
                run_one,
                args.workdir,
                v,
                f,
                args.out,
                args.attacks,
                args.seed,
                args.threads,
                args.keep_weights,
                conditions,
            ): (v, f)
            for v, f in jobs
        }
        for future in as_completed(futures):
            v, f = futures[future]
            r = future.result()
            held = r["clean"]["per_family"].get(f) if f != ALL else r["clean"]["auc_all"]
            bar.console.print(
                f"{v.name:>10} held out {f:>9}: AUC {_cell(held)} (train {r['train_s']} s, total {r['total_s']} s)"
            )
            bar.advance(task)
    print(report(args.out, arms))
    return _plot(args.out, arms, args.plot)


def _plot(out: Path, arms: list[Variant], png: Path | None) -> int:
    if png is None:
        return 0
    try:
        print(f"wrote {plot_unseen(unseen_points(out, arms), png)}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
