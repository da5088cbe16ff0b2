"""The training loop: ``fit()``, its ``History``, time to target, checkpoints, cached features.

``fit`` trains with SGD (momentum 0.9, Nesterov, weight decay 5e-4) and a cosine learning
rate schedule stepped every batch, from each parameter group's own ``lr`` down to zero at
the end of the last epoch. SGD with a cosine schedule is the recipe of the ResNet papers
and of torchvision's reference scripts; it needs no warm-up for these short runs and treats
the finetune backbone group (a smaller ``lr``) and the head group alike.

Timings count training only: the forward and backward passes over the training split
(and, on the cached-features path, computing the features once). Evaluating the
validation split after each epoch is timed separately (``eval_seconds``), so that the
"time to 90 %" of a regime does not depend on how often it is measured.

When the backbone is frozen (feature_extraction), the backbone is a fixed function of
the photo: ``fit`` computes each photo's 512 features once and trains the head on them.
Those features are of the photos as stored, without augmentation (augmenting would need
the backbone again every epoch, which is the cost the cache avoids). ``cache_features=False``
gives the plain path, photo by photo through the whole network.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import platform
import random
import resource
import sys
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from course_lib import distributed
from course_lib.data import ProductData, Split, batches
from course_lib.errors import CourseError
from course_lib.files import write_atomically
from course_lib.regimes import backbone_is_frozen

__all__ = [
    "EpochRecord",
    "Evaluation",
    "History",
    "Predictions",
    "confusion_matrix",
    "device_name",
    "evaluate",
    "fit",
    "predict",
    "resolve_device",
    "seed_everything",
]

CHECKPOINT_FORMAT = "course_lib.run/1"
CHECKPOINT_NAME = "checkpoint.pt"
HISTORY_NAME = "history.json"
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


# --------------------------------------------------------------------------- history


@dataclass
class EpochRecord:
    """What one epoch did. Accuracies are fractions in [0, 1]; seconds are wall-clock."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    cumulative_seconds: float
    images_per_second: float
    eval_seconds: float
    lr: float


TIMING_FIELDS = ("seconds", "cumulative_seconds", "images_per_second", "eval_seconds")


@dataclass
class History:
    """Per-epoch records of one training run, and what it ran on.

    ``setup_seconds`` is the one-off cost counted into the first epoch's cumulative time
    (computing cached features); ``peak_memory_bytes`` is CUDA's peak allocation on a GPU
    and the process's peak resident memory elsewhere.
    """

    records: list[EpochRecord] = field(default_factory=list)
    device: str = ""
    device_name: str = ""
    peak_memory_bytes: int = 0
    setup_seconds: float = 0.0
    cached_features: bool = False
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def column(self, name: str) -> list[float]:
        """One field of every epoch, e.g. ``history.column("val_accuracy")``."""
        return [getattr(record, name) for record in self.records]

    @property
    def best_val_accuracy(self) -> float | None:
        return max(self.column("val_accuracy"), default=None)

    @property
    def total_seconds(self) -> float:
        return self.records[-1].cumulative_seconds if self.records else 0.0

    @property
    def seconds_per_epoch(self) -> float | None:
        """Mean training seconds per epoch, without the one-off setup."""
        if not self.records:
            return None
        return (self.total_seconds - self.setup_seconds) / len(self.records)

    def time_to(self, accuracy: float) -> float | None:
        """Cumulative training seconds at the end of the first epoch whose validation
        accuracy reached ``accuracy`` (a fraction: 0.90 for 90 %); None when none did."""
        for record in self.records:
            if record.val_accuracy >= accuracy:
                return record.cumulative_seconds
        return None

    def epochs_to(self, accuracy: float) -> int | None:
        """The first epoch (counted from 1) whose validation accuracy reached ``accuracy``."""
        for record in self.records:
            if record.val_accuracy >= accuracy:
                return record.epoch
        return None

    def without_timings(self) -> list[dict]:
        """The records with the wall-clock fields left out: what must repeat exactly."""
        return [
            {k: v for k, v in asdict(record).items() if k not in TIMING_FIELDS}
            for record in self.records
        ]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        values = dict(values)
        records = [EpochRecord(**record) for record in values.pop("records", [])]
        known = {f.name for f in fields(cls)}
        return cls(records=records, **{k: v for k, v in values.items() if k in known})

    def to_json(self, path: str | os.PathLike) -> Path:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        return write_atomically(path, lambda file: file.write(text))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise CourseError(f"No history file at {path}.") from None
        except (ValueError, TypeError) as error:
            raise CourseError(f"{path} is not a training history ({error}).") from None

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One row per epoch, one column per EpochRecord field."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = [f.name for f in fields(EpochRecord)]
        with open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=names)
            writer.writeheader()
            for record in self.records:
                writer.writerow(asdict(record))
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """The epochs of a CSV written by ``to_csv`` (the run's metadata lives in the JSON)."""
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        types = {f.name: (int if f.name == "epoch" else float) for f in fields(EpochRecord)}
        return cls(records=[EpochRecord(**{k: types[k](v) for k, v in row.items()}) for row in rows])


