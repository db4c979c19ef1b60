"""Detector metrics as pure functions over labels and scores (numpy only, no I/O).

Labels are ``1`` for synthetic and ``0`` for real. *Scores* may be any monotone score
(logits or probabilities) — ranking metrics (AUC, AP, TPR at a fixed FPR) only use the
order; *probabilities* must be calibrated values in ``[0, 1]`` (accuracy, ECE).
Ranking metrics need both classes and raise ``detection.metrics.one_class`` otherwise:
a number for a one-class set would be made up.

>>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> accuracy_at([0, 1], [0.2, 0.9], 0.5)
1.0
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from authenticity.errors import UsageError

__all__ = [
    "ReliabilityBin",
    "accuracy_at",
    "auc",
    "average_precision",
    "expected_calibration_error",
    "fit_temperature",
    "reliability_bins",
    "roc_curve",
    "tpr_at_fpr",
]

_F64 = NDArray[np.float64]


def _labels_scores(y: ArrayLike, s: ArrayLike, *, both: bool = True) -> tuple[NDArray[np.int64], _F64]:
    labels = np.asarray(y).astype(np.int64).ravel()
    scores = np.asarray(s, dtype=np.float64).ravel()
    if labels.shape != scores.shape:
        raise UsageError("detection.metrics.shape", f"{labels.size} labels but {scores.size} scores")
    if not np.isin(labels, (0, 1)).all():
        raise UsageError("detection.metrics.labels", "labels must be 0 (real) or 1 (synthetic)")
    if not np.isfinite(scores).all():
        raise UsageError("detection.metrics.nan", "scores must be finite")
    if both and (labels.sum() == 0 or labels.sum() == labels.size):
        raise UsageError("detection.metrics.one_class", "ranking metrics need both real and synthetic examples")
    return labels, scores


def roc_curve(y: ArrayLike, s: ArrayLike) -> tuple[_F64, _F64, _F64]:
    """``(fpr, tpr, thresholds)`` for the rule ``score >= threshold``, starting at (0, 0).

    Tied scores form one point (they cannot be separated by any threshold).

    >>> fpr, tpr, _ = roc_curve([0, 1, 1], [0.1, 0.5, 0.9])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.0, 1.0], [0.0, 0.5, 1.0, 1.0])
    """
    labels, scores = _labels_scores(y, s)
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tp = np.cumsum(hits)[last_of_tie]
    fp = (last_of_tie + 1) - tp
    fpr = np.r_[0.0, fp / (labels.size - labels.sum())]
    tpr = np.r_[0.0, tp / labels.sum()]
    thresholds = np.r_[np.inf, ranked[last_of_tie]]
    return fpr, tpr, thresholds


def auc(y: ArrayLike, s: ArrayLike) -> float:
    """Area under the ROC curve: P(score of a random fake > score of a random real), ties count ½.

    >>> auc([0, 1], [0.2, 0.9]), auc([0, 1], [0.9, 0.2]), auc([0, 1], [0.5, 0.5])
    (1.0, 0.0, 0.5)
    """
    fpr, tpr, _ = roc_curve(y, s)
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def average_precision(y: ArrayLike, s: ArrayLike) -> float:
    """Average precision, ``Σ (Rₙ − Rₙ₋₁) Pₙ`` over distinct thresholds (no interpolation).

    >>> round(average_precision([0, 1, 0, 1], [0.1, 0.9, 0.8, 0.3]), 4)  # (½·1 + ½·⅔)
    0.8333
    """
    labels, scores = _labels_scores(y, s)
    order = np.argsort(-scores, kind="mergesort")
    ranked, hits = scores[order], labels[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(ranked)), ranked.size - 1]
    tp = np.cumsum(hits)[last_of_tie]
    precision = tp / (last_of_tie + 1)
    recall = tp / labels.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def tpr_at_fpr(y: ArrayLike, s: ArrayLike, fpr: float = 0.01) -> float:
    """The best true-positive rate of any threshold whose false-positive rate is at most *fpr*.

    No interpolation between ROC points: the number is achievable by a real threshold.

    >>> y, s = [0] * 100 + [1] * 4, list(range(100)) + [99.5, 99.5, 98.5, 10]
    >>> tpr_at_fpr(y, s, fpr=0.0), tpr_at_fpr(y, s, fpr=0.01)
    (0.5, 0.75)
    """
    if not 0.0 <= fpr <= 1.0:
        raise UsageError("detection.metrics.fpr", f"fpr must be in [0, 1], got {fpr}")
    fprs, tprs, _ = roc_curve(y, s)
    return float(tprs[fprs <= fpr + 1e-12].max())


def accuracy_at(y: ArrayLike, p: ArrayLike, threshold: float) -> float:
    """Fraction decided correctly by ``p >= threshold`` → synthetic.

    >>> accuracy_at([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.4], 0.5)
    0.5
    """
    labels, probs = _labels_scores(y, p, both=False)
    if labels.size == 0:
        raise UsageError("detection.metrics.empty", "no examples")
    return float(np.mean((probs >= threshold).astype(np.int64) == labels))


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width probability bin: where it lies, how full it is, predicted vs observed."""

    low: float
    high: float
    count: int
    mean_probability: float  # NaN when empty
    fraction_synthetic: float  # NaN when empty

    def to_dict(self) -> dict[str, Any]:
        nan_free = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in self.__dict__.items()}
        return nan_free


