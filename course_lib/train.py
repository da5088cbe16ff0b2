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

How an epoch runs is chosen once, before the first epoch, and each way owns its optimiser:

- :class:`WholeNetwork`: every photo, augmented, through the whole network (SGD as above);
- when the backbone is frozen (feature_extraction), the backbone is a fixed function of the
  photo, so each photo's pooled features are computed once and every epoch trains the head
  alone on them. Those features are of the photos as stored, without augmentation
  (augmenting would need the backbone again every epoch, which is the cost the cache avoids).
  On them the head is a convex problem, and :class:`ConvexHead` solves it as one
  (:mod:`course_lib.head`: standardised features, L-BFGS, weight decay chosen on validation);
  ``head="sgd"`` trains it by SGD in batches instead (:class:`CachedFeatures`), exactly as
  the plain path would, and ``feature_cache=False`` is that plain path.
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
from course_lib.data import AUGMENTATIONS, ProductData, Split, batches
from course_lib.errors import CourseError
from course_lib.evaluation import EVAL_BATCH_SIZE, Evaluation, compute_features, evaluate, score
from course_lib.files import write_atomically
from course_lib.head import WEIGHT_DECAYS, LinearHead, Standardiser, choose_weight_decay
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

__all__ = [
    "CHECKPOINT_NAME",
    "HEADS",
    "HISTORY_NAME",
    "CachedFeatures",
    "ConvexHead",
    "TrainConfig",
    "WholeNetwork",
    "fit",
]

CHECKPOINT_FORMAT = "course_lib.run/2"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
# Settings that do not change what a run computes: a run may resume with other values.
RESULT_INDEPENDENT = ("device", "eval_batch_size", "compile")
HEADS = ("lbfgs", "sgd")  # how a head on cached features trains
LBFGS_ITERATIONS_PER_EPOCH = 10


@dataclass(frozen=True)
class TrainConfig:
    """How ``fit`` trains. The run folder records it; resuming compares it.

    ``seed`` seeds Python, NumPy and PyTorch and fixes the order and augmentation of every
    epoch's batches, so two CPU runs with the same seed give the same history (apart from
    the timings). ``device`` ``auto`` is CUDA, then MPS, then the CPU; ``precision`` ``auto``
    is bf16 autocast on CUDA (fp16 with loss scaling where bf16 is missing) and fp32
    elsewhere. ``augment`` names a ``data.AUGMENTATIONS`` entry. ``feature_cache`` (None:
    when the backbone is frozen) trains the head on features computed once, by L-BFGS
    (``head="lbfgs"``, each epoch ten iterations over the whole split; ``weight_decay`` is then
    chosen on validation) or by SGD in batches (``head="sgd"``). ``label_smoothing`` is that of
    ``nn.CrossEntropyLoss``. ``compile`` runs the network through ``torch.compile`` (worth its
    minutes of compiling on a GPU, where small images leave the GPU waiting for Python).
    """

    epochs: int
    batch_size: int = 64
    seed: int = 0
    augment: str = "resized_crop"
    weight_decay: float = WEIGHT_DECAY
    label_smoothing: float = 0.0
    precision: str = "auto"
    device: str = "auto"
    feature_cache: bool | None = None
    head: str = "lbfgs"
    compile: bool = False
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
        if self.augment not in AUGMENTATIONS:
            raise CourseError(f"Unknown augmentation {self.augment!r}; choose one of {', '.join(AUGMENTATIONS)}.")
        if self.head not in HEADS:
            raise CourseError(f"Unknown head solver {self.head!r}; choose one of {', '.join(HEADS)}.")


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

    def state_dict(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])


def make_step(param_groups: list[dict], config: TrainConfig, device: torch.device, photos: int) -> Step:
    """SGD (Nesterov momentum, weight decay) with a cosine schedule over every batch of the run
    (``config.epochs`` passes over ``photos`` training photos)."""
    steps = config.epochs * math.ceil(photos / config.batch_size)
    optimizer = torch.optim.SGD(
        param_groups, lr=param_groups[0]["lr"], momentum=MOMENTUM, nesterov=True, weight_decay=config.weight_decay
    )
    return Step(
        optimizer=optimizer,
        scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps),
        scaler=torch.amp.GradScaler(device.type, enabled=autocast_dtype(device, config.precision) == torch.float16),
        criterion=nn.CrossEntropyLoss(label_smoothing=config.label_smoothing),
    )


# --------------------------------------------------------------------------- the ways to run an epoch

SGD_DESCRIPTION = "SGD(momentum={momentum}, nesterov=True, weight_decay={weight_decay}), cosine to 0, stepped per batch"


