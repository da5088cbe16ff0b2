"""Pretraining on another dataset (CIFAR-10) to produce the source weights of the course.

``python -m course_lib pretrain --source cifar10 --data cifar10-jpg.zip`` reads CIFAR-10
(JPEG files under ``train/<class>/`` and ``test/<class>/``, in a zip or an extracted
folder), trains the hand-written ResNet18 from scratch with :func:`course_lib.train.fit`
and writes an fp16 checkpoint with its metadata (source, epochs, image size, test
accuracy, seconds, hardware, date, command, seed) plus a training log next to it.

The images are normalised with the ImageNet statistics of :mod:`course_lib.data`, the
same as the product photos, so the checkpoint's first layer sees the inputs it was
trained on. Training uses the run folder of ``fit`` (a resumable checkpoint after every
epoch); the shipped checkpoint is also rewritten after every epoch, so an interrupted
run still leaves usable weights, and ``--resume`` continues it to the same result.
``--init`` continues from an earlier checkpoint with a new cosine cycle (a second stage,
recorded in the metadata), when the epochs that fit the time were not known in advance.

After each epoch a fixed, class-balanced subset of the test split (``CURVE_IMAGES``
photos) is scored for the learning curve; the whole test split is scored once at the end.
"""

from __future__ import annotations

import csv
import io
import shlex
import time
import zipfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from course_lib import distributed
from course_lib.data import AUGMENTATION_TEXT, AUGMENTATIONS, MEAN, STD, DataError, ProductData, Split
from course_lib.errors import CourseError
from course_lib.evaluation import evaluate
from course_lib.history import EpochRecord, History
from course_lib.models import ResNet18
from course_lib.options import option, to_argv
from course_lib.runtime import provenance, resolve_device, seed_everything
from course_lib.train import CHECKPOINT_NAME, HISTORY_NAME, TrainConfig, fit
from course_lib.weights import DEFAULT_CHECKPOINT, load_checkpoint, save_checkpoint

__all__ = ["SOURCES", "PretrainConfig", "load_cifar10", "pretrain", "run"]

SOURCES = ("cifar10",)
SPLITS = ("train", "test")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CURVE_IMAGES = 2000
LOG_COLUMNS = (
    "epoch",
    "lr",
    "train_loss",
    "train_accuracy",
    "test_subset_loss",
    "test_subset_accuracy",
    "seconds",
    "cumulative_seconds",
    "images_per_second",
    "eval_seconds",
)
CITATION = 'A. Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", technical report, 2009.'


@dataclass
class PretrainConfig:
    """The options of ``python -m course_lib pretrain``, each declared once, here.

    The defaults are the recipe meant for features that transfer to the product photos:
    CIFAR-10 upsampled to 64 px (the product photos' size on a CPU), a small random shift and
    flip (not a zoom: objects keep their size), and large batches, so that a GPU is not left
    waiting between small ones; on a GPU add ``--compile``. Label smoothing is available but off
    by default: it raises accuracy on the source dataset, but the last stage's features then
    transfer worse to a linear head (Kornblith et al., NeurIPS 2021), which is what
    feature_extraction trains. On a laptop CPU the default recipe takes hours: try
    ``--image-size 32 --epochs 6``.
    """

    data: str = option(help="the CIFAR-10 zip or its extracted folder", required=True, metavar="PATH")
    source: str = option("cifar10", "dataset to pretrain on", choices=SOURCES)
    epochs: int = option(40, "passes over the training split (fix it before starting: the schedule depends on it)")
    image_size: int = option(64, "side in pixels the images are resized to")
    batch_size: int = option(512, "images per SGD step")
    lr: float = option(0.4, "peak learning rate of the cosine schedule")
    label_smoothing: float = option(0.0, "weight of the uniform distribution mixed into each one-hot label")
    augmentation: str = option("crop_flip", "what is done to each training batch", choices=tuple(AUGMENTATIONS))
    compile: bool = option(False, "compile the network with torch.compile (a GPU: minutes of compiling, then faster)")
    out: str = option(
        str(DEFAULT_CHECKPOINT),
        "checkpoint to write (fp16)",
        metavar="PATH",
        default_text="data/weights/resnet18-cifar10.pt",
    )
    run_dir: str | None = option(None, "folder for the resumable checkpoint", default_text="runs/pretrain-<out name>")
    init: str | None = option(None, "start from this pretraining checkpoint for a further cosine cycle", metavar="PATH")
    resume: bool = option(False, "continue an interrupted run from --run-dir")
    seed: int = option(0, "seed of the initialisation and of the batch order and augmentation")
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    threads: int | None = option(None, "CPU threads for PyTorch", parse=int, default_text="PyTorch's own choice")

    def __post_init__(self) -> None:
        if self.image_size < 32:
            raise CourseError(
                f"--image-size must be at least 32 (ResNet-18 halves it five times), got {self.image_size}."
            )

    @property
    def run_folder(self) -> Path:
        return Path(self.run_dir) if self.run_dir is not None else Path("runs") / f"pretrain-{Path(self.out).stem}"

    @property
    def command(self) -> str:
        """The command line that repeats this pretraining."""
        return shlex.join(["python", "-m", "course_lib", "pretrain", *to_argv(self)])

    def training(self) -> TrainConfig:
        return TrainConfig(
            epochs=self.epochs,
            batch_size=self.batch_size,
            seed=self.seed,
            augment=self.augmentation,
            label_smoothing=self.label_smoothing,
            device=self.device,
            compile=self.compile,
            eval_batch_size=500,
        )


