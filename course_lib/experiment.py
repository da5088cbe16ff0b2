"""The course's main experiment: fresh, finetune and feature_extraction on the same photos.

``python -m course_lib experiment`` trains each regime (for each seed), tests it, and writes a
results folder::

    settings.json                  everything needed to repeat the run, and the hardware
    summary.md                     the comparison table and how it was made
    histories/<regime>-seed<N>.json / .csv   per-epoch records (see train.History)
    curves.png  time_to_90.png  predictions.png  confusion.png
    test_predictions.csv           every test photo: true class and each regime's prediction (first seed)
    test_accuracy.csv              test accuracy of every regime and seed

Checkpoints of the runs go to ``--runs`` (default ``runs/<name of --out>``), outside the
results, so that ``--resume`` can continue an interrupted experiment.

The defaults depend on the device (see ``PROFILES``): on a CPU, 64 px photos and epochs sized to
finish three seeds within 15 minutes on two cores; on CUDA, 96 px and enough epochs for
fine-tuning to pass 90 % validation accuracy, in seconds of training.
"""

from __future__ import annotations

import csv
import shlex
import statistics
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import torch

from course_lib import PROJECT_ROOT, REGIMES, TARGET_ACCURACY, distributed, plots
from course_lib.data import AUGMENTATION_TEXT, TASKS, ProductData, load_products
from course_lib.errors import CourseError
from course_lib.evaluation import Predictions, predict
from course_lib.history import History
from course_lib.models import STAGE_NAMES
from course_lib.options import option, per_key, to_argv, whole_number
from course_lib.regimes import count_trainable, prepare_model
from course_lib.runtime import (
    PRECISIONS,
    device_name,
    provenance,
    read_record,
    resolve_device,
    seed_everything,
    warm_up,
    write_record,
)
from course_lib.train import TrainConfig, fit
from course_lib.weights import DEFAULT_CHECKPOINT, Checkpoint, resolve

__all__ = [
    "DEFAULT_LR",
    "PROFILES",
    "ExperimentConfig",
    "Profile",
    "RegimeRun",
    "Results",
    "read_results",
    "run",
    "run_experiment",
]


@dataclass(frozen=True)
class Profile:
    """The defaults that suit one kind of device: photo size and epochs per regime."""

    image_size: int
    epochs: dict[str, int]


# 64 px is the resolution of the shipped CIFAR-10 weights (BatchNorm statistics frozen under
# feature_extraction fit the input size they were learnt at). On two CPU cores an epoch of the
# 2,240 embedded photos at 64 px takes about 13 s for fresh and finetune, so 8 epochs each and
# three seeds fit in 15 minutes. On a GPU an epoch at 96 px takes a fraction of a second, and
# fine-tuning passes 90 % validation accuracy after about 10 epochs (results/experiment-gpu).
# feature_extraction's epochs are L-BFGS passes over cached features: milliseconds each.
PROFILES = {
    "cpu": Profile(64, {"fresh": 8, "finetune": 8, "feature_extraction": 10}),
    "cuda": Profile(96, {"fresh": 30, "finetune": 30, "feature_extraction": 10}),
}
# One peak learning rate for every regime, so that the regimes differ only in what they start
# from and what they train (finetune's backbone gets regimes.BACKBONE_LR_FACTOR of it).
DEFAULT_LR = {"fresh": 0.05, "finetune": 0.05, "feature_extraction": 0.05}


def _per_regime_text(values: dict) -> str:
    return ",".join(f"{regime}={value}" for regime, value in values.items())


