"""Figures for MLflow runs: score histogram, ROC curve, input / reconstruction / heatmap grid.

Built on `matplotlib.figure.Figure` directly (no pyplot, so no global backend or open-figure state).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from matplotlib.figure import Figure


def score_histogram(normal: Sequence[float], anomalous: Sequence[float], thresholds: dict[str, float],
                    title: str = "Image scores") -> Figure:
    """Overlaid histograms of normal and anomalous image scores with a vertical line per threshold."""
    figure = Figure(figsize=(6.4, 4), layout="constrained")
    ax = figure.subplots()
    values = np.concatenate([np.asarray(normal, float), np.asarray(anomalous, float), list(thresholds.values())])
    bins = np.linspace(values.min(), values.max(), 31) if values.size and np.ptp(values) > 0 else 30
    ax.hist(normal, bins=bins, alpha=0.6, color="tab:blue", label=f"normal ({len(normal)})")
    if len(anomalous):
        ax.hist(anomalous, bins=bins, alpha=0.6, color="tab:red", label=f"anomalous ({len(anomalous)})")
    for (name, value), style in zip(thresholds.items(), ("-", "--", ":")):
        ax.axvline(value, color="black", linestyle=style, label=f"{name} {value:.4g}")
    ax.set(xlabel="image score", ylabel="images", title=title)
    ax.legend()
    return figure


def roc_figure(labels: Sequence[int], scores: Sequence[float], threshold: float, auroc: float | None) -> Figure:
    """ROC curve of image scores (labels 0 normal / 1 anomalous) with the operating point at `threshold`."""
    from sklearn.metrics import roc_curve

    fpr, tpr, _ = roc_curve(labels, scores)
    labels, scores = np.asarray(labels), np.asarray(scores)
    hit = scores >= threshold
    point = (hit[labels == 0].mean(), hit[labels == 1].mean())
    figure = Figure(figsize=(4.8, 4.8), layout="constrained")
    ax = figure.subplots()
    ax.plot(fpr, tpr, color="tab:red", label=f"AUROC {auroc:.3f}" if auroc is not None else "ROC")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.plot(*point, "ko", label=f"threshold {threshold:.4g}: FPR {point[0]:.2f}, TPR {point[1]:.2f}")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)", xlim=(0, 1),
           ylim=(0, 1.02))
    ax.legend(loc="lower right")
    return figure


def example_grid(rows: Sequence[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> Figure:
    """One row per example: (title, input (C, H, W) float in [0, 1], reconstruction (C, H, W),
    heatmap overlay (H, W, 3) uint8); columns input / reconstruction / heatmap."""
    figure = Figure(figsize=(7.5, 2.6 * len(rows)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(rows), 3))
    for (title, image, reconstruction, heat), row in zip(rows, axes):
        for ax, picture, column in zip(row, (image, reconstruction, heat),
                                       ("input", "reconstruction", "heatmap")):
            if picture.ndim == 3 and picture.shape[0] in (1, 3):  # (C, H, W) -> (H, W[, 3])
                picture = picture[0] if picture.shape[0] == 1 else picture.transpose(1, 2, 0)
            ax.imshow(np.clip(picture, 0, 1) if picture.dtype != np.uint8 else picture, cmap="gray", vmin=0, vmax=1)
            ax.set_title(f"{title}\n{column}" if column == "input" else column, fontsize=9)
            ax.axis("off")
    return figure