# --------------------------------------------------------------------------- reading CIFAR-10


def load_cifar10(path: str | Path, image_size: int = 32, *, progress: bool | None = None) -> ProductData:
    """CIFAR-10 from a zip or a folder holding ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``.

    Returns a ProductData whose ``val`` and ``test`` are both the test split (CIFAR-10
    has no validation split; pretraining selects nothing on it). Images are resized to
    ``image_size`` when they are not that size already.
    """
    path = Path(path)
    members = _list_members(path)
    classes = sorted(members["train"])
    if sorted(members["test"]) != classes:
        raise DataError(
            f"{path}: the train and test splits have different classes "
            f"({', '.join(classes)} vs {', '.join(sorted(members['test']))})."
        )
    with _Reader(path) as reader:
        splits = {
            name: _decode_split(reader, members[name], classes, image_size, f"{path.name} {name}", progress)
            for name in SPLITS
        }
    return ProductData(
        train=splits["train"],
        val=splits["test"],
        test=splits["test"],
        classes=classes,
        task="cifar10",
        image_size=image_size,
        source=str(path),
    )


class _Reader:
    """Reads member files by their relative name from a zip or a folder."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = zipfile.ZipFile(path) if path.is_file() else None

    def read(self, name: str) -> bytes:
        return self.zip.read(name) if self.zip else (self.path / name).read_bytes()

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.zip:
            self.zip.close()


def _list_members(path: Path) -> dict[str, dict[str, list[str]]]:
    """``{split: {class: [member names]}}`` of the image files under ``[prefix/]split/class/``."""
    if path.is_file():
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
        except zipfile.BadZipFile:
            raise DataError(
                f"{path} is not a zip file; give the CIFAR-10 zip or the folder extracted from it."
            ) from None
    elif path.is_dir():
        names = [p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()]
    else:
        raise DataError(
            f"No CIFAR-10 data at {path}. Give --data the zip (or its extracted folder) "
            "with train/<class>/*.jpg and test/<class>/*.jpg."
        )
    members: dict[str, dict[str, list[str]]] = {split: {} for split in SPLITS}
    for name in sorted(names):
        parts = name.split("/")
        if len(parts) < 3 or not parts[-1].lower().endswith(IMAGE_SUFFIXES):
            continue
        split, label = parts[-3], parts[-2]
        if split in members:
            members[split].setdefault(label, []).append(name)
    missing = [split for split in SPLITS if not members[split]]
    if missing:
        raise DataError(
            f"{path} has no images under {' or '.join(f'{s}/<class>/' for s in missing)}; "
            "expected CIFAR-10 as train/<class>/*.jpg and test/<class>/*.jpg."
        )
    return members


def _decode_split(
    reader: _Reader,
    members: dict[str, list[str]],
    classes: list[str],
    image_size: int,
    what: str,
    progress: bool | None,
) -> Split:
    names = [(name, label) for label in classes for name in members[label]]
    images = np.empty((len(names), image_size, image_size, 3), dtype=np.uint8)
    labels = torch.empty(len(names), dtype=torch.int64)
    for i, (name, label) in enumerate(tqdm(names, desc=f"reading {what}", disable=_quiet(progress), leave=False)):
        images[i] = _decode(reader, name, image_size)
        labels[i] = classes.index(label)
    return Split(torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), labels, [name for name, _ in names])


def _decode(reader: _Reader, name: str, image_size: int) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(reader.read(name))) as image:
            image = image.convert("RGB")
            if image.size != (image_size, image_size):
                image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as error:
        raise DataError(f"Cannot read the image {reader.path}/{name} ({error}); replace or delete it.") from None


def _quiet(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: None shows bars only on a terminal."""
    return None if progress is None else not progress


# --------------------------------------------------------------------------- training