@dataclass
class ExperimentConfig:
    """The options of ``python -m course_lib experiment``, each declared once, here."""

    regimes: list[str] = option(
        list(REGIMES), "regimes to train, space or comma separated", many=True, metavar="REGIME"
    )
    task: str = option("super", "label level: super (3 classes), coarse or fine", choices=TASKS)
    epochs: dict[str, int] | None = option(
        None,
        "epochs for every regime, or per regime as fresh=8,finetune=8",
        parse=per_key("--epochs", REGIMES, int),
        show=_per_regime_text,
        metavar="N|REGIME=N,...",
        default_text=f"on a CPU {_per_regime_text(PROFILES['cpu'].epochs)}; on CUDA "
        f"{_per_regime_text(PROFILES['cuda'].epochs)}",
    )
    lr: dict[str, float] = option(
        DEFAULT_LR,
        "head learning rate, one or per regime",
        parse=per_key("--lr", REGIMES, float, DEFAULT_LR),
        show=_per_regime_text,
        metavar="LR|REGIME=LR,...",
    )
    image_size: int | None = option(
        None,
        "pixels per side",
        parse=int,
        default_text=f"{PROFILES['cpu'].image_size} on a CPU, {PROFILES['cuda'].image_size} on CUDA",
    )
    cut: str = option("layer4", "feature_extraction: the stage whose pooled output feeds the head", choices=STAGE_NAMES)
    batch_size: int = option(64, "photos per SGD step")
    data: str | None = option(
        None,
        "dataset folder: the full Grocery Store Dataset or any root/<class>/*.jpg",
        metavar="PATH",
        default_text="the embedded copy in data/grocery-store",
    )
    weights: str | None = option(
        None,
        "starting weights for finetune and feature_extraction: a checkpoint file or imagenet",
        metavar="PATH|imagenet",
        default_text=f"the shipped checkpoint {DEFAULT_CHECKPOINT.relative_to(PROJECT_ROOT)}",
    )
    seeds: list[int] = option(
        [0], "one run per seed; several give mean ± std", many=True, parse=whole_number("--seeds"), metavar="SEED"
    )
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda, cuda:N or mps")
    precision: str = option(
        "auto", "auto: bf16 autocast on CUDA (fp16 where bf16 is missing), fp32 elsewhere", choices=PRECISIONS
    )
    target: float = option(TARGET_ACCURACY, "validation accuracy to time, a fraction")
    out: str = option("results/experiment", "results folder")
    runs: str | None = option(None, "checkpoint folder", default_text="runs/<name of --out>")
    resume: bool = option(False, "continue interrupted runs from their checkpoints")
    augment: bool = option(True, "train on the photos as stored, without augmentation")
    feature_cache: bool = option(True, "feature_extraction runs every photo through the frozen backbone each epoch")
    skip_corrupt: bool = option(False, "skip unreadable photos (they are counted in the summary) instead of stopping")
    limit: int | None = option(
        None,
        "use at most N photos of each split, spread over the classes (quick trials)",
        parse=whole_number("--limit", minimum=1),
        metavar="N",
    )

    def __post_init__(self) -> None:
        unknown = [r for r in self.regimes if r not in REGIMES]
        if unknown or not self.regimes:
            raise CourseError(f"Unknown regime {', '.join(unknown) or '(none)'}; choose from {', '.join(REGIMES)}.")
        self.regimes = list(dict.fromkeys(self.regimes))
        self.seeds = list(dict.fromkeys(self.seeds))
        if not 0 < self.target <= 1:
            raise CourseError(f"--target is a fraction of right answers in (0, 1], e.g. 0.9; got {self.target}.")
        if self.image_size is not None and self.image_size < 32:
            raise CourseError(f"--image-size must be at least 32 pixels for ResNet-18; got {self.image_size}.")
        if self.batch_size < 1:
            raise CourseError(f"--batch-size must be at least 1; got {self.batch_size}.")
        if self.data is not None and not Path(self.data).expanduser().is_dir():
            raise CourseError(
                f"--data {self.data}: no such folder. Give the dataset folder, or leave --data out for the "
                "embedded copy."
            )

    @property
    def run_folder(self) -> Path:
        """Where the resumable checkpoints of the runs go: ``--runs``, or ``runs/<name of --out>``."""
        return Path(self.runs) if self.runs else Path("runs") / Path(self.out).resolve().name

    def for_device(self, device: torch.device) -> ExperimentConfig:
        """This config with the device's defaults filled in (see PROFILES; MPS counts as a CPU)."""
        profile = PROFILES["cuda" if device.type == "cuda" else "cpu"]
        return replace(
            self,
            image_size=self.image_size or profile.image_size,
            epochs={**profile.epochs, **(self.epochs or {})},
        )

    def training(self, regime: str, seed: int) -> TrainConfig:
        """How ``fit`` trains ``regime`` with ``seed`` (a config already ``for_device``)."""
        return TrainConfig(
            epochs=self.epochs[regime],
            batch_size=self.batch_size,
            seed=seed,
            augment="resized_crop" if self.augment else "none",
            precision=self.precision,
            device=self.device,
            feature_cache=None if self.feature_cache else False,
        )


