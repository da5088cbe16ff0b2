"""Product photos as uint8 tensors: the embedded Grocery Store copy, full-size data, any folder of photos.

:func:`load_products` decodes every photo once (Pillow), centre-crops and resizes it to a
square ``image_size`` and keeps each split as a uint8 tensor ``(N, 3, H, W)`` in memory (on
the GPU when ``device`` is one). :func:`batches` turns a split into normalised float
batches and augments whole batches with tensor ops (random resized crop, horizontal flip).

Where the photos come from (``root``):

- ``None``: the embedded copy in ``data/grocery-store`` (96 px JPEGs and ``manifest.csv``).
- the full-size Grocery Store Dataset (the folder holding ``dataset/train.txt``).
- any folder of photos ``root/<class>/*.jpg``, with or without ``train/ val/ test/``
  subfolders; without them each class is split 70 / 15 / 15 at random with a fixed seed.

Validation on the Grocery Store Dataset: the official val split has only 296 photos and
covers 60 of the 81 fine classes (at 90 % accuracy its standard error is 1.7 points). The
course adds a stratified hold-out from the official train split: for each fine class, the
last 15 % of its official train photos in file order (consecutive photos come from the same
shelf, so a block leaks less than a random pick). Validation then has 696 photos (296 + 400,
standard error 1.1 points) covering every class; training keeps 2240 and the official test
split (2485) stays the test set. Evaluate without augmentation (``batches(split, n)``).
``classes.csv`` numbers 43 coarse classes (the dataset's README says 42).
"""

from __future__ import annotations

import csv
import hashlib
import math
import os
import random
import sys
from collections import defaultdict
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from tqdm import tqdm

from course_lib import PROJECT_ROOT
from course_lib.errors import CourseError

# ImageNet statistics: torchvision's ImageNet weights and the shipped CIFAR-10 checkpoint use them.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

TASKS = ("super", "coarse", "fine")
SPLITS = ("train", "val", "test")
SUPER_CLASSES = ("Fruit", "Packages", "Vegetables")
EMBEDDED_ROOT = PROJECT_ROOT / "data" / "grocery-store"
HOLDOUT_FRACTION = 0.15
MANIFEST_FIELDS = [
    "split",
    "official_split",
    "path",
    "super",
    "super_name",
    "coarse",
    "coarse_name",
    "fine",
    "fine_name",
    "sha256",
]
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}


class DataError(CourseError):
    """A dataset folder or image file that cannot be used as given."""


@dataclass
class Split:
    """One split: uint8 images ``(N, 3, H, W)``, int64 labels ``(N,)`` and the file of each image."""

    images: torch.Tensor
    labels: torch.Tensor
    paths: list[str]

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def to(self, device: str | torch.device) -> Split:
        return replace(self, images=self.images.to(device), labels=self.labels.to(device))

    def subset(self, count: int) -> Split:
        """At most ``count`` photos, spread evenly over the split sorted by class (see
        :func:`spread_indices`), in their original order: quick trials, learning-curve subsets."""
        if len(self) <= count:
            return self
        keep = torch.tensor(sorted(spread_indices(self.labels, count)))
        return Split(self.images[keep], self.labels[keep], [self.paths[i] for i in keep.tolist()])


def spread_indices(labels: torch.Tensor, count: int) -> list[int]:
    """``count`` indices spread evenly over the photos sorted by class, so that every class
    shows up when there are at most ``count`` classes, and classes keep their proportions;
    the same photos on every call."""
    order = torch.argsort(labels.cpu(), stable=True)
    count = min(count, len(order))
    if count == 0:
        return []
    picks = np.linspace(0, len(order) - 1, count).round().astype(int)
    return [int(order[i]) for i in picks]


@dataclass
class ProductData:
    """Train / val / test splits of one task, the class names and where the photos came from.

    ``paths`` in the splits are relative to ``root``. ``skipped_files`` are unreadable images
    left out with ``skip_corrupt=True``; ``ignored_files`` are files that are not images;
    ``converted_files`` were grayscale, CMYK or transparent and were converted to RGB.
    """

    train: Split
    val: Split
    test: Split
    classes: list[str]
    task: str
    image_size: int
    source: str
    root: str = ""
    skipped_files: list[str] = field(default_factory=list)
    ignored_files: list[str] = field(default_factory=list)
    converted_files: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def splits(self) -> dict[str, Split]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def to(self, device: str | torch.device) -> ProductData:
        return replace(self, train=self.train.to(device), val=self.val.to(device), test=self.test.to(device))

    def subset(self, count: int) -> ProductData:
        """At most ``count`` photos of each split, spread over the classes (``Split.subset``)."""
        return replace(self, train=self.train.subset(count), val=self.val.subset(count), test=self.test.subset(count))


