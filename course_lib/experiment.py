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

The defaults (32 px, see DEFAULT_IMAGE_SIZE and DEFAULT_EPOCHS) are sized to finish well
within 15 minutes on two idle CPU cores; on a GPU the same command takes seconds per regime.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from course_lib import PROJECT_ROOT, REGIMES, plots
from course_lib import distributed
from course_lib.data import TASKS, ProductData, load_products
from course_lib.errors import CourseError
from course_lib.models import ResNet18
from course_lib.regimes import count_trainable, prepare_model
from course_lib.train import History, Predictions, device_name, fit, predict, resolve_device, seed_everything
from course_lib.weights import resolve

__all__ = ["DEFAULT_EPOCHS", "DEFAULT_LR", "RegimeRun", "add_arguments", "run", "run_experiment"]

# 32 px, the resolution the shipped CIFAR-10 weights were trained at. Their frozen BatchNorm
# statistics fit 32 px inputs; at 64 px the same photos give layer4 activations about 200
# times larger (mean |feature| 17 instead of 0.09), and the feature_extraction head, which
# cannot adapt BatchNorm, diverges. fresh reaches about the same accuracy at 32 and 64 px
# in its first epochs, at a quarter of the cost.
DEFAULT_IMAGE_SIZE = 32
# Epochs per regime, sized for two CPU cores: at 32 px ResNet-18 trains at about 200 photos
# per CPU-second, so an epoch of the 2,240 embedded photos takes 6-10 s on two idle cores and
# the whole default run a few minutes, well inside 15 (on a shared machine it took longer:
# summary.md records the wall time). feature_extraction epochs cost milliseconds once its
# features are cached.
DEFAULT_EPOCHS = {"fresh": 8, "finetune": 8, "feature_extraction": 30}
# One peak learning rate for every regime, so that the regimes differ only in what they start
# from and what they train (finetune's backbone gets regimes.BACKBONE_LR_FACTOR of it).
DEFAULT_LR = {"fresh": 0.05, "finetune": 0.05, "feature_extraction": 0.05}
DEFAULT_BATCH_SIZE = 64


@dataclass
class RegimeRun:
    """One regime trained with one seed, and its test results."""

    regime: str
    seed: int
    history: History
    predictions: Predictions
    trainable_parameters: int
    weights_note: str


@dataclass
class Settings:
    regimes: list[str]
    task: str = "super"
    epochs: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_EPOCHS))
    lr: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_LR))
    image_size: int = DEFAULT_IMAGE_SIZE
    batch_size: int = DEFAULT_BATCH_SIZE
    data: str | None = None
    weights: str | None = None
    seeds: list[int] = field(default_factory=lambda: [0])
    device: str = "auto"
    precision: str = "auto"
    target: float = 0.90
    augment: bool = True
    cache_features: bool = True
    limit: int | None = None
    skip_corrupt: bool = False