# --------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA when present, then Apple MPS, then the CPU."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise CourseError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CourseError("Device cuda was asked for but PyTorch sees no CUDA GPU; use --device auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CourseError("Device mps was asked for but is not available here; use --device auto or cpu.")
    return device


def device_name(device: torch.device) -> str:
    """A human name for the hardware: the GPU's name, or the CPU model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads"


def _precision(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 on CUDA when supported, else fp16
    on CUDA, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise CourseError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _autocast(device: torch.device, dtype: torch.dtype | None):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def _peak_memory(device: torch.device) -> int:
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    # ru_maxrss is in KiB on Linux and bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if sys.platform == "darwin" else rss * 1024)


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


def _to_device(x: torch.Tensor, device: torch.device, channels_last: bool = False) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    if channels_last and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# --------------------------------------------------------------------------- seeds


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (call it before building the model,
    so that the random initialisation repeats too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders and augments the batches of one epoch (counted from 1).

    One generator per epoch, derived from the seed, makes an epoch's batches depend on
    the seed and the epoch number only, so a resumed run sees the same batches."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def _rng_states() -> dict:
    numpy_state = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def _set_rng_states(states: dict) -> None:
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# --------------------------------------------------------------------------- evaluation


@dataclass
class Evaluation:
    loss: float
    accuracy: float


@dataclass
class Predictions:
    """Labels, predicted classes and class probabilities of one split (CPU tensors)."""

    labels: torch.Tensor
    predicted: torch.Tensor
    probabilities: torch.Tensor

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).float().mean()) if len(self.labels) else 0.0

    def confusion(self, num_classes: int | None = None) -> torch.Tensor:
        num_classes = num_classes or self.probabilities.shape[1]
        return confusion_matrix(self.labels, self.predicted, num_classes)


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts ``(num_classes, num_classes)``: rows are true classes, columns predicted ones."""
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


@torch.no_grad()
def _in_eval_mode(model: nn.Module, function, split: Split, batch_size: int, precision: str, width: int) -> torch.Tensor:
    """``function`` (the model or one of its parts) on every photo of ``split`` in order, in eval
    mode and without gradients: a float32 tensor of ``width`` columns on the model's device."""
    device = _model_device(model)
    dtype = _precision(device, precision)
    was_training = model.training
    model.eval()
    outputs = []
    for images, _ in batches(split, batch_size):
        with _autocast(device, dtype):
            outputs.append(function(_to_device(images, device, device.type == "cuda")).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, width, device=device)


def _logits(model: nn.Module, split: Split, batch_size: int, precision: str = "auto") -> torch.Tensor:
    return _in_eval_mode(model, model, split, batch_size, precision, model.fc.out_features).cpu()


def predict(model: nn.Module, split: Split, *, batch_size: int = 256, precision: str = "auto") -> Predictions:
    """The model's predictions for every photo of ``split``, in order, on the model's device."""
    logits = _logits(model, split, batch_size, precision)
    return Predictions(
        labels=split.labels.cpu(),
        predicted=logits.argmax(1),
        probabilities=logits.softmax(1),
    )


def evaluate(model: nn.Module, split: Split, *, batch_size: int = 256, precision: str = "auto") -> Evaluation:
    """Mean cross-entropy and accuracy on ``split`` (eval mode, no augmentation)."""
    logits = _logits(model, split, batch_size, precision)
    return _score(logits, split.labels.cpu())