class WholeNetwork:
    """Every epoch sends each photo of the training split, augmented, through the whole network."""

    def __init__(
        self, model: nn.Module, groups: list[dict], data: ProductData, config: TrainConfig, device: torch.device
    ):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.context = distributed.current()
        self.net = self.context.wrap(model)
        if config.compile:
            self.net = torch.compile(self.net)
        self.dtype = autocast_dtype(device, config.precision)
        self.step = make_step(groups, config, device, len(data.train))
        self.optimiser = SGD_DESCRIPTION.format(momentum=MOMENTUM, weight_decay=config.weight_decay)

    def prepare(self) -> float:
        """Nothing to compute before the first epoch."""
        return 0.0

    def train_epoch(self, generator: torch.Generator, progress: bool) -> Evaluation:
        split, size, ctx, step = self.data.train, self.config.batch_size, self.context, self.step
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

    @property
    def lr(self) -> float:
        return self.step.lr

    def state_dict(self) -> dict[str, Any]:
        return self.step.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step.load_state_dict(state)

    def choices(self) -> dict[str, Any]:
        """What the path chose by itself while preparing (recorded with the run's settings)."""
        return {}


class CachedFeatures(WholeNetwork):
    """The backbone is frozen: each photo's features are computed once, then every epoch trains
    the head alone on them by SGD, in the order ``data.batches`` would give the photos."""

    def __init__(
        self, model: nn.Module, groups: list[dict], data: ProductData, config: TrainConfig, device: torch.device
    ):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.train_features = self.val_features = torch.empty(0)
        self.step = make_step(groups, config, device, len(data.train))
        self.optimiser = SGD_DESCRIPTION.format(momentum=MOMENTUM, weight_decay=config.weight_decay)

    def prepare(self) -> float:
        """Compute the features of the training and validation photos; the seconds it took."""
        synchronize(self.device)
        start = time.perf_counter()
        options = {"batch_size": self.config.eval_batch_size, "precision": self.config.precision}
        self.train_features = compute_features(self.model, self.data.train, **options)
        self.val_features = compute_features(self.model, self.data.val, **options)
        synchronize(self.device)
        return time.perf_counter() - start

    def train_epoch(self, generator: torch.Generator, progress: bool) -> Evaluation:
        labels = self.data.train.labels.to(self.train_features.device)
        total_loss, correct = 0.0, 0
        for x, y in _feature_batches(self.train_features, labels, self.config.batch_size, generator):
            logits = self.model.fc(x)
            loss = self.step.criterion(logits, y)
            self.step.take(loss)
            total_loss += loss.item() * len(y)
            correct += int((logits.argmax(1) == y).sum())
        return Evaluation(total_loss / len(labels), correct / len(labels))

    def validate(self) -> Evaluation:
        with torch.no_grad():
            return score(self.model.fc(self.val_features).float().cpu(), self.data.val.labels.cpu())