# --------------------------------------------------------------------------- command line


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--regimes", nargs="+", default=list(REGIMES), metavar="REGIME",
                        help=f"regimes to train, space or comma separated (default: {' '.join(REGIMES)})")
    parser.add_argument("--task", default="super", choices=TASKS, help="label level (default: super, 3 classes)")
    parser.add_argument("--epochs", default=None, metavar="N|REGIME=N,...",
                        help="epochs for every regime, or per regime as fresh=8,finetune=8 "
                        f"(default: {_format_per_regime(DEFAULT_EPOCHS)})")
    parser.add_argument("--lr", default=None, metavar="LR|REGIME=LR,...",
                        help=f"head learning rate, one or per regime (default: {_format_per_regime(DEFAULT_LR)})")
    parser.add_argument("--image-size", type=int, default=DEFAULT_IMAGE_SIZE, help=f"pixels per side (default: {DEFAULT_IMAGE_SIZE}, the resolution of the shipped weights)")
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH_SIZE, help="(default: 64)")
    parser.add_argument("--data", default=None, metavar="PATH",
                        help="dataset folder: the full Grocery Store Dataset or any root/<class>/*.jpg "
                        "(default: the embedded copy in data/grocery-store)")
    parser.add_argument("--weights", default=None, metavar="PATH|imagenet",
                        help="starting weights for finetune and feature_extraction "
                        "(default: the shipped CIFAR-10 checkpoint data/weights/resnet18-cifar10.pt)")
    parser.add_argument("--seeds", nargs="+", default=["0"], metavar="SEED",
                        help="one run per seed; several give mean ± std (default: 0)")
    parser.add_argument("--device", default="auto", help="auto (CUDA, then MPS, then CPU), cpu, cuda, mps")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"),
                        help="auto: bf16 autocast on CUDA (fp16 where bf16 is missing), fp32 elsewhere")
    parser.add_argument("--target", type=float, default=0.90, help="validation accuracy to time (default: 0.90)")
    parser.add_argument("--out", default="results/experiment", help="results folder (default: results/experiment)")
    parser.add_argument("--runs", default=None, help="checkpoint folder (default: runs/<name of --out>)")
    parser.add_argument("--resume", action="store_true", help="continue interrupted runs from their checkpoints")
    parser.add_argument("--no-augment", action="store_true", help="train on the photos as stored")
    parser.add_argument("--no-feature-cache", action="store_true",
                        help="feature_extraction runs every photo through the frozen backbone each epoch")
    parser.add_argument("--skip-corrupt", action="store_true",
                        help="skip unreadable photos (they are counted in the summary) instead of stopping")
    parser.add_argument("--limit", type=int, default=None, metavar="N",
                        help="use at most N photos of each split, spread over the classes (quick trials)")


