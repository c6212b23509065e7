"""Evaluation metrics and plots for a binary classifier (scikit-learn, matplotlib)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Report:
    n: int
    accuracy: float
    sensitivity: float
    specificity: float
    auc: float
    ece: float
    threshold: float
    confusion: dict[str, int]

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def bin_index(probs: np.ndarray, bins: int = 10) -> np.ndarray:
    """(n,) probabilities in [0, 1] -> (n,) bin of equal width in 0..bins-1 (bin b holds (b/bins, (b+1)/bins])."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    return np.asarray(np.clip(np.digitize(probs, edges[1:-1], right=True), 0, bins - 1))


def expected_calibration_error(
    probs: np.ndarray, labels: np.ndarray, bins: int = 10, weights: np.ndarray | None = None
) -> float:
    """ECE of P(pneumonia) over equal-width bins: sum_b |acc_b - conf_b| * n_b / n, acc_b = positive rate.

    weights: optional (n,) > 0 (inverse sampling probabilities): acc_b, conf_b and n_b are then weighted.
    """
    w = np.ones(len(probs)) if weights is None else np.asarray(weights, dtype=np.float64)
    which = bin_index(probs, bins)
    total = 0.0
    for b in range(bins):
        mask = which == b
        if mask.any():
            wb = w[mask]
            gap = np.average(labels[mask], weights=wb) - np.average(probs[mask], weights=wb)
            total += abs(gap) * wb.sum()
    return float(total / w.sum())


def report(probs: np.ndarray, labels: np.ndarray, threshold: float) -> Report:
    """probs: (n,) P(pneumonia); labels: (n,) 0 normal / 1 pneumonia; predicted positive when prob >= threshold."""
    from sklearn.metrics import confusion_matrix, roc_auc_score

    pred = (probs >= threshold).astype(int)
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(labels, pred, labels=[0, 1]).ravel())
    both = len(np.unique(labels)) == 2
    return Report(
        n=len(labels),
        accuracy=(tp + tn) / len(labels),
        sensitivity=tp / (tp + fn) if tp + fn else float("nan"),
        specificity=tn / (tn + fp) if tn + fp else float("nan"),
        auc=float(roc_auc_score(labels, probs)) if both else float("nan"),
        ece=expected_calibration_error(probs, labels),
        threshold=float(threshold),
        confusion={"tn": tn, "fp": fp, "fn": fn, "tp": tp},
    )


def plot_roc(probs: np.ndarray, labels: np.ndarray, threshold: float, path: Path) -> None:
    import matplotlib
    from sklearn.metrics import roc_auc_score, roc_curve

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fpr, tpr, thr = roc_curve(labels, probs)
    at = int(np.argmin(np.abs(thr - threshold)))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(labels, probs):.4f}")
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.scatter([fpr[at]], [tpr[at]], c="red", zorder=3, label=f"threshold {threshold:.3f}")
    ax.set(xlabel="1 - specificity", ylabel="sensitivity", title="ROC")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_reliability(probs: np.ndarray, labels: np.ndarray, path: Path, bins: int = 10) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(probs, edges[1:-1], right=True), 0, bins - 1)
    centres, rates, counts = [], [], []
    for b in range(bins):
        mask = which == b
        if mask.any():
            centres.append(probs[mask].mean())
            rates.append(labels[mask].mean())
            counts.append(int(mask.sum()))
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], ls="--", c="grey", lw=0.8)
    ax.plot(centres, rates, marker="o")
    for c, r, k in zip(centres, rates, counts, strict=True):
        ax.annotate(str(k), (c, r), fontsize=7, xytext=(3, -9), textcoords="offset points")
    ax.set(
        xlabel="predicted P(pneumonia)",
        ylabel="observed pneumonia rate",
        title=f"Reliability (ECE {expected_calibration_error(probs, labels, bins):.3f})",
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