@dataclass
class RegimeRun:
    """One regime trained with one seed, and its test results."""

    regime: str
    seed: int
    history: History
    predictions: Predictions
    trainable_parameters: int
    weights_note: str


def run(config: ExperimentConfig) -> int:
    """``python -m course_lib experiment``: the command recorded is the one that repeats the run."""
    command = shlex.join(["python", "-m", "course_lib", "experiment", *to_argv(config)])
    run_experiment(config, command=command, log=print)
    if distributed.current().is_main:
        print(
            f"Results in {config.out}/ (summary.md, curves.png, time_to_{_percent(config.target)}.png, "
            "predictions.png, confusion.png)"
        )
    return 0


# --------------------------------------------------------------------------- the experiment


def run_experiment(
    config: ExperimentConfig, *, command: str = "", progress: bool | None = None, log: Any = print
) -> list[RegimeRun]:
    """Train, test and report every regime and seed of ``config``; write the results to ``config.out``."""
    started = time.perf_counter()
    device = resolve_device(config.device)
    config = config.for_device(device)
    context = distributed.setup(device)
    if not context.is_main:  # under torchrun only rank 0 reports and writes
        log, progress = (lambda *args, **kwargs: None), False
    record = provenance(device, command)
    processes = f", {context.world_size} processes (DistributedDataParallel)" if context.enabled else ""
    log(f"Device: {device} ({device_name(device)}){processes}")
    # Read the starting weights once, before anything else, so that a missing file stops the run early.
    pretrained = resolve(config.weights) if set(config.regimes) - {"fresh"} else None
    data = load_products(
        config.data, task=config.task, image_size=config.image_size, skip_corrupt=config.skip_corrupt, progress=progress
    )
    if config.limit is not None:
        data = data.subset(config.limit)
    _log_data(data, log)

    warm_up(device, config.image_size, min(config.batch_size, len(data.train)))
    results: list[RegimeRun] = []
    for seed in config.seeds:
        for regime in config.regimes:
            results.append(train_regime(regime, seed, data, config, weights=pretrained, progress=progress))
            log(_one_line(results[-1], config.target))
    record["wall_seconds"] = round(time.perf_counter() - started, 1)
    if context.is_main:
        write_results(config, results, data, record, pretrained=_weights_meta(pretrained))
    context.barrier()
    return results


def _log_data(data: ProductData, log: Any) -> None:
    classes = ", ".join(data.classes[:6]) + (", ..." if data.num_classes > 6 else "")
    log(
        f"Data: {len(data.train)} train, {len(data.val)} val, {len(data.test)} test photos, "
        f"{data.num_classes} classes ({classes})"
    )
    for what, files in (("skipped unreadable", data.skipped_files), ("ignored non-image", data.ignored_files)):
        if files:
            log(f"Data: {what} files: {len(files)} (first: {files[0]})")


def _weights_meta(checkpoint: Checkpoint | None) -> dict:
    """What the starting weights' checkpoint says about itself (plain values only)."""
    if checkpoint is None:
        return {}
    keys = ("source", "path", "epochs", "image_size", "test_accuracy", "seconds", "sha256", "date")
    meta = {k: checkpoint.meta[k] for k in keys if k in checkpoint.meta}
    if "path" in meta:
        meta["path"] = str(meta["path"]).replace(f"{PROJECT_ROOT}/", "")
    return meta


