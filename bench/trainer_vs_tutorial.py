"""The course's trainer against the usual tutorial loop: seconds per epoch for each regime.

The tutorial loop is the one of PyTorch's transfer-learning tutorial
(https://pytorch.org/tutorials/beginner/transfer_learning_tutorial.html): torchvision's
``ImageFolder``, every photo decoded with PIL and transformed (RandomResizedCrop,
RandomHorizontalFlip, ToTensor, Normalize) by a ``DataLoader`` in every epoch, and a
``train`` then ``val`` phase per epoch. Feature extraction there freezes the backbone
with ``requires_grad=False`` and still runs it on every photo in every epoch.

The trainer is ``course_lib.train.fit`` on the photos decoded once into uint8 tensors
(``data.load_products``), augmented on whole batches, with cached features when the
backbone is frozen.

Both see the same photos (the course's train and val splits, the tutorial's
ImageFolder reading them through a folder of links), the same image size, batch size,
epochs and starting weights. Seconds per epoch are wall-clock for training plus
validation; the trainer's one-off decoding is reported on its own line. Regimes
alternate which side runs first, so that a busy neighbour on a shared machine does not
always hit the same side.

    python bench/trainer_vs_tutorial.py                 # 32 px, batch 64, 2 epochs, ~5 min on 2 idle cores
    python bench/trainer_vs_tutorial.py --data PATH     # the full-size Grocery Store photos instead
    python bench/trainer_vs_tutorial.py --device cuda   # on a GPU: 96 px, the tutorial moving each batch there

By default both read the embedded 96 px copy of the photos. With ``--data`` pointing at the
full-size dataset (the ``dataset`` folder of the Grocery Store Dataset), the tutorial's
ImageFolder reads the photos as the dataset ships them (348 x 464 JPEGs), which is what a
copied tutorial loop does, and the trainer decodes the same files once.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from course_lib import REGIMES
from course_lib.data import EMBEDDED_ROOT, MEAN, STD, ProductData, load_products
from course_lib.regimes import prepare_model
from course_lib.runtime import device_name, resolve_device, synchronize, warm_up
from course_lib.train import TrainConfig, fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import starting_weights  # noqa: E402  (bench/common.py)

# --------------------------------------------------------------------------- the tutorial loop


def link_folder(data: ProductData, root: Path, folder: Path) -> None:
    """``folder/<split>/<class>/<n>.jpg`` links to the photos of the train and val splits, for ImageFolder."""
    for split_name in ("train", "val"):
        split = getattr(data, split_name)
        for index, (path, label) in enumerate(zip(split.paths, split.labels.tolist(), strict=True)):
            target = folder / split_name / data.classes[label] / f"{index:05d}{Path(path).suffix}"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.symlink_to(Path(root, path).resolve())


def tutorial_loaders(folder: Path, image_size: int, batch_size: int, workers: int) -> dict[str, DataLoader]:
    """The tutorial's transforms and loaders, at the course's image size."""
    normalize = transforms.Normalize(MEAN, STD)
    phases = {
        "train": transforms.Compose(
            [
                transforms.RandomResizedCrop(image_size),
                transforms.RandomHorizontalFlip(),
                transforms.ToTensor(),
                normalize,
            ]
        ),
        "val": transforms.Compose(
            [transforms.Resize(image_size), transforms.CenterCrop(image_size), transforms.ToTensor(), normalize]
        ),
    }
    return {
        phase: DataLoader(
            datasets.ImageFolder(folder / phase, transform),
            batch_size=batch_size,
            shuffle=phase == "train",
            num_workers=workers,
        )
        for phase, transform in phases.items()
    }


def tutorial_model(regime: str, num_classes: int, weights: dict) -> tuple[nn.Module, list[nn.Parameter]]:
    """torchvision's resnet18 set up the tutorial's way; returns the model and the parameters to optimise."""
    model = torchvision.models.resnet18()
    if regime != "fresh":
        model.load_state_dict({k: v for k, v in weights.items() if not k.startswith("fc.")}, strict=False)
    if regime == "feature_extraction":
        for parameter in model.parameters():
            parameter.requires_grad = False
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model, [p for p in model.parameters() if p.requires_grad]


def tutorial_epochs(
    model: nn.Module,
    parameters: list[nn.Parameter],
    loaders: dict[str, DataLoader],
    epochs: int,
    lr: float,
    device: torch.device,
) -> list[float]:
    """The tutorial's ``train_model``: seconds of each epoch (train phase, then val phase), each
    batch moved to ``device`` as the tutorial does."""
    model.to(device)
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(parameters, lr=lr, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=7, gamma=0.1)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        for phase in ("train", "val"):
            model.train(phase == "train")
            running_loss, running_corrects = 0.0, 0
            for inputs, labels in loaders[phase]:
                inputs, labels = inputs.to(device), labels.to(device)
                optimizer.zero_grad()
                with torch.set_grad_enabled(phase == "train"):
                    outputs = model(inputs)
                    _, preds = torch.max(outputs, 1)
                    loss = criterion(outputs, labels)
                    if phase == "train":
                        loss.backward()
                        optimizer.step()
                running_loss += loss.item() * inputs.size(0)
                running_corrects += torch.sum(preds == labels.data)
            if phase == "train":
                scheduler.step()
        synchronize(device)
        seconds.append(time.perf_counter() - start)
    return seconds


# --------------------------------------------------------------------------- the trainer


def trainer_seconds(
    regime: str, data: ProductData, weights: dict, epochs: int, batch_size: int, lr: float, device: torch.device
) -> float:
    """Wall-clock seconds of ``fit`` for ``epochs`` epochs (cached features included)."""
    model, groups = prepare_model(regime, data.num_classes, weights=None if regime == "fresh" else weights, lr=lr)
    start = time.perf_counter()
    fit(model, groups, data, TrainConfig(epochs=epochs, batch_size=batch_size, device=str(device)), progress=False)
    return time.perf_counter() - start


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--regimes", nargs="+", choices=REGIMES, default=list(REGIMES))
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: cpu)")
    parser.add_argument("--image-size", type=int, help="pixels (default: 32 on the CPU, 96 on CUDA)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument(
        "--workers", type=int, default=2, help="DataLoader workers of the tutorial loop (default: 2, one per core)"
    )
    parser.add_argument(
        "--limit", type=int, help="use at most N photos of each split, spread over the classes (a busy machine)"
    )
    parser.add_argument("--data", type=Path, help="photos to read (default: the embedded 96 px copy)")
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = resolve_device(args.device)
    args.image_size = args.image_size or (96 if device.type == "cuda" else 32)
    warm_up(device)
    torch.manual_seed(args.seed)
    start = time.perf_counter()
    root = args.data or EMBEDDED_ROOT
    data = load_products(root, image_size=args.image_size, progress=False)
    load_seconds = time.perf_counter() - start
    data = data.subset(args.limit) if args.limit else data
    weights, weights_note = starting_weights(args.seed)

    print(
        f"# Trainer vs tutorial loop on {device_name(device)}, torch {torch.__version__}: "
        f"{len(data.train)} train + {len(data.val)} val photos, {args.image_size} px, batch {args.batch_size}, "
        f"{args.epochs} epochs, tutorial DataLoader workers {args.workers}; photos from {root}; {weights_note}\n"
    )
    print(f"trainer: decoding the photos once into uint8 tensors took {load_seconds:.1f} s (not counted below)\n")
    print(f"| {'regime':<18} | {'tutorial s/epoch':>16} | {'trainer s/epoch':>15} | {'speed-up':>8} |")
    print(f"|{'-' * 20}|{'-' * 17}:|{'-' * 16}:|{'-' * 9}:|")
    with tempfile.TemporaryDirectory(prefix="tutorial-folder-") as folder:
        link_folder(data, root, Path(folder))
        loaders = tutorial_loaders(Path(folder), args.image_size, args.batch_size, args.workers)
        for index, regime in enumerate(args.regimes):
            order = ("trainer", "tutorial") if index % 2 == 0 else ("tutorial", "trainer")
            per_epoch = {}
            for side in order:
                if side == "trainer":
                    seconds = trainer_seconds(regime, data, weights, args.epochs, args.batch_size, args.lr, device)
                    per_epoch[side] = seconds / args.epochs
                else:
                    torch.manual_seed(args.seed)
                    model, parameters = tutorial_model(regime, data.num_classes, weights)
                    per_epoch[side] = (
                        sum(tutorial_epochs(model, parameters, loaders, args.epochs, args.lr, device)) / args.epochs
                    )
            speedup = per_epoch["tutorial"] / per_epoch["trainer"]
            print(
                f"| {regime:<18} | {per_epoch['tutorial']:>16.1f} | {per_epoch['trainer']:>15.1f} | {speedup:>7.1f}x |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