def run(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    out = Path(args.out)
    runs = Path(args.runs) if args.runs else Path("runs") / out.resolve().name
    command = "python -m course_lib " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "python -m course_lib experiment"
    run_experiment(settings, out, runs=runs, resume=args.resume, command=command, progress=None, log=print)
    if distributed.current().is_main:
        print(f"Results in {out}/ (summary.md, curves.png, time_to_{_percent(settings.target)}.png, predictions.png, confusion.png)")
    return 0


def settings_from_args(args: argparse.Namespace) -> Settings:
    regimes = _split_words(args.regimes)
    unknown = [r for r in regimes if r not in REGIMES]
    if unknown or not regimes:
        raise CourseError(f"Unknown regime {', '.join(unknown) or '(none)'}; choose from {', '.join(REGIMES)}.")
    seeds = []
    for word in _split_words(args.seeds):
        try:
            seeds.append(int(word))
        except ValueError:
            raise CourseError(f"--seeds takes whole numbers, not {word!r}.") from None
    if not 0 < args.target <= 1:
        raise CourseError(f"--target is a fraction of right answers in (0, 1], e.g. 0.9; got {args.target}.")
    if args.image_size < 32:
        raise CourseError(f"--image-size must be at least 32 pixels for ResNet-18; got {args.image_size}.")
    if args.batch_size < 1:
        raise CourseError(f"--batch-size must be at least 1; got {args.batch_size}.")
    if args.limit is not None and args.limit < 1:
        raise CourseError(f"--limit must be at least 1; got {args.limit}.")
    if args.data is not None and not Path(args.data).expanduser().is_dir():
        raise CourseError(f"--data {args.data}: no such folder. Give the dataset folder, or leave --data out for the embedded copy.")
    return Settings(
        regimes=list(dict.fromkeys(regimes)),
        task=args.task,
        epochs=_per_regime(args.epochs, DEFAULT_EPOCHS, int, "--epochs"),
        lr=_per_regime(args.lr, DEFAULT_LR, float, "--lr"),
        image_size=args.image_size,
        batch_size=args.batch_size,
        data=args.data,
        weights=args.weights,
        seeds=list(dict.fromkeys(seeds)),
        device=args.device,
        precision=args.precision,
        target=args.target,
        augment=not args.no_augment,
        cache_features=not args.no_feature_cache,
        limit=args.limit,
        skip_corrupt=args.skip_corrupt,
    )


def _split_words(values: list[str]) -> list[str]:
    return [word for value in values for word in value.replace(",", " ").split()]


def _per_regime(text: str | None, defaults: dict, kind, option: str) -> dict:
    """``"10"`` for every regime, or ``"fresh=8,finetune=4"`` over the defaults."""
    values = dict(defaults)
    if text is None:
        return values
    try:
        if "=" not in text:
            values = {regime: kind(text) for regime in defaults}
        else:
            for pair in text.split(","):
                regime, value = (part.strip() for part in pair.split("=", 1))
                if regime not in REGIMES:
                    raise CourseError(f"{option}: unknown regime {regime!r}; choose from {', '.join(REGIMES)}.")
                values[regime] = kind(value)
    except ValueError:
        raise CourseError(f"{option} takes a number or REGIME=NUMBER pairs separated by commas, not {text!r}.") from None
    if any(v <= 0 for v in values.values()):
        raise CourseError(f"{option} values must be positive; got {text!r}.")
    return values


def _format_per_regime(values: dict) -> str:
    return ",".join(f"{regime}={value}" for regime, value in values.items())


# --------------------------------------------------------------------------- the experiment


def run_experiment(
    settings: Settings,
    out: str | Path,
    *,
    runs: str | Path | None = None,
    resume: bool = False,
    command: str = "",
    progress: bool | None = None,
    log=print,
) -> list[RegimeRun]:
    """Train, test and report every regime and seed of ``settings``; write the results to ``out``."""
    started = time.perf_counter()
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    device = resolve_device(settings.device)
    context = distributed.setup(device)
    if not context.is_main:  # under torchrun only rank 0 reports and writes
        log, progress = (lambda *args, **kwargs: None), False
    processes = f", {context.world_size} processes (DistributedDataParallel)" if context.enabled else ""
    log(f"Device: {device} ({device_name(device)}){processes}")
    # Read the starting weights once, before anything else, so that a missing file stops the run early.
    pretrained = resolve(settings.weights) if set(settings.regimes) - {"fresh"} else None
    data = load_products(settings.data, task=settings.task, image_size=settings.image_size,
                         skip_corrupt=settings.skip_corrupt, progress=progress)
    if settings.limit is not None:
        data = limit_data(data, settings.limit)
    log(f"Data: {len(data.train)} train, {len(data.val)} val, {len(data.test)} test photos, "
        f"{data.num_classes} classes ({', '.join(data.classes[:6])}{', ...' if data.num_classes > 6 else ''})")
    for what, files in (("skipped unreadable", data.skipped_files), ("ignored non-image", data.ignored_files)):
        if files:
            log(f"Data: {what} files: {len(files)} (first: {files[0]})")

    warm_up(device, settings.image_size, min(settings.batch_size, len(data.train)))
    results: list[RegimeRun] = []
    for seed in settings.seeds:
        for regime in settings.regimes:
            results.append(train_regime(regime, seed, data, settings, weights=pretrained, runs=runs, resume=resume,
                                        progress=progress))
            log(_one_line(results[-1], settings.target))
    wall_seconds = time.perf_counter() - started
    if context.is_main:
        write_results(out, results, data, settings, command=command, date=date, wall_seconds=wall_seconds,
                      pretrained=_weights_meta(pretrained))
    context.barrier()
    return results


def warm_up(device: torch.device, image_size: int, batch_size: int) -> None:
    """One untimed training step of a throwaway network, so that the first regime timed does
    not also pay the process's one-off costs (kernel selection, memory pools, lazy imports)."""
    model = ResNet18(num_classes=2).to(device)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()


def _weights_meta(checkpoint) -> dict:
    """What the starting weights' checkpoint says about itself (plain values only)."""
    if checkpoint is None:
        return {}
    keys = ("source", "path", "epochs", "image_size", "test_accuracy", "seconds", "sha256", "date")
    meta = {k: checkpoint.meta[k] for k in keys if k in checkpoint.meta}
    if "path" in meta:
        meta["path"] = str(meta["path"]).replace(f"{PROJECT_ROOT}/", "")
    return meta


def train_regime(regime: str, seed: int, data: ProductData, settings: Settings, *, weights=None, runs=None,
                 resume=False, progress=None) -> RegimeRun:
    """Train one regime with one seed and test it. ``weights``: the starting weights for
    finetune and feature_extraction (None: ``settings.weights``)."""
    seed_everything(seed)
    weights = None if regime == "fresh" else (weights if weights is not None else settings.weights)
    model, groups = prepare_model(regime, data.num_classes, weights=weights, lr=settings.lr[regime])
    history = fit(
        model, groups, data,
        epochs=settings.epochs[regime],
        batch_size=settings.batch_size,
        device=settings.device,
        seed=seed,
        out=Path(runs) / f"{regime}-seed{seed}" if runs is not None else None,
        resume=resume,
        augment=settings.augment,
        target=settings.target,
        progress=progress,
        precision=settings.precision,
        cache_features=None if settings.cache_features else False,
    )
    return RegimeRun(
        regime=regime,
        seed=seed,
        history=history,
        predictions=predict(model, data.test, precision=settings.precision),
        trainable_parameters=count_trainable(model),
        weights_note=getattr(model, "weights_note", ""),
    )


def limit_data(data: ProductData, limit: int) -> ProductData:
    """At most ``limit`` photos per split, spread evenly over the photos sorted by class."""
    def cut(split):
        if len(split) <= limit:
            return split
        keep = torch.tensor(sorted(plots.select_examples(split.labels, limit)))
        return replace(split, images=split.images[keep], labels=split.labels[keep], paths=[split.paths[i] for i in keep])

    return replace(data, train=cut(data.train), val=cut(data.val), test=cut(data.test))


def _one_line(result: RegimeRun, target: float) -> str:
    h = result.history
    reached = h.time_to(target)
    when = f"{target:.0%} after {reached:.0f} s" if reached is not None else f"{target:.0%} not reached"
    return (f"{result.regime} (seed {result.seed}): {len(h)} epochs, best val {h.best_val_accuracy:.1%}, "
            f"test {result.predictions.accuracy:.1%}, {h.seconds_per_epoch:.1f} s/epoch, {when}")


# --------------------------------------------------------------------------- results folder


def write_results(out, results: list[RegimeRun], data: ProductData, settings: Settings, *, command: str,
                  date: str, wall_seconds: float, pretrained: dict | None = None) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    histories_dir = out / "histories"
    histories_dir.mkdir(exist_ok=True)
    for stale in list(histories_dir.glob("*.json")) + list(histories_dir.glob("*.csv")):
        stale.unlink()
    by_regime: dict[str, list[RegimeRun]] = {}
    for result in results:
        by_regime.setdefault(result.regime, []).append(result)
        name = f"{result.regime}-seed{result.seed}"
        result.history.to_json(histories_dir / f"{name}.json")
        result.history.to_csv(histories_dir / f"{name}.csv")

    histories = {regime: [r.history for r in runs] for regime, runs in by_regime.items()}
    first_seed = {regime: runs[0] for regime, runs in by_regime.items()}
    plots.plot_curves(histories, target=settings.target, path=out / "curves.png")
    plots.plot_time_to_target(histories, settings.target, path=out / f"time_to_{_percent(settings.target)}.png")
    plots.plot_predictions(
        data.test.images, data.test.labels,
        {regime: run.predictions.predicted for regime, run in first_seed.items()},
        data.classes, path=out / "predictions.png",
    )
    plots.plot_confusion(
        {regime: run.predictions.confusion(data.num_classes) for regime, run in first_seed.items()},
        data.classes, path=out / "confusion.png",
    )
    _write_test_predictions(out / "test_predictions.csv", data, first_seed)
    _write_test_accuracy(out / "test_accuracy.csv", results)

    device = results[0].history.device if results else ""
    record = {
        "command": command,
        "date": date,
        "wall_seconds": round(wall_seconds, 1),
        "torch": torch.__version__,
        "device": device,
        "device_name": results[0].history.device_name if results else "",
        "data": data.source.replace(f"{PROJECT_ROOT}/", ""),
        "photos": {name: len(split) for name, split in data.splits().items()},
        "classes": data.classes,
        "weights": {regime: run.weights_note.replace(f"{PROJECT_ROOT}/", "") for regime, run in first_seed.items()},
        "pretrained": pretrained or {},
        "training": results[0].history.settings if results else {},
        "options": asdict(settings),
    }
    (out / "settings.json").write_text(json.dumps(record, indent=2) + "\n")
    (out / "summary.md").write_text(summary_markdown(by_regime, data, settings, record))
    return out


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


def summary_markdown(by_regime: dict[str, list[RegimeRun]], data: ProductData, settings: Settings, record: dict) -> str:
    target = settings.target
    seeds = settings.seeds
    lines = [
        "# Three regimes on product photos",
        "",
        f"Task `{data.task}` ({data.num_classes} classes), {settings.image_size} px photos; "
        f"{len(data.train)} train / {len(data.val)} validation / {len(data.test)} test photos. "
        + ("Accuracies in %; mean ± std over seeds " + ", ".join(map(str, seeds)) + "." if len(seeds) > 1
           else f"Accuracies in %; seed {seeds[0]}."),
        "",
        f"| regime | trainable parameters | epochs | best val acc | test acc | s / epoch | time to {target:.0%} val acc | peak memory |",
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
    training = record["training"]
    setup = {regime: runs[0].history.setup_seconds for regime, runs in by_regime.items() if runs[0].history.setup_seconds}
    lines += [
        "",
        "Times are training seconds (forward and backward passes over the training photos"
        + (", plus computing the cached features once: "
           + ", ".join(f"{regime} {s:.1f} s" for regime, s in setup.items()) if setup else "")
        + "); validating after each epoch is not counted. "
        f"Peak memory is {'CUDA peak allocation' if record['device'].startswith('cuda') else 'the process peak resident memory (all regimes so far)'}.",
        "",
        "## How it was made",
        "",
        f"- Command: `{record['command']}`",
        f"- Date: {record['date']}; total wall time {record['wall_seconds'] / 60:.1f} min (data loading, training, testing, plots)",
        f"- Device: `{record['device']}`, {record['device_name']}; torch {record['torch']}",
        f"- Data: {record['data']}",
        f"- Seeds: {', '.join(map(str, seeds))}",
        f"- Epochs: {_format_per_regime({r: settings.epochs[r] for r in by_regime})}; "
        f"head learning rate: {_format_per_regime({r: settings.lr[r] for r in by_regime})}; batch size {settings.batch_size}",
        f"- Optimiser: {training.get('optimizer', '')}, {training.get('schedule', '')}; precision {training.get('precision', '')}",
        f"- Augmentation: {'random resized crop and horizontal flip on training batches' if settings.augment else 'none'}"
        + ("; feature_extraction trains its head on cached features of the photos as stored (no augmentation)"
           if "feature_extraction" in by_regime and settings.cache_features else ""),
    ]
    for regime, note in record["weights"].items():
        lines.append(f"- Weights, {regime}: {note}")
    meta = record["pretrained"]
    if meta.get("source"):
        accuracy = f"{100 * meta['test_accuracy']:.1f} %" if isinstance(meta.get("test_accuracy"), float) else "not recorded"
        lines.append(
            f"- Pretrained weights: `{meta.get('path', '?')}`, trained on {meta.get('source', '?')} for "
            f"{meta.get('epochs', '?')} epochs at {meta.get('image_size', '?')} px; its test accuracy there: {accuracy}"
        )
    lines += ["", "Settings in full: `settings.json`; per-epoch histories: `histories/`.", ""]
    return "\n".join(lines)