def train_regime(
    regime: str,
    seed: int,
    data: ProductData,
    config: ExperimentConfig,
    *,
    weights: Checkpoint | None = None,
    progress: bool | None = None,
) -> RegimeRun:
    """Train one regime with one seed and test it. ``weights``: the starting weights for
    finetune and feature_extraction (None: ``config.weights``)."""
    seed_everything(seed)
    weights = None if regime == "fresh" else (weights if weights is not None else config.weights)
    cut = config.cut if regime == "feature_extraction" else "layer4"
    model, groups = prepare_model(regime, data.num_classes, weights=weights, lr=config.lr[regime], cut=cut)
    history = fit(
        model,
        groups,
        data,
        config.training(regime, seed),
        out=config.run_folder / f"{regime}-seed{seed}",
        resume=config.resume,
        progress=progress,
    )
    return RegimeRun(
        regime=regime,
        seed=seed,
        history=history,
        predictions=predict(model, data.test, precision=config.precision),
        trainable_parameters=count_trainable(model),
        weights_note=getattr(model, "weights_note", ""),
    )


def _one_line(result: RegimeRun, target: float) -> str:
    h = result.history
    reached = h.time_to(target)
    when = f"{target:.0%} after {reached:.0f} s" if reached is not None else f"{target:.0%} not reached"
    return (
        f"{result.regime} (seed {result.seed}): {len(h)} epochs, best val {h.best_val_accuracy:.1%}, "
        f"test {result.predictions.accuracy:.1%}, {h.seconds_per_epoch:.1f} s/epoch, {when}"
    )


# --------------------------------------------------------------------------- results folder


def write_results(
    config: ExperimentConfig,
    results: list[RegimeRun],
    data: ProductData,
    record: dict,
    *,
    pretrained: dict | None = None,
) -> Path:
    """The results folder: histories, figures, CSVs, settings.json and summary.md."""
    out = Path(config.out)
    histories_dir = out / "histories"
    histories_dir.mkdir(parents=True, exist_ok=True)
    for stale in list(histories_dir.glob("*.json")) + list(histories_dir.glob("*.csv")):
        stale.unlink()
    by_regime: dict[str, list[RegimeRun]] = {}
    for result in results:
        by_regime.setdefault(result.regime, []).append(result)
        name = f"{result.regime}-seed{result.seed}"
        result.history.to_json(histories_dir / f"{name}.json")
        result.history.to_csv(histories_dir / f"{name}.csv")
    first_seed = {regime: runs[0] for regime, runs in by_regime.items()}
    _write_figures(out, by_regime, data, config.target)
    _write_test_predictions(out / "test_predictions.csv", data, first_seed)
    _write_test_accuracy(out / "test_accuracy.csv", results)

    record = {
        **record,
        "data": data.source.replace(f"{PROJECT_ROOT}/", ""),
        "photos": {name: len(split) for name, split in data.splits().items()},
        "classes": data.classes,
        "weights": {regime: run.weights_note.replace(f"{PROJECT_ROOT}/", "") for regime, run in first_seed.items()},
        "pretrained": pretrained or {},
        "training": results[0].history.settings if results else {},
        "options": asdict(config),
    }
    write_record(out, record)
    (out / "summary.md").write_text(summary_markdown(by_regime, data, config, record))
    return out


def _write_figures(out: Path, by_regime: dict[str, list[RegimeRun]], data: ProductData, target: float) -> None:
    histories = {regime: [r.history for r in runs] for regime, runs in by_regime.items()}
    first_seed = {regime: runs[0] for regime, runs in by_regime.items()}
    plots.plot_curves(histories, target=target, path=out / "curves.png")
    plots.plot_time_to_target(histories, target, path=out / f"time_to_{_percent(target)}.png")
    plots.plot_predictions(
        data.test.images,
        data.test.labels,
        {regime: run.predictions.predicted for regime, run in first_seed.items()},
        data.classes,
        path=out / "predictions.png",
    )
    plots.plot_confusion(
        {regime: run.predictions.confusion(data.num_classes) for regime, run in first_seed.items()},
        data.classes,
        path=out / "confusion.png",
    )