def reliability_bins(y: ArrayLike, p: ArrayLike, bins: int = 15) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; the last bin includes 1.0.

    >>> [(b.count, b.fraction_synthetic) for b in reliability_bins([0, 1, 1], [0.1, 0.9, 1.0], bins=2)]
    [(1, 0.0), (2, 1.0)]
    """
    labels, probs = _labels_scores(y, p, both=False)
    if bins < 1:
        raise UsageError("detection.metrics.bins", "bins must be at least 1")
    if ((probs < 0) | (probs > 1)).any():
        raise UsageError("detection.metrics.probability", "probabilities must lie in [0, 1]")
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.searchsorted(edges, probs, side="right") - 1, 0, bins - 1)
    out = []
    for b in range(bins):
        member = index == b
        count = int(member.sum())
        mean_p = float(probs[member].mean()) if count else math.nan
        frac = float(labels[member].mean()) if count else math.nan
        out.append(ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, mean_p, frac))
    return out


def expected_calibration_error(y: ArrayLike, p: ArrayLike, bins: int = 15) -> float:
    """``Σ_b (n_b / n) · |observed fraction synthetic − mean predicted probability|``.

    >>> expected_calibration_error([0, 0, 0, 1], [0.25, 0.25, 0.25, 0.25], bins=4)
    0.0
    >>> expected_calibration_error([0, 0], [0.9, 0.9], bins=10)
    0.9
    """
    table = reliability_bins(y, p, bins)
    total = sum(b.count for b in table)
    if total == 0:
        raise UsageError("detection.metrics.empty", "no examples")
    gap = sum(b.count * abs(b.fraction_synthetic - b.mean_probability) for b in table if b.count)
    return round(float(gap / total), 12)


def _nll_newton(z: _F64, y: _F64, a: float | None, weight: _F64, iterations: int = 100) -> tuple[float, float]:
    """Logistic regression ``sigmoid(a·z + c)`` by damped Newton, each sample's loss times its
    *weight*; with *a* fixed, fit *c* only."""
    coef = np.array([1.0 if a is None else a, 0.0])
    free = [0, 1] if a is None else [1]
    design = np.stack([z, np.ones_like(z)], axis=1)

    def nll(w: _F64) -> float:
        t = design @ w
        return float(np.sum(weight * (np.logaddexp(0.0, t) - y * t)))

    current = nll(coef)
    for _ in range(iterations):
        prob = 1.0 / (1.0 + np.exp(-(design @ coef)))
        grad = (design.T @ (weight * (prob - y)))[free]
        hess = (design.T * (weight * prob * (1 - prob))) @ design
        hess = hess[np.ix_(free, free)] + 1e-9 * np.eye(len(free))
        step = np.zeros(2)
        step[free] = np.linalg.solve(hess, grad)
        scale = 1.0
        while scale > 1e-6 and nll(coef - scale * step) > current:
            scale /= 2.0
        coef = coef - scale * step
        new = nll(coef)
        if current - new < 1e-12 * max(1.0, abs(current)):
            current = new
            break
        current = new
    return float(coef[0]), float(coef[1])


def fit_temperature(
    logits: ArrayLike,
    y: ArrayLike,
    *,
    balanced: bool = False,
    min_temperature: float = 0.05,
    max_temperature: float = 100.0,
) -> tuple[float, float]:
    """``(temperature, bias)`` minimising the NLL of ``sigmoid((z + bias) / temperature)``.

    This is logistic regression on the logit with slope ``1/T`` and intercept ``b/T``, a
    convex problem solved by Newton's method. With ``balanced`` each class carries half of
    the loss, however many samples it has: the fitted probability then assumes even odds
    before the evidence, instead of the share of fakes in the data it was fitted on. The
    temperature is kept in ``[min_temperature, max_temperature]``: separable data would otherwise push ``T → 0``
    and inverted scores ``T < 0`` (the slope is then fixed at the bound and only the bias fitted).

    >>> rng = np.random.default_rng(0)
    >>> z = rng.normal(0, 3, 20000)
    >>> labels = rng.random(20000) < 1 / (1 + np.exp(-(z + 1.0) / 2.0))
    >>> t, b = fit_temperature(z, labels)
    >>> round(t, 1), round(b, 1)
    (2.0, 1.0)
    """
    labels, z = _labels_scores(y, logits)
    if not 0 < min_temperature < max_temperature:
        raise UsageError("detection.metrics.temperature", "need 0 < min_temperature < max_temperature")
    target = labels.astype(np.float64)
    weight = np.ones_like(target)
    if balanced:  # both classes are present: _labels_scores refuses one alone
        n_fake = float(target.sum())
        weight = np.where(target == 1.0, target.size / (2.0 * n_fake), target.size / (2.0 * (target.size - n_fake)))
    slope, intercept = _nll_newton(z, target, None, weight)
    if not 1.0 / max_temperature <= slope <= 1.0 / min_temperature:
        slope = min(max(slope, 1.0 / max_temperature), 1.0 / min_temperature)
        slope, intercept = _nll_newton(z, target, slope, weight)
    temperature = 1.0 / slope
    return temperature, intercept * temperature