class ConvexHead(CachedFeatures):
    """The head on cached features as the convex problem it is (:mod:`course_lib.head`): the
    features standardised, the weight decay chosen on the validation split before the first
    epoch (counted in the training time), then ``LBFGS_ITERATIONS_PER_EPOCH`` iterations of
    L-BFGS on the whole training split per epoch. No randomness: every seed gives the same head."""

    def __init__(
        self, model: nn.Module, groups: list[dict], data: ProductData, config: TrainConfig, device: torch.device
    ):
        self.model, self.data, self.config, self.device = model, data, config, device
        self.head: LinearHead | None = None
        self.saved: dict[str, Any] | None = None
        self.optimiser = (
            "L-BFGS (strong Wolfe line search) on standardised features, weight decay chosen on "
            f"validation from {', '.join(f'{wd:g}' for wd in WEIGHT_DECAYS)}"
        )
        self.chosen: dict[str, Any] = {}

    def choices(self) -> dict[str, Any]:
        return self.chosen

    def prepare(self) -> float:
        """Features, their standardisation and the weight decay; the seconds it all took."""
        seconds = super().prepare()
        start = time.perf_counter()
        self.standardiser = Standardiser.fit(self.train_features)
        self.z = self.standardiser(self.train_features)
        self.labels = self.data.train.labels.to(self.z.device)
        weight_decay, scores = choose_weight_decay(
            self.z,
            self.labels,
            self.standardiser(self.val_features),
            self.data.val.labels.to(self.z.device),
            self.model.fc.out_features,
        )
        self.chosen = {
            "head_weight_decay": weight_decay,
            "head_val_accuracy_by_weight_decay": {f"{wd:g}": accuracy for wd, accuracy in scores.items()},
        }
        self.head = LinearHead(self.z.shape[1], self.model.fc.out_features, weight_decay, self.z.device)
        if self.saved is not None:
            self._restore(self.saved)
        return seconds + time.perf_counter() - start

    def train_epoch(self, generator: torch.Generator, progress: bool) -> Evaluation:
        self.head.fit(self.z, self.labels, LBFGS_ITERATIONS_PER_EPOCH)
        self.head.write_into(self.model.fc, self.standardiser)
        with torch.no_grad():
            return score(self.head.logits(self.z), self.labels)

    @property
    def lr(self) -> float:
        return 1.0  # L-BFGS steps are scaled by its line search, not by a schedule

    def state_dict(self) -> dict[str, Any]:
        return {
            "weight": self.head.weight.detach().clone(),
            "bias": self.head.bias.detach().clone(),
            "lbfgs": self.head.optimizer.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.saved = state  # restored once prepare() has made the head

    def _restore(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            self.head.weight.copy_(state["weight"])
            self.head.bias.copy_(state["bias"])
        self.head.optimizer.load_state_dict(state["lbfgs"])


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
    model: nn.Module, groups: list[dict], data: ProductData, config: TrainConfig, device: torch.device
) -> WholeNetwork:
    """Cached features when the backbone is frozen (unless switched off), else the whole network."""
    frozen = backbone_is_frozen(model)
    cache = frozen if config.feature_cache is None else config.feature_cache
    if cache and not frozen:
        raise CourseError("feature_cache=True needs a frozen backbone (the feature_extraction regime).")
    if not cache:
        return WholeNetwork(model, groups, data, config, device)
    return (ConvexHead if config.head == "lbfgs" else CachedFeatures)(model, groups, data, config, device)


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
    path = choose_path(model, param_groups, data, config, device)
    seed_everything(config.seed)
    settings = _settings(config, param_groups, path, device)
    cached = isinstance(path, CachedFeatures)
    history = History(device=str(device), device_name=device_name(device), cached_features=cached, settings=settings)
    run = Path(out) if out is not None else None
    if resume and run is not None and (run / CHECKPOINT_NAME).is_file():
        history = _load_run(run / CHECKPOINT_NAME, model, path, settings)
        history.device, history.device_name = str(device), device_name(device)
    first = len(history) + 1
    setup_seconds = path.prepare() if first <= config.epochs else 0.0  # charged to this process's first epoch
    history.settings.update(path.choices())
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
        record = _run_epoch(epoch, path, config, device, already, show)
        history.records.append(record)
        history.peak_memory_bytes = max(history.peak_memory_bytes, peak_memory(device))
        bar.set_postfix(val_acc=f"{record.val_accuracy:.3f}", s=f"{record.cumulative_seconds:.0f}")
        if run is not None and context.is_main:
            _save_run(run, model, path, history)
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    history.peak_memory_bytes = max(history.peak_memory_bytes, peak_memory(device))
    if run is not None and context.is_main:
        history.to_json(run / HISTORY_NAME)
    return history


def _run_epoch(
    epoch: int, path: WholeNetwork, config: TrainConfig, device: torch.device, previous_seconds: float, progress: bool
) -> EpochRecord:
    """Train one epoch and validate; training and validation are timed apart."""
    path.model.train()
    synchronize(device)
    start = time.perf_counter()
    train = path.train_epoch(epoch_generator(config.seed, epoch), progress)
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
        lr=path.lr,
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


def _settings(
    config: TrainConfig, param_groups: list[dict], path: WholeNetwork, device: torch.device
) -> dict[str, Any]:
    """What the run records about how it trained: the config and what it resolved to."""
    dtype = autocast_dtype(device, config.precision)
    return {
        **asdict(config),
        "lr": {group.get("name", str(i)): group["lr"] for i, group in enumerate(param_groups)},
        "cached_features": isinstance(path, CachedFeatures),
        "autocast": str(dtype).replace("torch.", "") if dtype else "float32",
        "optimizer": path.optimiser,
    }


# --------------------------------------------------------------------------- run folder


def _save_run(run: Path, model: nn.Module, path: WholeNetwork, history: History) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimiser": path.state_dict(),
        "rng": rng_states(),
        "history": history.to_dict(),
    }
    write_atomically(run / CHECKPOINT_NAME, lambda file: torch.save(payload, file), binary=True)
    history.to_json(run / HISTORY_NAME)


def _load_run(checkpoint: Path, model: nn.Module, path: WholeNetwork, settings: dict[str, Any]) -> History:
    """The history of the run in ``checkpoint``, with model, optimiser and random states restored;
    refused when the run was started with settings that change the result."""
    try:
        payload = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CourseError(
            f"{checkpoint} could not be read to resume ({type(error).__name__}); delete it to start over."
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CourseError(f"{checkpoint} is not a training checkpoint written by fit(); delete it to start over.")
    history = History.from_dict(payload["history"])
    keys = [key for key in settings if key not in RESULT_INDEPENDENT]
    changed = [
        f"{k} {history.settings.get(k)} -> {settings[k]}" for k in keys if history.settings.get(k) != settings[k]
    ]
    if changed:
        raise CourseError(
            f"Cannot resume from {checkpoint}: the run was started with other settings ({', '.join(changed)}). "
            "Use the same settings, or another run folder to start over."
        )
    model.load_state_dict(payload["model"])
    path.load_state_dict(payload["optimiser"])
    set_rng_states(payload["rng"])
    return history
