"""The training loop: ``fit()``, checkpoints and resume, cached features.

``fit`` trains with SGD (momentum 0.9, Nesterov, weight decay 5e-4) and a cosine learning
rate schedule stepped every batch, from each parameter group's own ``lr`` down to zero at
the end of the last epoch. SGD with a cosine schedule is the recipe of the ResNet papers
and of torchvision's reference scripts; it needs no warm-up for these short runs and treats
the finetune backbone group (a smaller ``lr``) and the head group alike.

Timings count training only: the forward and backward passes over the training split
(and, on the cached-features path, computing the features once). Evaluating the
validation split after each epoch is timed separately (``eval_seconds``), so that the
"time to 90 %" of a regime does not depend on how often it is measured.

How an epoch runs is chosen once, before the first epoch:

- :class:`WholeNetwork`: every photo, augmented, through the whole network;
- :class:`CachedFeatures`: when the backbone is frozen (feature_extraction), the backbone
  is a fixed function of the photo, so each photo's pooled features are computed once and
  every epoch trains the head alone on them. Those features are of the photos as stored,
  without augmentation (augmenting would need the backbone again every epoch, which is
  the cost the cache avoids). ``feature_cache=False`` gives the plain path instead.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from course_lib import distributed
from course_lib.data import ProductData, Split, batches
from course_lib.errors import CourseError
from course_lib.evaluation import EVAL_BATCH_SIZE, Evaluation, compute_features, evaluate, score
from course_lib.files import write_atomically
from course_lib.history import EpochRecord, History
from course_lib.regimes import backbone_is_frozen
from course_lib.runtime import (
    PRECISIONS,
    autocast,
    autocast_dtype,
    device_name,
    epoch_generator,
    peak_memory,
    resolve_device,
    rng_states,
    seed_everything,
    set_rng_states,
    synchronize,
    to_device,
)

__all__ = ["CHECKPOINT_NAME", "HISTORY_NAME", "CachedFeatures", "TrainConfig", "WholeNetwork", "fit"]

CHECKPOINT_FORMAT = "course_lib.run/1"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
# Settings that do not change what a run computes: a run may resume with other values.
RESULT_INDEPENDENT = ("device", "eval_batch_size")


@dataclass(frozen=True)
class TrainConfig:
    """How ``fit`` trains. The run folder records it; resuming compares it.

    ``seed`` seeds Python, NumPy and PyTorch and fixes the order and augmentation of every
    epoch's batches, so two CPU runs with the same seed give the same history (apart from
    the timings). ``device`` ``auto`` is CUDA, then MPS, then the CPU; ``precision`` ``auto``
    is bf16 autocast on CUDA (fp16 with loss scaling where bf16 is missing) and fp32
    elsewhere. ``feature_cache`` (None: when the backbone is frozen) trains the head on
    features computed once. ``label_smoothing`` is that of ``nn.CrossEntropyLoss``.
    """

    epochs: int
    batch_size: int = 64
    seed: int = 0
    augment: bool = True
    weight_decay: float = WEIGHT_DECAY
    label_smoothing: float = 0.0
    precision: str = "auto"
    device: str = "auto"
    feature_cache: bool | None = None
    eval_batch_size: int = EVAL_BATCH_SIZE

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise CourseError(f"epochs must be at least 1, got {self.epochs}.")
        if self.batch_size < 1:
            raise CourseError(f"batch_size must be at least 1, got {self.batch_size}.")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise CourseError(f"label_smoothing is a fraction in [0, 1), got {self.label_smoothing}.")
        if self.precision not in PRECISIONS:
            raise CourseError(f"Unknown precision {self.precision!r}; choose one of {', '.join(PRECISIONS)}.")


# --------------------------------------------------------------------------- one SGD step


@dataclass
class Step:
    """What every training step uses, whichever path the epochs take."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    criterion: nn.Module

    def take(self, loss: torch.Tensor) -> None:
        """Backward, an optimiser step (with loss scaling under fp16), and the schedule's step."""
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()

    @property
    def lr(self) -> float:
        return self.optimizer.param_groups[-1]["lr"]


def make_step(param_groups: list[dict], config: TrainConfig, device: torch.device, steps: int) -> Step:
    """SGD (Nesterov momentum, weight decay) with a cosine schedule over ``steps`` batches."""
    optimizer = torch.optim.SGD(
        param_groups, lr=param_groups[0]["lr"], momentum=MOMENTUM, nesterov=True, weight_decay=config.weight_decay
    )
    return Step(
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps),
        scaler=torch.amp.GradScaler(device.type, enabled=autocast_dtype(device, config.precision) == torch.float16),
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
    )


# --------------------------------------------------------------------------- the two ways to run an epoch