def _score(logits: torch.Tensor, labels: torch.Tensor) -> Evaluation:
    if len(labels) == 0:
        return Evaluation(float("nan"), float("nan"))
    loss = F.cross_entropy(logits.float(), labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return Evaluation(loss, accuracy)


# --------------------------------------------------------------------------- cached features


def compute_features(model: nn.Module, split: Split, *, batch_size: int = 256, precision: str = "auto") -> torch.Tensor:
    """The backbone's pooled features of every photo of ``split`` (float32, on the model's device)."""
    return _in_eval_mode(model, model.features, split, batch_size, precision, model.fc.in_features)


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


# --------------------------------------------------------------------------- fit


def fit(
    model: nn.Module,
    param_groups: list[dict],
    data: ProductData,
    *,
    epochs: int,
    batch_size: int = 64,
    device: str | torch.device = "auto",
    seed: int = 0,
    out: str | os.PathLike | None = None,
    resume: bool = False,
    augment: bool = True,
    target: float = 0.90,
    progress: bool | None = None,
    precision: str = "auto",
    cache_features: bool | None = None,
    weight_decay: float = WEIGHT_DECAY,
    eval_batch_size: int = 256,
    on_epoch: Callable[[EpochRecord], None] | None = None,
) -> History:
    """Train ``model`` on ``data.train`` for ``epochs`` epochs; validate on ``data.val`` after each.

    ``param_groups`` come from ``regimes.prepare_model`` (each with its own ``lr``).
    ``seed`` seeds Python, NumPy and PyTorch and fixes the order and augmentation of every
    epoch's batches, so two CPU runs with the same seed give the same history (apart from
    the timings). Seed before ``prepare_model`` too (``seed_everything``) for the same
    initial head. ``device`` ``auto`` is CUDA, then MPS, then the CPU; ``precision`` ``auto``
    is bf16 autocast on CUDA (fp16 with loss scaling where bf16 is missing) and fp32 elsewhere.
    ``out`` is a run folder: after every epoch it receives ``checkpoint.pt`` (model,
    optimiser, schedule, random states and history; written atomically) and
    ``history.json``. ``resume=True`` continues from ``out/checkpoint.pt`` to the same
    result as an uninterrupted run. ``cache_features`` (default: when the backbone is
    frozen) trains the head on features computed once. ``progress`` None shows bars only
    on a terminal. ``on_epoch`` is called with each new record. ``target`` only labels the
    progress bar; ``History.time_to`` answers for any accuracy.
    """
    if epochs < 1:
        raise CourseError(f"epochs must be at least 1, got {epochs}.")
    if batch_size < 1:
        raise CourseError(f"batch_size must be at least 1, got {batch_size}.")
    if len(data.train) == 0 or len(data.val) == 0:
        raise CourseError("The training and validation splits must not be empty.")
    if resume and out is None:
        raise CourseError("resume=True needs the run folder `out` that holds the checkpoint.")
    device = resolve_device(device)
    ctx = distributed.setup(device)
    device = ctx.device(device)
    dtype = _precision(device, precision)
    frozen = backbone_is_frozen(model)
    if cache_features is None:
        cache_features = frozen
    if cache_features and not frozen:
        raise CourseError("cache_features=True needs a frozen backbone (the feature_extraction regime).")
    if progress is None:
        progress = sys.stderr.isatty()
    progress = progress and ctx.is_main

    settings = {
        "epochs": epochs,
        "batch_size": batch_size,
        "seed": seed,
        "augment": augment and not cache_features,
        "precision": str(dtype).replace("torch.", "") if dtype else "float32",
        "optimizer": f"SGD(momentum={MOMENTUM}, nesterov=True, weight_decay={weight_decay})",
        "schedule": "cosine to 0, stepped per batch",
        "lr": {group.get("name", str(i)): group["lr"] for i, group in enumerate(param_groups)},
        "cached_features": cache_features,
    }

    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.cuda.reset_peak_memory_stats(device)
        model.to(device, memory_format=torch.channels_last)
        data = data.to(device)
    else:
        model.to(device)

    seed_everything(seed)
    steps_per_epoch = math.ceil(len(data.train) / batch_size)
    optimizer = torch.optim.SGD(
        param_groups, lr=param_groups[0]["lr"], momentum=MOMENTUM, nesterov=True, weight_decay=weight_decay
    )
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)

    history = History(device=str(device), device_name=device_name(device), cached_features=cache_features, settings=settings)
    run = Path(out) if out is not None else None
    if resume and run is not None and (run / CHECKPOINT_NAME).is_file():
        history = _load_run(run / CHECKPOINT_NAME, model, optimizer, scheduler, scaler, settings)
        history.device, history.device_name = str(device), device_name(device)

    setup_seconds = 0.0
    train_features = val_features = None
    if cache_features and len(history) < epochs:
        _synchronize(device)
        start = time.perf_counter()
        train_features = compute_features(model, data.train, batch_size=eval_batch_size, precision=precision)
        val_features = compute_features(model, data.val, batch_size=eval_batch_size, precision=precision)
        _synchronize(device)
        setup_seconds = time.perf_counter() - start
        if not history.records:
            history.setup_seconds = setup_seconds

    net = model if cache_features else ctx.wrap(model)
    first_epoch = len(history) + 1
    bar = tqdm(
        range(first_epoch, epochs + 1),
        desc="epochs",
        initial=len(history),
        total=epochs,
        disable=not progress,
        leave=False,
    )
    for epoch in bar:
        generator = epoch_generator(seed, epoch)
        model.train()
        _synchronize(device)
        start = time.perf_counter()
        if cache_features:
            train = _train_epoch_on_features(
                model.fc, optimizer, scheduler, train_features, data.train.labels, batch_size, generator
            )
        else:
            train = _train_epoch(
                net, optimizer, scheduler, scaler, data.train, batch_size, augment, generator, device, dtype, progress, ctx
            )
        _synchronize(device)
        seconds = time.perf_counter() - start
        lr = optimizer.param_groups[-1]["lr"]

        start = time.perf_counter()
        if cache_features:
            with torch.no_grad():
                val = _score(model.fc(val_features).float().cpu(), data.val.labels.cpu())
        else:
            val = evaluate(model, data.val, batch_size=eval_batch_size, precision=precision)
        _synchronize(device)
        eval_seconds = time.perf_counter() - start

        previous = history.total_seconds
        charged = seconds + (setup_seconds if epoch == first_epoch else 0.0)
        record = EpochRecord(
            epoch=epoch,
            train_loss=train.loss,
            train_accuracy=train.accuracy,
            val_loss=val.loss,
            val_accuracy=val.accuracy,
            seconds=seconds,
            cumulative_seconds=previous + charged,
            images_per_second=len(data.train) / seconds if seconds > 0 else float("inf"),
            eval_seconds=eval_seconds,
            lr=lr,
        )
        history.records.append(record)
        history.peak_memory_bytes = max(history.peak_memory_bytes, _peak_memory(device))
        bar.set_postfix(val_acc=f"{val.accuracy:.3f}", target=f"{target:.2f}", s=f"{record.cumulative_seconds:.0f}")
        if run is not None and ctx.is_main:
            _save_run(run, model, optimizer, scheduler, scaler, history)
        if on_epoch is not None:
            on_epoch(record)
    bar.close()
    history.peak_memory_bytes = max(history.peak_memory_bytes, _peak_memory(device))
    if run is not None and ctx.is_main:
        history.to_json(run / HISTORY_NAME)
    return history