@dataclass
class Results:
    """A results folder read back: what the book and the benchmarks show of a run.

    ``histories`` and ``test_accuracy`` hold one entry per seed, in the order of ``seeds``."""

    folder: Path
    settings: dict
    seeds: list[int]
    histories: dict[str, list[History]]
    test_accuracy: dict[str, list[float]]


def read_results(folder: str | Path) -> Results:
    """The results folder that ``python -m course_lib experiment`` wrote to ``folder``."""
    folder = Path(folder)
    settings = read_record(folder, "python -m course_lib experiment")
    seeds = list(settings["options"]["seeds"])
    regimes = [r for r in REGIMES if r in settings["options"]["regimes"]]
    histories = {
        regime: [History.from_json(folder / "histories" / f"{regime}-seed{seed}.json") for seed in seeds]
        for regime in regimes
    }
    accuracy: dict[str, dict[int, float]] = {regime: {} for regime in regimes}
    with open(folder / "test_accuracy.csv", newline="") as file:
        for row in csv.DictReader(file):
            accuracy[row["regime"]][int(row["seed"])] = float(row["test_accuracy"])
    test_accuracy = {regime: [accuracy[regime][seed] for seed in seeds] for regime in regimes}
    return Results(folder, settings, seeds, histories, test_accuracy)


def _write_test_predictions(path: Path, data: ProductData, first_seed: dict[str, RegimeRun]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["path", "true", *first_seed])
        for i, photo in enumerate(data.test.paths):
            guesses = [data.classes[int(run.predictions.predicted[i])] for run in first_seed.values()]
            writer.writerow([photo, data.classes[int(data.test.labels[i])], *guesses])


def _write_test_accuracy(path: Path, results: list[RegimeRun]) -> None:
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["regime", "seed", "test_accuracy"])
        for run in results:
            writer.writerow([run.regime, run.seed, f"{run.predictions.accuracy:.6f}"])


def _percent(fraction: float) -> str:
    return f"{100 * fraction:g}"


def _mean_std(values: list[float], scale: float = 1.0, digits: int = 1, unit: str = "") -> str:
    values = [scale * v for v in values]
    if len(values) == 1:
        return f"{values[0]:.{digits}f}{unit}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}{unit}"


def _time_to_cell(histories: list[History], target: float) -> str:
    times = [h.time_to(target) for h in histories]
    reached = [t for t in times if t is not None]
    if not reached:
        best = max(h.best_val_accuracy for h in histories)
        return f"not reached (best {100 * best:.1f} %)"
    epochs = [h.epochs_to(target) for h in histories if h.epochs_to(target) is not None]
    cell = f"{_mean_std(reached, digits=0)} s (epoch {statistics.mean(epochs):g})"
    if len(reached) < len(histories):
        cell += f", in {len(reached)} of {len(histories)} seeds"
    return cell


def _training_text(settings: dict) -> str:
    text = settings.get("optimizer", "")
    if "head_weight_decay" in settings:
        text += f"; chosen: {settings['head_weight_decay']:g}"
    return text