def pretrain(config: PretrainConfig, *, progress: bool | None = None) -> dict:
    """Train ResNet18 on ``config.source`` (from scratch unless ``config.init``) and write the fp16
    checkpoint ``config.out``; return its metadata.

    ``init`` starts from the weights of an earlier pretraining checkpoint instead of a random
    initialisation, for a further cosine cycle (a warm restart, as in SGDR); its stages are
    carried into ``meta["stages"]`` and ``epochs`` and ``seconds`` count all stages.
    The run folder (default ``runs/pretrain-<out name>``) holds fit's resumable checkpoint;
    ``resume`` continues from it. Next to ``out`` go ``<name>.log`` (readable) and
    ``<name>-history.csv`` (one row per epoch).
    """
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    out, run_dir = Path(config.out), config.run_folder
    if config.resume and not (run_dir / CHECKPOINT_NAME).is_file():
        raise CourseError(f"Nothing to resume: no {run_dir / CHECKPOINT_NAME}. Start without --resume.")
    device = resolve_device(config.device)
    # Under torchrun every process trains its share of each batch (fit's DistributedDataParallel);
    # the first one alone writes the log and the checkpoint.
    main = distributed.setup(device).is_main
    started = time.perf_counter()

    cifar = load_cifar10(config.data, config.image_size, progress=progress)
    # The curve is scored on a fixed, class-balanced subset of the test split after each epoch.
    curve = ProductData(
        train=cifar.train,
        val=cifar.test.subset(CURVE_IMAGES),
        test=cifar.test,
        classes=cifar.classes,
        task=cifar.task,
        image_size=config.image_size,
        source=cifar.source,
    )
    read_seconds = time.perf_counter() - started

    seed_everything(config.seed)
    model = ResNet18(num_classes=len(cifar.classes))
    stages = _load_init(model, config.init, cifar.classes) if config.init is not None else []
    param_groups = [{"params": list(model.parameters()), "lr": config.lr, "name": "all"}]
    log = _TrainingLog(
        out,
        run_dir,
        epoch_offset=sum(s["epochs"] for s in stages),
        seconds_offset=sum(s["seconds"] for s in stages),
        writes=main,
    )
    meta = _meta(config, cifar.classes, device, stages)
    log.start(meta, len(cifar.train), len(cifar.test), read_seconds)

    def on_epoch(record: EpochRecord) -> None:
        log.epoch(record)
        if main:
            save_checkpoint(out, model, half=True, **_checkpoint_meta(meta, log.history, None, started))

    history = fit(
        model,
        param_groups,
        curve,
        config.training(),
        out=run_dir,
        resume=config.resume,
        progress=progress,
        on_epoch=on_epoch,
    )
    log.history = history
    test = evaluate(model, cifar.test, batch_size=500)
    final = _checkpoint_meta(meta, history, test.accuracy, started)
    if main:
        save_checkpoint(out, model, half=True, **final)
        log.finish(final, out)
    return final


def _meta(config: PretrainConfig, classes: list[str], device: torch.device, stages: list[dict]) -> dict[str, Any]:
    """What the checkpoint says about how it was made (completed after every epoch)."""
    record = provenance(device, config.command)
    return {
        "source": config.source,
        "classes": classes,
        "epochs_planned": config.epochs,
        "image_size": config.image_size,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "recipe": "SGD momentum 0.9 Nesterov, weight decay 5e-4, cosine LR per batch from lr to 0, label smoothing "
        f"{config.label_smoothing:g}; augmentation: {AUGMENTATION_TEXT[config.augmentation]}",
        "augmentation": config.augmentation,
        "config": asdict(config),
        "normalisation": {"mean": list(MEAN), "std": list(STD)},
        "seed": config.seed,
        "command": record.pop("command"),
        # The checkpoint format names the device "name" (every shipped checkpoint does).
        "hardware": {
            "device": record["device"],
            "name": record["device_name"],
            "torch": record["torch"],
            "python": record["python"],
            "threads": record["threads"],
        },
        "citation": CITATION,
        "stages": stages,
    }


def _checkpoint_meta(meta: dict, history: History, test_accuracy: float | None, started: float) -> dict:
    last = history.records[-1] if history.records else None
    earlier = meta["stages"]
    return dict(
        meta,
        epochs=sum(stage["epochs"] for stage in earlier) + len(history),
        epochs_this_stage=len(history),
        test_accuracy=test_accuracy,
        test_subset_accuracy=last.val_accuracy if last else None,
        train_accuracy=last.train_accuracy if last else None,
        seconds=round(sum(stage["seconds"] for stage in earlier) + history.total_seconds, 1),
        seconds_this_stage=round(history.total_seconds, 1),
        eval_seconds=round(sum(history.column("eval_seconds")), 1),
        images_per_second=round(history.column("images_per_second")[-1], 1) if last else None,
        wall_seconds_this_process=round(time.perf_counter() - started, 1),
        date=datetime.now(UTC).isoformat(timespec="seconds"),
        complete=test_accuracy is not None,
    )