# ---------------------------------------------------------------------------------------------
# Batches and augmentation


def normalize(images: torch.Tensor) -> torch.Tensor:
    """uint8 images (or float images in [0, 1]) to float32 normalised with MEAN and STD."""
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    mean = torch.tensor(MEAN, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, device=x.device).view(1, 3, 1, 1)
    return (x - mean) / std


def _uniform(n: int, k: int, generator: torch.Generator | None, device: torch.device) -> torch.Tensor:
    """Uniform numbers drawn on the generator's device, so a seed gives the same draws anywhere."""
    gen_device = generator.device if generator is not None else torch.device("cpu")
    return torch.rand(n, k, generator=generator, device=gen_device).to(device)


def random_resized_crop(
    images: torch.Tensor,
    size: int | None = None,
    *,
    scale: tuple[float, float] = (0.25, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Crop a random box from each image of a float batch, resize it to ``size`` and flip half.

    One ``grid_sample`` call does the whole batch. Each box covers a fraction ``scale`` of
    the image area with an aspect ratio in ``ratio`` and lies inside the image.
    """
    n, channels, height, _ = images.shape
    size = size or height
    u = _uniform(n, 5, generator, images.device)
    area = scale[0] + (scale[1] - scale[0]) * u[:, 0]
    aspect = torch.exp(math.log(ratio[0]) + (math.log(ratio[1]) - math.log(ratio[0])) * u[:, 1])
    box_w = torch.sqrt(area * aspect).clamp(max=1.0)  # fractions of the image side
    box_h = torch.sqrt(area / aspect).clamp(max=1.0)
    centre_x = (2 * u[:, 2] - 1) * (1 - box_w)  # grid units in [-1, 1]; the box stays inside
    centre_y = (2 * u[:, 3] - 1) * (1 - box_h)
    mirror = torch.where(u[:, 4] < 0.5, -1.0, 1.0) if flip else torch.ones(n, device=images.device)
    theta = torch.zeros(n, 2, 3, device=images.device, dtype=images.dtype)
    theta[:, 0, 0] = box_w * mirror
    theta[:, 0, 2] = centre_x
    theta[:, 1, 1] = box_h
    theta[:, 1, 2] = centre_y
    grid = F.affine_grid(theta, [n, channels, size, size], align_corners=False)
    return F.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_crop_flip(
    images: torch.Tensor,
    size: int | None = None,
    *,
    padding: float = 1 / 8,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Pad each image of a float batch by ``padding`` of its side (mirroring the border), cut a
    window of the original size from a random place of it, and flip half the windows.

    The classic augmentation for small photos (He et al. 2016 pad CIFAR's 32 px by 4): it
    moves the content a few pixels without zooming, so objects keep the size they have in the
    photos, where ``random_resized_crop`` at a quarter of the area magnifies them up to twice.
    """
    n, channels, height, width = images.shape
    pad = max(1, round(height * padding))
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    u = _uniform(n, 3, generator, images.device)
    top = (u[:, 0] * (2 * pad + 1)).long().clamp(max=2 * pad)
    left = (u[:, 1] * (2 * pad + 1)).long().clamp(max=2 * pad)
    rows = top[:, None] + torch.arange(height, device=images.device)
    columns = left[:, None] + torch.arange(width, device=images.device)
    columns = torch.where((u[:, 2] < 0.5)[:, None], columns.flip(1), columns)
    index = torch.arange(n, device=images.device)[:, None, None, None]
    channel = torch.arange(channels, device=images.device)[None, :, None, None]
    out = padded[index, channel, rows[:, None, :, None], columns[:, None, None, :]]
    if size is not None and size != height:
        out = F.interpolate(out, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    return out


# How a training batch may be augmented: the name recorded in settings -> the function, and in words.
AUGMENTATIONS = {"none": None, "resized_crop": random_resized_crop, "crop_flip": random_crop_flip}
AUGMENTATION_TEXT = {
    "none": "none",
    "resized_crop": "random resized crop (a quarter to all of the area, resized back) and horizontal flip",
    "crop_flip": "a random window of the image padded by an eighth of its side (mirrored border), and horizontal flip",
}


def batches(
    split: Split,
    batch_size: int,
    *,
    shuffle: bool = False,
    augment: str = "none",
    generator: torch.Generator | None = None,
    drop_last: bool = False,
    size: int | None = None,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images, labels)``: float32 images normalised with MEAN/STD, on the split's device.

    ``shuffle`` permutes the order and ``augment`` (a name of :data:`AUGMENTATIONS`:
    ``resized_crop`` for :func:`random_resized_crop`, ``crop_flip`` for :func:`random_crop_flip`)
    transforms each whole batch; both draw from ``generator``, so a seeded generator gives the
    same batches every time. ``size`` is the output side (default: the stored size); without
    augmentation the whole image is resized to it. Evaluation uses neither shuffle nor augment.
    """
    if batch_size < 1:
        raise DataError(f"batch_size must be at least 1, got {batch_size}.")
    if augment not in AUGMENTATIONS:
        raise DataError(f"Unknown augmentation {augment!r}; choose one of {', '.join(AUGMENTATIONS)}.")
    transform = AUGMENTATIONS[augment]
    n = len(split)
    if shuffle:
        order = torch.argsort(_uniform(1, n, generator, split.device)[0])
    else:
        order = torch.arange(n, device=split.device)
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        index = order[start : start + batch_size]
        images = split.images[index].float() / 255.0
        if transform is not None:
            images = transform(images, size, generator=generator)
        elif size is not None and size != images.shape[-1]:
            images = F.interpolate(images, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        yield normalize(images), split.labels[index]


# ---------------------------------------------------------------------------------------------
# The Grocery Store Dataset: official lists and the course's validation hold-out


def _original_dataset_dir(root: Path) -> Path | None:
    """The folder holding train.txt and classes.csv (``root/dataset`` or ``root``), if any."""
    for folder in (root / "dataset", root):
        if (folder / "train.txt").is_file() and (folder / "classes.csv").is_file():
            return folder
    return None


def read_official_lists(root: Path) -> list[dict]:
    """One record per photo of the official train / val / test lists, with all three label levels.

    The super-class (Fruit / Packages / Vegetables) is the first folder of each path;
    ``classes.csv`` gives the fine and coarse names.
    """
    folder = _original_dataset_dir(Path(root))
    if folder is None:
        raise DataError(
            f"{root} holds no dataset/train.txt and dataset/classes.csv; pass the Grocery Store Dataset folder."
        )
    fine_names, coarse_names = {}, {}
    with open(folder / "classes.csv", newline="") as f:
        for row in list(csv.reader(f))[1:]:
            fine_names[int(row[1])] = row[0]
            coarse_names[int(row[3])] = row[2]
    records = []
    for split in SPLITS:
        for line in (folder / f"{split}.txt").read_text().splitlines():
            if not line.strip():
                continue
            path, fine, coarse = (part.strip() for part in line.split(","))
            super_name = path.split("/")[1]
            if super_name not in SUPER_CLASSES:
                raise DataError(f"{folder / f'{split}.txt'}: {path} is not under one of {', '.join(SUPER_CLASSES)}.")
            records.append(
                {
                    "official_split": split,
                    "path": path,
                    "super": SUPER_CLASSES.index(super_name),
                    "super_name": super_name,
                    "coarse": int(coarse),
                    "coarse_name": coarse_names[int(coarse)],
                    "fine": int(fine),
                    "fine_name": fine_names[int(fine)],
                }
            )
    return records


def grocery_splits(records: list[dict], fraction: float = HOLDOUT_FRACTION) -> list[str]:
    """The course split of each record: official, except that for each fine class the last
    ``fraction`` of its official train photos (in file order) move to validation."""
    splits = [r["official_split"] for r in records]
    train_by_fine = defaultdict(list)
    for i, record in enumerate(records):
        if record["official_split"] == "train":
            train_by_fine[record["fine"]].append(i)
    for indices in train_by_fine.values():
        indices.sort(key=lambda i: records[i]["path"])
        held_out = int(fraction * len(indices) + 0.5)
        for i in indices[len(indices) - held_out :]:
            splits[i] = "val"
    return splits


def _class_names(rows: list[dict], task: str) -> list[str]:
    names = {int(r[task]): r[f"{task}_name"] for r in rows}
    if sorted(names) != list(range(len(names))):
        raise DataError(f"The {task} labels are not numbered 0 to {len(names) - 1}; rebuild the manifest.")
    return [names[i] for i in range(len(names))]


# ---------------------------------------------------------------------------------------------
# Finding the photos: (split, path relative to root, label) items and the class names


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_manifest(root: Path) -> list[dict]:
    """The rows of ``root/manifest.csv``, checked for the columns and the files it lists."""
    root = Path(root)
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    missing = set(MANIFEST_FIELDS) - set(rows[0] if rows else {})
    if missing:
        raise DataError(
            f"{root / 'manifest.csv'} lacks the columns {', '.join(sorted(missing))}; rebuild it with "
            "scripts/build_dataset.py."
        )
    absent = [r["path"] for r in rows if not (root / r["path"]).is_file()]
    if absent:
        raise DataError(
            f"{len(absent)} files listed in {root / 'manifest.csv'} are missing, e.g. {root / absent[0]}; "
            "restore them (git checkout data/) or rebuild with scripts/build_dataset.py."
        )
    return rows


def verify_manifest(root: Path, rows: list[dict] | None = None) -> None:
    """Check every file listed in ``root/manifest.csv`` against its sha256."""
    root = Path(root)
    rows = read_manifest(root) if rows is None else rows
    changed = [r["path"] for r in rows if _sha256(root / r["path"]) != r["sha256"]]
    if changed:
        raise DataError(
            f"{len(changed)} file(s) differ from the sha256 in {root / 'manifest.csv'}, e.g. {root / changed[0]}; "
            "restore them (git checkout data/) or rebuild with scripts/build_dataset.py."
        )


def _from_manifest(root: Path, task: str, verify: bool) -> tuple[list[tuple], list[str]]:
    rows = read_manifest(root)
    if verify:
        verify_manifest(root, rows)
    items = [(r["split"], r["path"], int(r[task])) for r in rows]
    return items, _class_names(rows, task)


def _from_original(folder: Path, task: str) -> tuple[list[tuple], list[str]]:
    records = read_official_lists(folder)
    splits = grocery_splits(records)
    items = [(split, r["path"], r[task]) for r, split in zip(records, splits, strict=True)]
    return items, _class_names(records, task)


def _is_hidden(path: Path) -> bool:
    return path.name.startswith(".")


def _scan_class_folders(folder: Path, root: Path, ignored: list[str]) -> dict[str, list[str]]:
    """``{class name: [image paths relative to root]}`` for the class subfolders of ``folder``."""
    photos = {}
    for entry in sorted(folder.iterdir()):
        if _is_hidden(entry):
            continue
        if entry.is_file():
            ignored.append(entry.relative_to(root).as_posix())
            continue
        images = []
        for path in sorted(entry.rglob("*")):
            if not path.is_file():
                continue
            relative = path.relative_to(root).as_posix()
            (images if path.suffix.lower() in IMAGE_SUFFIXES else ignored).append(relative)
        if not images:
            raise DataError(
                f"The class folder {entry} holds no images (.jpg, .png, ...); add photos of that class or "
                "remove the folder."
            )
        photos[entry.name] = images
    return photos


def _stratified_split(
    photos: dict[str, list[str]], fractions: dict[str, float], seed: int
) -> dict[str, dict[str, list[str]]]:
    """Split each class at random with a fixed seed: at least one photo per class in each split."""
    out = {"train": {}, **{name: {} for name in fractions}}
    for name, paths in photos.items():
        if len(paths) < 1 + len(fractions):
            raise DataError(
                f"The class {name!r} has {len(paths)} photo(s); a folder without {' and '.join(fractions)} subfolders "
                f"needs at least {1 + len(fractions)} photos per class to split them. Add photos."
            )
        shuffled = sorted(paths)
        random.Random(f"{seed}/{name}").shuffle(shuffled)
        for split, fraction in fractions.items():
            take = max(1, int(fraction * len(paths) + 0.5))
            take = min(take, len(shuffled) - 1)
            out[split][name], shuffled = shuffled[:take], shuffled[take:]
        out["train"][name] = shuffled
    return out


def _from_folder(
    root: Path, val_fraction: float, test_fraction: float, seed: int, ignored: list[str]
) -> tuple[list[tuple], list[str], str]:
    """Photos in ``root/<class>/`` or ``root/{train,val,test}/<class>/``."""
    subfolders = {p.name for p in root.iterdir() if p.is_dir() and not _is_hidden(p)}
    if subfolders & set(SPLITS):
        others = subfolders - set(SPLITS)
        if others:
            raise DataError(
                f"{root} mixes split folders ({', '.join(sorted(subfolders & set(SPLITS)))}) with other folders "
                f"({', '.join(sorted(others))}); use either {root}/<class>/ or {root}/train/<class>/ (val/ "
                "and test/ optional)."
            )
        if "train" not in subfolders:
            raise DataError(
                f"{root} has {', '.join(sorted(subfolders))} folders but no train/ folder; add {root}/train/<class>/ "
                f"or put the class folders directly in {root}."
            )
        for entry in sorted(root.iterdir()):
            if entry.is_file() and not _is_hidden(entry):
                ignored.append(entry.name)
        given = {split: _scan_class_folders(root / split, root, ignored) for split in SPLITS if split in subfolders}
        names = {split: set(photos) for split, photos in given.items()}
        if len({frozenset(n) for n in names.values()}) > 1:
            differences = "; ".join(
                f"{split} lacks {', '.join(sorted(set().union(*names.values()) - n))}"
                for split, n in names.items()
                if set().union(*names.values()) - n
            )
            raise DataError(
                f"The splits in {root} have different classes ({differences}); every split needs the same "
                "class folders."
            )
        fractions = {s: f for s, f in (("val", val_fraction), ("test", test_fraction)) if s not in given}
        by_split = {**given, **_stratified_split(given["train"], fractions, seed)} if fractions else given
        how = "split folders" + (f", {' and '.join(fractions)} held out from train (seed {seed})" if fractions else "")
    else:
        photos = _scan_class_folders(root, root, ignored)
        by_split = _stratified_split(photos, {"val": val_fraction, "test": test_fraction}, seed)
        train_fraction = 1 - val_fraction - test_fraction
        how = f"stratified split {train_fraction:.0%} / {val_fraction:.0%} / {test_fraction:.0%}, seed {seed}"
    classes = sorted(by_split["train"])
    if not classes:
        raise DataError(f"{root} has no class folders; put photos in {root}/<class name>/ (one folder per class).")
    items = [
        (split, path, classes.index(name))
        for split in SPLITS
        for name, paths in sorted(by_split[split].items())
        for path in paths
    ]
    return items, classes, how


# ---------------------------------------------------------------------------------------------
# Decoding


def _to_rgb(image: Image.Image) -> tuple[Image.Image, bool]:
    """RGB image and whether it needed converting; transparent pixels become white."""
    if image.mode == "RGB":
        return image, False
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB"), True
    return image.convert("RGB"), True


def decode_image(path: Path, size: int) -> tuple[torch.Tensor, bool]:
    """A photo upright, centre-cropped to a square and resized: uint8 ``(3, size, size)``.

    Also returns whether it had to be converted to RGB. Raises ``OSError`` when the file
    cannot be read as an image.
    """
    with Image.open(path) as image:
        image.draft("RGB", (size, size))  # JPEG: decode at a reduced scale when much larger than size
        image = ImageOps.exif_transpose(image)
        image, converted = _to_rgb(image)
        if image.size != (size, size):
            image = ImageOps.fit(image, (size, size), method=Image.Resampling.BILINEAR)
        pixels = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8)
    return pixels.view(size, size, 3).permute(2, 0, 1), converted


def _try_decode(path: Path, size: int) -> tuple[torch.Tensor | None, bool, str]:
    """:func:`decode_image`, with the reason instead of an exception when the file is unreadable."""
    try:
        return (*decode_image(path, size), "")
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
        return None, False, str(error) or type(error).__name__


def _decode_all(
    root: Path, items: list[tuple], size: int, skip_corrupt: bool, progress: bool
) -> tuple[dict, list, list]:
    """Decode every photo (Pillow releases the GIL, so a few threads help) into one uint8 tensor per split."""
    images = torch.empty(len(items), 3, size, size, dtype=torch.uint8)
    kept, skipped, converted = [], [], []
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        decoded = pool.map(lambda item: _try_decode(root / item[1], size), items)
        for (split, path, label), (image, was_converted, error) in tqdm(
            zip(items, decoded, strict=True), total=len(items), desc="decoding photos", unit="img", disable=not progress
        ):
            if image is None:
                if not skip_corrupt:
                    pool.shutdown(cancel_futures=True)
                    raise DataError(
                        f"Cannot read the image {root / path} ({error}). Replace or remove the file, or pass "
                        "skip_corrupt=True to leave unreadable images out (they are listed in "
                        "ProductData.skipped_files)."
                    )
                skipped.append(path)
                continue
            images[len(kept)] = image
            kept.append((split, path, label))
            if was_converted:
                converted.append(path)
    splits = {}
    for split in SPLITS:
        index = [i for i, item in enumerate(kept) if item[0] == split]
        splits[split] = Split(
            images=images[index],
            labels=torch.tensor([kept[i][2] for i in index], dtype=torch.int64),
            paths=[kept[i][1] for i in index],
        )
    return splits, skipped, converted


def _check_splits(splits: dict[str, Split], classes: list[str], root: Path) -> None:
    for name, split in splits.items():
        if len(split) == 0:
            raise DataError(f"The {name} split of {root} has no readable images; add photos to it.")
    missing = sorted(set(range(len(classes))) - set(splits["train"].labels.tolist()))
    if missing:
        raise DataError(
            f"No readable training photos for the class(es) {', '.join(classes[i] for i in missing)} in "
            f"{root}; add photos."
        )


def load_products(
    root: str | Path | None = None,
    task: str = "super",
    image_size: int = 64,
    *,
    device: str | torch.device = "cpu",
    verify: bool = False,
    skip_corrupt: bool = False,
    val_fraction: float = 0.15,
    test_fraction: float = 0.15,
    seed: int = 0,
    progress: bool | None = None,
) -> ProductData:
    """Train / val / test photos for ``task`` as uint8 tensors of ``image_size`` pixels on ``device``.

    ``task`` is ``super`` (Fruit / Packages / Vegetables), ``coarse`` (43 classes) or ``fine``
    (81 classes) for the Grocery Store Dataset; a folder of photos has one level of classes
    (its folder names) and takes the default. ``verify`` checks every file against the
    sha256 in ``manifest.csv``. ``skip_corrupt`` leaves unreadable images out instead of
    stopping. ``val_fraction``, ``test_fraction`` and ``seed`` split a folder of photos that
    lacks val/ or test/ subfolders. ``progress`` shows a bar (default: when interactive).
    """
    if task not in TASKS:
        raise DataError(f"Unknown task {task!r}; choose one of {', '.join(TASKS)}.")
    if not isinstance(image_size, int) or image_size < 8:
        raise DataError(f"image_size must be a whole number of pixels, at least 8; got {image_size!r}.")
    if not (0 < val_fraction < 1 and 0 < test_fraction < 1 and val_fraction + test_fraction < 1):
        raise DataError(
            f"val_fraction and test_fraction must be between 0 and 1 with a sum below 1; got {val_fraction} "
            f"and {test_fraction}."
        )
    root = EMBEDDED_ROOT if root is None else Path(root).expanduser()
    if not root.is_dir():
        hint = "restore data/grocery-store (git checkout data/)" if root == EMBEDDED_ROOT else "check the path"
        raise DataError(f"The dataset folder {root} does not exist or is not a folder; {hint}.")
    ignored: list[str] = []
    original = _original_dataset_dir(root)
    if (root / "manifest.csv").is_file():
        items, classes = _from_manifest(root, task, verify)
        source = f"Grocery Store Dataset copy in {root} (manifest.csv, validation = official val + 15 % hold-out)"
    elif original is not None:
        if verify:
            raise DataError(
                f"{root} has no manifest.csv to verify against; verify=True works on copies made by "
                "scripts/build_dataset.py."
            )
        items, classes = _from_original(original, task)
        root = original
        source = f"Grocery Store Dataset in {root} (official lists, validation = official val + 15 % hold-out)"
    else:
        if task != "super":
            raise DataError(
                f"The task {task!r} needs the Grocery Store Dataset; a folder of photos has one level of "
                "classes, so leave task at 'super'."
            )
        if verify:
            raise DataError(
                f"{root} has no manifest.csv to verify against; verify=True works on copies made by "
                "scripts/build_dataset.py."
            )
        items, classes, how = _from_folder(root, val_fraction, test_fraction, seed, ignored)
        source = f"folder of photos {root} ({how})"
    if progress is None:
        progress = sys.stderr.isatty()
    splits, skipped, converted = _decode_all(root, items, image_size, skip_corrupt, progress)
    _check_splits(splits, classes, root)
    data = ProductData(
        **splits,
        classes=classes,
        task=task,
        image_size=image_size,
        source=source,
        root=str(root),
        skipped_files=skipped,
        ignored_files=ignored,
        converted_files=converted,
    )
    return data.to(device)