def summary_markdown(
    by_regime: dict[str, list[RegimeRun]], data: ProductData, config: ExperimentConfig, record: dict
) -> str:
    """summary.md: the comparison table, what the times count, and how the run was made."""
    seeds = config.seeds
    over = "mean ± std over seeds " + ", ".join(map(str, seeds)) + "." if len(seeds) > 1 else f"seed {seeds[0]}."
    lines = [
        "# Three regimes on product photos",
        "",
        f"Task `{data.task}` ({data.num_classes} classes), {config.image_size} px photos; "
        f"{len(data.train)} train / {len(data.val)} validation / {len(data.test)} test photos. Accuracies in %; {over}",
        "",
        *_summary_table(by_regime, config.target),
        "",
        _what_times_count(by_regime, record["device"]),
        "",
        "## How it was made",
        "",
        *_how_it_was_made(by_regime, config, record),
        "",
        "Settings in full: `settings.json`; per-epoch histories: `histories/`.",
        "",
    ]
    return "\n".join(lines)


def _summary_table(by_regime: dict[str, list[RegimeRun]], target: float) -> list[str]:
    lines = [
        "| regime | trainable parameters | epochs | best val acc | test acc | s / epoch "
        f"| time to {target:.0%} val acc | peak memory |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for regime, runs in by_regime.items():
        histories = [r.history for r in runs]
        lines.append(
            f"| {regime} | {runs[0].trainable_parameters:,} | {len(histories[0])} "
            f"| {_mean_std([h.best_val_accuracy for h in histories], 100)} "
            f"| {_mean_std([r.predictions.accuracy for r in runs], 100)} "
            f"| {_mean_std([h.seconds_per_epoch for h in histories])} "
            f"| {_time_to_cell(histories, target)} "
            f"| {max(h.peak_memory_bytes for h in histories) / 2**20:,.0f} MiB |"
        )
    return lines


def _what_times_count(by_regime: dict[str, list[RegimeRun]], device: str) -> str:
    setup = {
        regime: runs[0].history.setup_seconds for regime, runs in by_regime.items() if runs[0].history.setup_seconds
    }
    cached = ", ".join(f"{regime} {s:.1f} s" for regime, s in setup.items())
    memory = (
        "CUDA peak allocation" if device.startswith("cuda") else "the process peak resident memory (all regimes so far)"
    )
    return (
        "Times are training seconds (forward and backward passes over the training photos"
        + (f", plus computing the cached features once: {cached}" if setup else "")
        + f"); validating after each epoch is not counted. Peak memory is {memory}."
    )


def _how_it_was_made(by_regime: dict[str, list[RegimeRun]], config: ExperimentConfig, record: dict) -> list[str]:
    training = record["training"]
    cached = "feature_extraction" in by_regime and config.feature_cache
    lines = [
        f"- Command: `{record['command']}`",
        f"- Date: {record['date']}; total wall time {record['wall_seconds'] / 60:.1f} min "
        "(data loading, training, testing, plots)",
        f"- Device: `{record['device']}`, {record['device_name']}; torch {record['torch']}",
        f"- Data: {record['data']}",
        f"- Seeds: {', '.join(map(str, config.seeds))}",
        f"- Epochs: {_per_regime_text({r: config.epochs[r] for r in by_regime})}; "
        f"head learning rate: {_per_regime_text({r: config.lr[r] for r in by_regime})}; batch size {config.batch_size}",
        f"- Precision: {training.get('autocast', '')}",
        f"- Augmentation of training batches: {AUGMENTATION_TEXT['resized_crop' if config.augment else 'none']}"
        + (
            "; feature_extraction trains its head on cached features of the photos as stored (no augmentation)"
            if cached
            else ""
        ),
    ]
    lines += [f"- Training, {regime}: {_training_text(runs[0].history.settings)}" for regime, runs in by_regime.items()]
    lines += [f"- Weights, {regime}: {note}" for regime, note in record["weights"].items()]
    meta = record["pretrained"]
    if meta.get("source"):
        accuracy = meta.get("test_accuracy")
        accuracy = f"{100 * accuracy:.1f} %" if isinstance(accuracy, float) else "not recorded"
        lines.append(
            f"- Pretrained weights: `{meta.get('path', '?')}`, trained on {meta.get('source', '?')} for "
            f"{meta.get('epochs', '?')} epochs at {meta.get('image_size', '?')} px; its test accuracy there: {accuracy}"
        )
    return lines