def _load_init(model: ResNet18, init: str | Path, classes: list[str]) -> list[dict]:
    """Load ``init`` into ``model``; return its stages (the earlier ones, then itself)."""
    checkpoint = load_checkpoint(init)
    if checkpoint.meta.get("classes", classes) != classes or checkpoint.num_classes != len(classes):
        raise CourseError(f"--init {init} was trained on other classes than the {len(classes)} of this dataset.")
    if not checkpoint.meta.get("complete", False):
        raise CourseError(f"--init {init} is the checkpoint of an unfinished run; finish it with --resume first.")
    model.load_state_dict(checkpoint.state_dict, strict=True)
    meta = checkpoint.meta
    this = {key: meta.get(key) for key in ("command", "lr", "test_accuracy", "sha256", "date")}
    this.update(
        epochs=meta.get("epochs_this_stage", meta["epochs"]), seconds=meta.get("seconds_this_stage", meta["seconds"])
    )
    return list(meta.get("stages", [])) + [this]


class _TrainingLog:
    """The readable log ``<name>.log`` and the table ``<name>-history.csv`` next to the checkpoint."""

    def __init__(
        self, out: Path, run_dir: Path, epoch_offset: int = 0, seconds_offset: float = 0.0, writes: bool = True
    ):
        self.writes = writes  # False in every process but the first under torchrun
        self.epoch_offset = epoch_offset  # epochs and seconds of the earlier stages, so the table continues
        self.seconds_offset = seconds_offset
        self.text = out.with_name(out.stem + ".log")
        self.table = out.with_name(out.stem + "-history.csv")
        self.history = _previous_history(run_dir)

    def write(self, line: str) -> None:
        if not self.writes:
            return
        print(line, flush=True)
        self.text.parent.mkdir(parents=True, exist_ok=True)
        with open(self.text, "a") as file:
            file.write(line + "\n")

    def start(self, meta: dict, train_images: int, test_images: int, read_seconds: float) -> None:
        self.write(f"# started {datetime.now(UTC).isoformat(timespec='seconds')}")
        self.write(f"command: {meta['command']}")
        self.write(f"hardware: {meta['hardware']}")
        self.write(
            f"source: {meta['source']} ({train_images} train / {test_images} test images, read in {read_seconds:.0f} s)"
        )
        self.write(
            f"recipe: {meta['recipe']}; batch {meta['batch_size']}, lr {meta['lr']}, {meta['epochs_planned']} epochs, "
            f"{meta['image_size']} px, seed {meta['seed']}"
        )
        for stage in meta["stages"]:
            self.write(
                f"starting from the weights of: {stage['command']} ({stage['epochs']} epochs, "
                f"test accuracy {stage['test_accuracy']:.4f})"
            )
        if self.history.records:
            self.write(f"resuming after epoch {len(self.history)}")
        self.write("epoch  lr      train_loss train_acc test_subset_acc  seconds  images/s")

    def epoch(self, record: EpochRecord) -> None:
        self.history.records.append(record)
        self.write(
            f"{record.epoch + self.epoch_offset:5d}  {record.lr:.4f}  {record.train_loss:10.4f} "
            f"{record.train_accuracy:9.4f} "
            f"{record.val_accuracy:15.4f}  {record.seconds:7.1f}  {record.images_per_second:8.1f}"
        )
        if not self.writes:
            return
        with open(self.table, "w", newline="") as file:
            writer = csv.writer(file)
            writer.writerow(LOG_COLUMNS)
            for r in self.history.records:
                writer.writerow(
                    [
                        r.epoch + self.epoch_offset,
                        f"{r.lr:.6f}",
                        f"{r.train_loss:.5f}",
                        f"{r.train_accuracy:.5f}",
                        f"{r.val_loss:.5f}",
                        f"{r.val_accuracy:.5f}",
                        f"{r.seconds:.2f}",
                        f"{r.cumulative_seconds + self.seconds_offset:.2f}",
                        f"{r.images_per_second:.1f}",
                        f"{r.eval_seconds:.2f}",
                    ]
                )

    def finish(self, meta: dict, out: Path) -> None:
        self.write(
            f"test accuracy {meta['test_accuracy']:.4f} on all test images after {meta['epochs']} epochs; "
            f"{meta['seconds']:.0f} s training ({meta['seconds_this_stage']:.0f} s in this stage), "
            f"{meta['wall_seconds_this_process']:.0f} s in this process; "
            f"wrote {out} ({out.stat().st_size / 2**20:.1f} MiB)"
        )


def _previous_history(run_dir: Path) -> History:
    """The epochs already done in ``run_dir`` (for the log of a resumed run)."""
    path = run_dir / HISTORY_NAME
    return History.from_json(path) if path.is_file() else History()


# --------------------------------------------------------------------------- command line


def run(config: PretrainConfig) -> int:
    """``python -m course_lib pretrain``."""
    pretrain(config)
    return 0