def _train_epoch(model, optimizer, scheduler, scaler, split, batch_size, augment, generator, device, dtype, progress, ctx) -> Evaluation:
    channels_last = device.type == "cuda"
    total_loss = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    steps = tqdm(
        batches(split, batch_size, shuffle=True, augment=augment, generator=generator),
        total=math.ceil(len(split) / batch_size),
        desc="batches",
        disable=not progress,
        leave=False,
    )
    for images, labels in steps:
        global_size = len(labels)
        images, labels = ctx.shard(images, labels)
        images = _to_device(images, device, channels_last)
        labels = labels.to(device, non_blocking=True)
        with _autocast(device, dtype):
            logits = model(images)
            loss = ctx.loss(logits, labels, global_size)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        total_loss += ctx.loss_sum(loss, global_size)
        correct += (logits.argmax(1) == labels).sum()
    total_loss, correct = ctx.sum(total_loss), ctx.sum(correct)
    return Evaluation(total_loss.item() / len(split), correct.item() / len(split))


def _train_epoch_on_features(head, optimizer, scheduler, features, labels, batch_size, generator) -> Evaluation:
    labels = labels.to(features.device)
    total_loss, correct = 0.0, 0
    for x, y in _feature_batches(features, labels, batch_size, generator):
        logits = head(x)
        loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        scheduler.step()
        total_loss += loss.item() * len(y)
        correct += int((logits.argmax(1) == y).sum())
    return Evaluation(total_loss / len(labels), correct / len(labels))


# --------------------------------------------------------------------------- run folder


def _save_run(run: Path, model, optimizer, scheduler, scaler, history: History) -> None:
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": _rng_states(),
        "history": history.to_dict(),
    }
    write_atomically(run / CHECKPOINT_NAME, lambda file: torch.save(payload, file), binary=True)
    history.to_json(run / HISTORY_NAME)


def _load_run(path: Path, model, optimizer, scheduler, scaler, settings: dict) -> History:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise CourseError(f"{path} could not be read to resume ({type(error).__name__}); delete it to start over.") from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise CourseError(f"{path} is not a training checkpoint written by fit(); delete it to start over.")
    history = History.from_dict(payload["history"])
    saved = {k: history.settings.get(k) for k in ("epochs", "batch_size", "seed", "augment", "cached_features", "lr")}
    asked = {k: settings[k] for k in saved}
    if saved != asked:
        changed = ", ".join(f"{k} {saved[k]} -> {asked[k]}" for k in saved if saved[k] != asked[k])
        raise CourseError(
            f"Cannot resume from {path}: the run was started with other settings ({changed}). "
            "Use the same settings, or another run folder to start over."
        )
    model.load_state_dict(payload["model"])
    optimizer.load_state_dict(payload["optimizer"])
    scheduler.load_state_dict(payload["scheduler"])
    scaler.load_state_dict(payload["scaler"])
    _set_rng_states(payload["rng"])
    return history