class WholeNetwork:
    """Every epoch sends each photo of the training split, augmented, through the whole network."""

    def __init__(self, model: nn.Module, data: ProductData, config: TrainConfig, device: torch.device):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.context = distributed.current()
        self.net = self.context.wrap(model)
        self.dtype = autocast_dtype(device, config.precision)

    def prepare(self) -> float:
        """Nothing to compute before the first epoch."""
        return 0.0

    def train_epoch(self, step: Step, generator: torch.Generator, progress: bool) -> Evaluation:
        split, size, ctx = self.data.train, self.config.batch_size, self.context
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        shuffled = batches(split, size, shuffle=True, augment=self.config.augment, generator=generator)
        for images, labels in tqdm(
            shuffled, total=math.ceil(len(split) / size), desc="batches", disable=not progress, leave=False
        ):
            global_size = len(labels)
            images, labels = ctx.shard(images, labels)
            images, labels = to_device(images, self.device), labels.to(self.device, non_blocking=True)
            with autocast(self.device, self.dtype):
                logits = self.net(images)
                loss = step.criterion(logits, labels)
            step.take(ctx.scale_loss(loss, len(labels), global_size))
            total_loss += loss.detach().float() * len(labels)
            correct += (logits.argmax(1) == labels).sum()
        return Evaluation(ctx.sum(total_loss).item() / len(split), ctx.sum(correct).item() / len(split))

    def validate(self) -> Evaluation:
        return evaluate(
            self.model, self.data.val, batch_size=self.config.eval_batch_size, precision=self.config.precision
        )


class CachedFeatures:
    """The backbone is frozen: each photo's features are computed once, then every epoch trains
    the head alone on them (in the order ``data.batches`` would give the photos)."""

    def __init__(self, model: nn.Module, data: ProductData, config: TrainConfig, device: torch.device):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.train_features = self.val_features = torch.empty(0)

    def prepare(self) -> float:
        """Compute the features of the training and validation photos; the seconds it took."""
        synchronize(self.device)
        start = time.perf_counter()
        options = {"batch_size": self.config.eval_batch_size, "precision": self.config.precision}
        self.train_features = compute_features(self.model, self.data.train, **options)
        self.val_features = compute_features(self.model, self.data.val, **options)
        synchronize(self.device)
        return time.perf_counter() - start

    def train_epoch(self, step: Step, generator: torch.Generator, progress: bool) -> Evaluation:
        labels = self.data.train.labels.to(self.train_features.device)
        total_loss, correct = 0.0, 0
        for x, y in _feature_batches(self.train_features, labels, self.config.batch_size, generator):
            logits = self.model.fc(x)
            loss = step.criterion(logits, y)
            step.take(loss)
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
        return Evaluation(total_loss / len(labels), correct / len(labels))

    def validate(self) -> Evaluation:
        with torch.no_grad():
            return score(self.model.fc(self.val_features).float().cpu(), self.data.val.labels.cpu())


