"""The experiment's figures: learning curves, time to target, prediction grids, confusion matrices.

Every function takes plain results (``History`` objects, tensors, class names), returns a
matplotlib ``Figure`` and, given ``path``, writes it as a PNG. Figures are built with
``matplotlib.figure.Figure`` rather than ``pyplot``, so no GUI backend is involved (files are
rendered with Agg) and a notebook's own backend is left alone.

Each regime keeps one colour in every figure (Okabe-Ito colours, readable with colour-blindness).
Several histories per regime (several seeds) are drawn as the mean and a band of one
standard deviation.

Every function takes ``language`` (``"en"`` or ``"es"``, see ``course_lib.i18n``): the book's
Spanish edition shows the same results with Spanish titles, labels, legends and class names.
Each word a figure shows goes through ``translate`` or ``class_name``; regime names stay English.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from course_lib import TARGET_ACCURACY
from course_lib.data import spread_indices
from course_lib.history import History
from course_lib.i18n import check_language, class_name, translate

__all__ = [
    "REGIME_COLOURS",
    "plot_confusion",
    "plot_curves",
    "plot_predictions",
    "plot_probes",
    "plot_time_to_target",
]

REGIME_COLOURS = {"fresh": "#0072B2", "finetune": "#E69F00", "feature_extraction": "#009E73"}
RIGHT, WRONG = "#1b7837", "#b2182b"
DPI = 120

Histories = Mapping[str, Sequence[History]]


def colour(regime: str, index: int = 0) -> str:
    spare = ["#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
    return REGIME_COLOURS.get(regime, spare[index % len(spare)])


def _save(figure: Figure, path: str | os.PathLike | None) -> Figure:
    if path is not None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=DPI, bbox_inches="tight")
    return figure


def _stack(histories: Sequence[History], name: str) -> np.ndarray:
    """One row per seed, one column per epoch (cut to the shortest run)."""
    length = min(len(h) for h in histories)
    return np.array([h.column(name)[:length] for h in histories], dtype=float)


def _mean_band(
    axis: Axes, x: Sequence[float], values: np.ndarray, colour_: str, label: str | None, style: str = "-"
) -> None:
    mean = values.mean(0)
    axis.plot(
        x, mean, style, color=colour_, label=label, linewidth=1.8, marker="o" if len(x) < 25 else None, markersize=3
    )
    if len(values) > 1:
        std = values.std(0)
        axis.fill_between(x, mean - std, mean + std, color=colour_, alpha=0.18, linewidth=0)


def plot_curves(
    histories: Histories,
    *,
    target: float | None = TARGET_ACCURACY,
    path: str | os.PathLike | None = None,
    language: str = "en",
) -> Figure:
    """Accuracy and loss per epoch (train dashed, validation solid), and validation accuracy
    against cumulative training seconds, which is what "time to target" reads off."""
    check_language(language)
    figure = Figure(figsize=(15, 4.4), layout="constrained")
    accuracy, loss, timeline = figure.subplots(1, 3)
    for index, (regime, runs) in enumerate(histories.items()):
        runs = [h for h in runs if len(h)]
        if not runs:
            continue
        c = colour(regime, index)
        epochs = np.arange(1, min(len(h) for h in runs) + 1)
        _mean_band(accuracy, epochs, 100 * _stack(runs, "train_accuracy"), c, None, "--")
        _mean_band(accuracy, epochs, 100 * _stack(runs, "val_accuracy"), c, regime)
        _mean_band(loss, epochs, _stack(runs, "train_loss"), c, None, "--")
        _mean_band(loss, epochs, _stack(runs, "val_loss"), c, regime)
        seconds = _stack(runs, "cumulative_seconds").mean(0)
        _mean_band(timeline, seconds, 100 * _stack(runs, "val_accuracy"), c, regime)

    seeds = max((len(runs) for runs in histories.values()), default=1)
    band = translate(" (mean ± std of {seeds} seeds)", language, seeds=seeds) if seeds > 1 else ""
    epoch = translate("epoch", language)
    accuracy.set(title=translate("Accuracy", language) + band, xlabel=epoch, ylabel=translate("accuracy (%)", language))
    loss.set(title=translate("Cross-entropy loss", language) + band, xlabel=epoch, ylabel=translate("loss", language))
    loss.set_yscale("log")  # a first epoch's loss can be ten times the rest: on a log axis both stay readable
    timeline.set(
        title=translate("Validation accuracy against training time", language),
        xlabel=translate("cumulative training seconds", language),
        ylabel=translate("validation accuracy (%)", language),
    )
    if target is not None:
        for axis in (accuracy, timeline):
            axis.axhline(100 * target, color="grey", linewidth=1, linestyle=":")
            axis.annotate(
                translate("target {target:.0%}", language, target=target),
                (0.01, 100 * target),
                xycoords=("axes fraction", "data"),
                va="bottom",
                fontsize=8,
                color="grey",
            )
    for axis in (accuracy, loss, timeline):
        axis.grid(alpha=0.3)
    for axis in (accuracy, loss):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = accuracy.get_legend_handles_labels()
    handles += [Line2D([], [], color="black", linestyle="-"), Line2D([], [], color="black", linestyle="--")]
    labels += [translate("validation", language), translate("train (augmented batches)", language)]
    accuracy.legend(handles, labels, fontsize=8, loc="best")
    loss.legend(fontsize=8, loc="best")
    return _save(figure, path)


def plot_time_to_target(
    histories: Histories,
    target: float = TARGET_ACCURACY,
    *,
    path: str | os.PathLike | None = None,
    language: str = "en",
) -> Figure:
    """Training seconds until validation accuracy first reached ``target``, one bar per regime.

    A regime that never reached it gets a hatched, hollow bar as long as its whole training
    time, labelled "not reached" with its best accuracy, never a bar of zero length."""
    check_language(language)
    regimes = list(histories)
    figure = Figure(figsize=(9, 0.9 + 0.75 * len(regimes)), layout="constrained")
    axis = figure.subplots()
    longest = max((h.total_seconds for runs in histories.values() for h in runs), default=1.0) or 1.0
    for row, regime in enumerate(regimes):
        runs = list(histories[regime])
        c = colour(regime, row)
        times = [h.time_to(target) for h in runs]
        reached = [t for t in times if t is not None]
        if reached:
            mean = float(np.mean(reached))
            std = float(np.std(reached)) if len(reached) > 1 else None
            axis.barh(row, mean, color=c, xerr=std, capsize=4 if std else 0)
            text = f"{mean:.0f} s" + (f" ± {std:.0f}" if std is not None else "")
            epochs = [h.epochs_to(target) for h in runs if h.epochs_to(target) is not None]
            text += translate("  (epoch {epoch:.3g})", language, epoch=np.mean(epochs))
            if len(reached) < len(runs):
                text += translate(
                    ", reached in {reached} of {runs} seeds", language, reached=len(reached), runs=len(runs)
                )
            axis.annotate(
                text, (mean + (std or 0), row), xytext=(6, 0), textcoords="offset points", va="center", fontsize=9
            )
        else:
            total = float(np.mean([h.total_seconds for h in runs])) if runs else 0.0
            best = max((h.best_val_accuracy or 0.0 for h in runs), default=0.0)
            axis.barh(row, total, facecolor="none", edgecolor=c, hatch="//", linewidth=1.5)
            axis.annotate(
                translate("not reached in {seconds:.0f} s (best {best:.1%})", language, seconds=total, best=best),
                (total, row),
                xytext=(6, 0),
                textcoords="offset points",
                va="center",
                fontsize=9,
                color="dimgrey",
            )
    axis.set_yticks(range(len(regimes)), regimes)
    axis.invert_yaxis()
    axis.set_xlim(0, longest * 1.6)
    axis.set_xlabel(translate("cumulative training seconds", language))
    axis.set_title(translate("Time to {target:.0%} validation accuracy", language, target=target))
    axis.grid(axis="x", alpha=0.3)
    axis.legend(
        handles=[
            Patch(facecolor="grey", label=translate("reached", language)),
            Patch(facecolor="none", edgecolor="grey", hatch="//", label=translate("not reached: whole run", language)),
        ],
        fontsize=8,
        loc="lower right",
    )
    return _save(figure, path)


def _as_picture(image: torch.Tensor) -> np.ndarray:
    image = image.detach().cpu()
    if image.dtype != torch.uint8:
        image = (image.clamp(0, 1) * 255).to(torch.uint8)
    return image.permute(1, 2, 0).numpy()


def plot_predictions(
    images: torch.Tensor,
    labels: torch.Tensor,
    predicted: Mapping[str, torch.Tensor],
    classes: Sequence[str],
    *,
    indices: Sequence[int] | None = None,
    count: int = 6,
    path: str | os.PathLike | None = None,
    language: str = "en",
) -> Figure:
    """Test photos (columns) and what each regime (rows) predicted for them.

    Each photo is titled "predicted: X", framed and marked green ✓ when right and red ✗
    when wrong, with its true label underneath. ``images`` are uint8 ``(N, 3, H, W)``; without
    ``indices``, ``count`` photos spread over the classes."""
    check_language(language)
    indices = list(indices) if indices is not None else spread_indices(labels, count)
    rows = list(predicted)
    figure = Figure(figsize=(1.9 * len(indices) + 0.8, 2.25 * len(rows)), layout="constrained")
    axes = np.atleast_2d(figure.subplots(len(rows), len(indices), squeeze=False))
    for row, regime in enumerate(rows):
        for column, index in enumerate(indices):
            axis = axes[row, column]
            truth = int(labels[index])
            guess = int(predicted[regime][index])
            right = guess == truth
            axis.imshow(_as_picture(images[index]))
            axis.set_xticks([])
            axis.set_yticks([])
            for spine in axis.spines.values():
                spine.set_edgecolor(RIGHT if right else WRONG)
                spine.set_linewidth(3)
            mark = "✓" if right else "✗"
            axis.set_title(
                translate("{mark} predicted: {name}", language, mark=mark, name=class_name(classes[guess], language)),
                fontsize=9,
                color=RIGHT if right else WRONG,
            )
            axis.set_xlabel(translate("true: {name}", language, name=class_name(classes[truth], language)), fontsize=8)
            if column == 0:
                axis.set_ylabel(regime, fontsize=10, color=colour(regime, row), fontweight="bold")
    figure.suptitle(
        translate("Test photos: each regime's prediction (green ✓ right, red ✗ wrong)", language), fontsize=11
    )
    return _save(figure, path)


def plot_confusion(
    matrices: Mapping[str, torch.Tensor],
    classes: Sequence[str],
    *,
    path: str | os.PathLike | None = None,
    language: str = "en",
) -> Figure:
    """One confusion matrix per regime: rows true class, columns predicted class, colour the
    share of the row, numbers the counts (left out beyond 12 classes, where they would not fit)."""
    check_language(language)
    names = [class_name(name, language) for name in classes]
    regimes = list(matrices)
    size = 3.2 + 0.12 * max(0, len(classes) - 3)
    figure = Figure(figsize=(size * len(regimes) + 0.6, size + 0.4), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, len(regimes), squeeze=False)[0])
    annotate = len(classes) <= 12
    image = None
    for axis, regime in zip(axes, regimes, strict=True):
        counts = np.asarray(matrices[regime], dtype=float)
        shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        image = axis.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        accuracy = np.trace(counts) / max(counts.sum(), 1)
        axis.set_title(
            translate("{regime}: {accuracy:.1%} right", language, regime=regime, accuracy=accuracy),
            color=colour(regime, regimes.index(regime)),
            fontsize=10,
        )
        if annotate:
            axis.set_xticks(range(len(classes)), names, rotation=30, ha="right", fontsize=8)
            axis.set_yticks(range(len(classes)), names, fontsize=8)
            for i in range(len(classes)):
                for j in range(len(classes)):
                    axis.text(
                        j,
                        i,
                        f"{int(counts[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=9,
                        color="white" if shares[i, j] > 0.6 else "black",
                    )
        axis.set_xlabel(translate("predicted", language))
        axis.set_ylabel(translate("true", language))
    if image is not None:
        figure.colorbar(image, ax=list(axes), shrink=0.8, label=translate("share of the true class", language))
    return _save(figure, path)


def plot_probes(
    probes: Sequence[tuple[str, int, float]],
    *,
    baseline: float | None = None,
    path: str | os.PathLike | None = None,
    language: str = "en",
) -> Figure:
    """Test accuracy of a linear head on each stage's pooled features: where to cut the backbone.

    ``probes`` are ``(stage, features, test accuracy)`` in stage order; ``baseline`` is the
    accuracy of always answering the largest class, drawn as a dashed line."""
    check_language(language)
    figure = Figure(figsize=(7, 3.6), layout="constrained")
    axis = figure.subplots()
    names = [
        f"{stage}\n" + translate("{features} features", language, features=features) for stage, features, _ in probes
    ]
    values = [100 * accuracy for _, _, accuracy in probes]
    bars = axis.bar(names, values, color=REGIME_COLOURS["feature_extraction"])
    for bar, value in zip(bars, values, strict=True):
        axis.annotate(
            f"{value:.1f}",
            (bar.get_x() + bar.get_width() / 2, value),
            xytext=(0, 3),
            textcoords="offset points",
            ha="center",
            fontsize=9,
        )
    if baseline is not None:
        label = translate("always the largest class: {accuracy:.1%}", language, accuracy=baseline)
        axis.axhline(100 * baseline, color="dimgrey", linestyle="--", linewidth=1.2, zorder=3, label=label)
        axis.legend(loc="lower right", fontsize=8, framealpha=0.9)
    low = min([*values, 100 * baseline if baseline is not None else min(values)])
    axis.set_ylim(max(0, low - 10), 100)
    axis.set_ylabel(translate("test accuracy (%)", language))
    axis.set_title(translate("A linear head on the pooled output of each stage", language))
    axis.grid(axis="y", alpha=0.3)
    return _save(figure, path)