def _feature_batches(
    features: torch.Tensor, labels: torch.Tensor, batch_size: int, generator: torch.Generator
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Shuffled batches of cached features, in the order ``data.batches`` gives the photos
    with the same generator: ``batches`` shuffles a stand-in split whose labels are the
    photos' indices (1-pixel images, so it costs nothing)."""
    n = len(labels)
    indices = Split(torch.zeros(n, 1, 1, 1, dtype=torch.uint8), torch.arange(n), [""] * n)
    for _, index in batches(indices, batch_size, shuffle=True, generator=generator):
        index = index.to(features.device)
        yield features[index], labels[index]


def choose_path(
    model: nn.Module, data: ProductData, config: TrainConfig, device: torch.device
) -> WholeNetwork | CachedFeatures:
    """Cached features when the backbone is frozen (unless switched off), else the whole network."""
    frozen = backbone_is_frozen(model)
    cache = frozen if config.feature_cache is None else config.feature_cache
    if cache and not frozen:
        raise CourseError("feature_cache=True needs a frozen backbone (the feature_extraction regime).")
    return (CachedFeatures if cache else WholeNetwork)(model, data, config, device)


# --------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    param_groups: list[dict],
    data: ProductData,
    config: TrainConfig,
    *,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    progress: bool | None = None,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> History:
    """Train ``model`` on ``data.train`` as ``config`` says; validate on ``data.val`` after each epoch.

    ``param_groups`` come from ``regimes.prepare_model`` (each with its own ``lr``). Seed
    before ``prepare_model`` too (``seed_everything``) for the same initial head. ``out`` is
    a run folder: after every epoch it receives ``checkpoint.pt`` (model, optimiser, schedule,
    random states and history; written atomically) and ``history.json``. ``resume=True``
    continues from ``out/checkpoint.pt`` to the same result as an uninterrupted run.
    ``progress`` None shows bars only on a terminal. ``on_epoch`` is called with each new record.
    """
    if len(data.train) == 0 or len(data.val) == 0:
        raise CourseError("The training and validation splits must not be empty.")
    if resume and out is None:
        raise CourseError("resume=True needs the run folder `out` that holds the checkpoint.")
    device = resolve_device(config.device)
    context = distributed.setup(device)
    device = context.device(device)
    data = _place(model, data, device)
    path = choose_path(model, data, config, device)
    cached = isinstance(path, CachedFeatures)
    seed_everything(config.seed)
    step = make_step(param_groups, config, device, config.epochs * math.ceil(len(data.train) / config.batch_size))
    settings = _settings(config, param_groups, cached, device)
    history = History(device=str(device), device_name=device_name(device), cached_features=cached, settings=settings)
    run = Path(out) if out is not None else None
    if resume and run is not None and (run / CHECKPOINT_NAME).is_file():
        history = _load_run(run / CHECKPOINT_NAME, model, step, settings)
        history.device, history.device_name = str(device), device_name(device)
    first = len(history) + 1
    setup_seconds = path.prepare() if first <= config.epochs else 0.0  # charged to this process's first epoch
    if not history.records:
        history.setup_seconds = setup_seconds
    show = (sys.stderr.isatty() if progress is None else progress) and context.is_main

    bar = tqdm(
        range(first, config.epochs + 1),
        desc="epochs",
        initial=first - 1,
        total=config.epochs,
        disable=not show,
        leave=False,
    )
    for epoch in bar:
        already = history.total_seconds + (setup_seconds if epoch == first else 0.0)
        record = _run_epoch(epoch, path, step, config, device, already, show)
        history.records.append(record)
        history.peak_memory_bytes = max(history.peak_memory_bytes, peak_memory(device))
        bar.set_postfix(val_acc=f"{record.val_accuracy:.3f}", s=f"{record.cumulative_seconds:.0f}")
        if run is not None and context.is_main:
            _save_run(run, model, step, history)
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    history.peak_memory_bytes = max(history.peak_memory_bytes, peak_memory(device))
    if run is not None and context.is_main:
        history.to_json(run / HISTORY_NAME)
    return history


def _run_epoch(
    epoch: int,
    path: WholeNetwork | CachedFeatures,
    step: Step,
    config: TrainConfig,
    device: torch.device,
    previous_seconds: float,
    progress: bool,
) -> EpochRecord:
    """Train one epoch and validate; training and validation are timed apart."""
    path.model.train()
    synchronize(device)
    start = time.perf_counter()
    train = path.train_epoch(step, epoch_generator(config.seed, epoch), progress)
    synchronize(device)
    seconds = time.perf_counter() - start
    start = time.perf_counter()
    val = path.validate()
    synchronize(device)
    return EpochRecord(
        epoch=epoch,
        train_loss=train.loss,
        train_accuracy=train.accuracy,
        val_loss=val.loss,
        val_accuracy=val.accuracy,
        seconds=seconds,
        cumulative_seconds=previous_seconds + seconds,
        images_per_second=len(path.data.train) / seconds if seconds > 0 else float("inf"),
        eval_seconds=time.perf_counter() - start,
        lr=step.lr,
    )


def _place(model: nn.Module, data: ProductData, device: torch.device) -> ProductData:
    """The model on ``device`` (channels_last on CUDA, whose photos move there too, once)."""
    if device.type != "cuda":
        model.to(device)
        return data
    torch.backends.cudnn.benchmark = True
    torch.cuda.reset_peak_memory_stats(device)
    model.to(device, memory_format=torch.channels_last)
    return data.to(device)


def _settings(config: TrainConfig, param_groups: list[dict], cached: bool, device: torch.device) -> dict[str, Any]:
    """What the run records about how it trained: the config and what it resolved to."""
    dtype = autocast_dtype(device, config.precision)
    return {
        **asdict(config),
        "lr": {group.get("name", str(i)): group["lr"] for i, group in enumerate(param_groups)},
        "cached_features": cached,
        "autocast": str(dtype).replace("torch.", "") if dtype else "float32",
        "optimizer": f"SGD(momentum={MOMENTUM}, nesterov=True, weight_decay={config.weight_decay})",
        "schedule": "cosine to 0, stepped per batch",
    }


# --------------------------------------------------------------------------- run folder


def _save_run(run: Path, model: nn.Module, step: Step, history: History) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": step.optimizer.state_dict(),
        "scheduler": step.scheduler.state_dict(),
        "scaler": step.scaler.state_dict(),
        "rng": rng_states(),
        "history": history.to_dict(),
    }
    write_atomically(run / CHECKPOINT_NAME, lambda file: torch.save(payload, file), binary=True)
    history.to_json(run / HISTORY_NAME)


def _load_run(path: Path, model: nn.Module, step: Step, settings: dict[str, Any]) -> History:
    """The history of the run in ``path``, with model, optimiser and random states restored;
    refused when the run was started with settings that change the result."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CourseError(
            f"{path} could not be read to resume ({type(error).__name__}); delete it to start over."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CourseError(f"{path} is not a training checkpoint written by fit(); delete it to start over.")
    history = History.from_dict(payload["history"])
    keys = [key for key in settings if key not in RESULT_INDEPENDENT]
    changed = [
        f"{k} {history.settings.get(k)} -> {settings[k]}" for k in keys if history.settings.get(k) != settings[k]
    ]
    if changed:
        raise CourseError(
            f"Cannot resume from {path}: the run was started with other settings ({', '.join(changed)}). "
            "Use the same settings, or another run folder to start over."
        )
    model.load_state_dict(payload["model"])
    step.optimizer.load_state_dict(payload["optimizer"])
    step.scheduler.load_state_dict(payload["scheduler"])
    step.scaler.load_state_dict(payload["scaler"])
    set_rng_states(payload["rng"])
    return history
