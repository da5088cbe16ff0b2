"""Build the embedded copy of the Grocery Store Dataset from the original.

    python scripts/build_dataset.py --src ../shared/datasets/grocery-store
    python scripts/build_dataset.py --src ... --size 224 --out /data/grocery-store-224

Each photo of the official train / val / test lists is rotated upright, centre-cropped to a
square, resized to ``--size`` pixels and saved as a JPEG. ``manifest.csv`` records, per
photo, the course split (the official one, except a stratified hold-out from the official
train split that joins validation, see ``course_lib.data.grocery_splits``), the three label
levels and the sha256 of the file. The same source and the same Pillow give the same bytes.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import shutil
import sys
from pathlib import Path

from PIL import Image, ImageOps
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from course_lib.data import HOLDOUT_FRACTION, MANIFEST_FIELDS, grocery_splits, read_official_lists  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parent.parent

CITATION = """\
@inproceedings{klasson2019hierarchical,
  title     = {A Hierarchical Grocery Store Image Dataset with Visual and Semantic Labels},
  author    = {Klasson, Marcus and Zhang, Cheng and Kjellstr{\\"o}m, Hedvig},
  booktitle = {IEEE Winter Conference on Applications of Computer Vision (WACV)},
  year      = {2019},
  url       = {https://arxiv.org/abs/1901.00711}
}
"""


README = """\
# Grocery Store Dataset: compact copy

A {size} x {size} px copy of the [Grocery Store Dataset](https://github.com/marcusklasson/GroceryStoreDataset)
(Klasson, Zhang and Kjellström, WACV 2019; MIT licence, see `LICENSE` and `CITATION.bib`):
{total} photos of fruit, vegetables and packaged products taken with a smartphone in grocery
stores, labelled at three levels: super-class (3: Fruit, Packages, Vegetables), coarse class
({coarse_count}, e.g. Apple; the dataset's README says 42, its `classes.csv` numbers {coarse_count}) and fine
class ({fine_count}, e.g. Granny-Smith). The course's main task is the super-class.

Load it with `course_lib.data.load_products()` (task `super`, `coarse` or `fine`, `image_size`
up to {size}); `load_products("PATH/grocery-store")` reads the full-size original with the same splits.

## Contents
- `images/`: the photos under their original paths (`train/Fruit/Apple/Granny-Smith/...`, where
  the first folder is the official split), each rotated upright, centre-cropped to a square,
  resized to {size} px (Lanczos) and saved as JPEG quality {quality}.
- `manifest.csv`: one row per photo: `split` (the course split), `official_split`, `path`,
  `super`, `super_name`, `coarse`, `coarse_name`, `fine`, `fine_name` (integer label and name at
  each level; fine and coarse ids are those of the original `classes.csv`, super ids follow
  Fruit, Packages, Vegetables) and `sha256` of the file. `load_products(verify=True)` checks it.
- `LICENSE` (the dataset's MIT licence), `CITATION.bib`.

## Splits
| split | photos | from |
|---|---|---|
| train | {train} | official train minus the hold-out |
| val | {val} | official val ({official_val}) + hold-out from official train ({held_out}) |
| test | {test} | official test, unchanged |

The official validation split has only {official_val} photos and covers {val_fine_official} of the {fine_count}
fine classes, too few for a steady validation curve (at 90 % accuracy a validation accuracy
on {official_val} photos has a standard error of {se_official:.1f} points). The course adds a stratified hold-out:
for each fine class, the last {fraction:.0%} of its official train photos in file order (rounded)
join validation. A block at the end rather than a random pick, because consecutive photos come
from the same shelf and would leak into each other. Validation then has {val} photos covering
all {fine_count} classes (standard error {se_val:.1f} points at 90 %) and is evaluated without
augmentation. The official test split is the test set.

## Rebuilding
```
python scripts/build_dataset.py --src PATH/grocery-store            # this copy, same bytes
python scripts/build_dataset.py --src PATH/grocery-store --size 224 --out DIR   # larger, for a GPU
```
`PATH/grocery-store` is a clone of the original repository (it holds `dataset/train.txt`).
The same source and the same Pillow version give byte-identical files.

## Citation
Marcus Klasson, Cheng Zhang, Hedvig Kjellström. A Hierarchical Grocery Store Image Dataset with
Visual and Semantic Labels. IEEE Winter Conference on Applications of Computer Vision (WACV),
2019. https://arxiv.org/abs/1901.00711
"""


def write_readme(out: Path, rows: list[dict], size: int, quality: int) -> None:
    count = lambda **kw: sum(all(r[k] == v for k, v in kw.items()) for r in rows)  # noqa: E731
    (out / "README.md").write_text(
        README.format(
            size=size,
            quality=quality,
            total=len(rows),
            fraction=HOLDOUT_FRACTION,
            train=count(split="train"),
            val=count(split="val"),
            test=count(split="test"),
            official_val=count(official_split="val"),
            held_out=count(split="val", official_split="train"),
            val_fine_official=len({r["fine"] for r in rows if r["official_split"] == "val"}),
            coarse_count=len({r["coarse"] for r in rows}),
            fine_count=len({r["fine"] for r in rows}),
            se_official=100 * (0.09 / count(official_split="val")) ** 0.5,
            se_val=100 * (0.09 / count(split="val")) ** 0.5,
        )
    )


def shrink(path: Path, size: int, quality: int) -> bytes:
    """The photo upright, centre-cropped to a square and resized to ``size``, as JPEG bytes."""
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
        image = ImageOps.fit(image, (size, size), method=Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality, optimize=True, subsampling="4:2:0")
    return out.getvalue()


def prepare_out(out: Path) -> None:
    """Empty the images of a previous build; refuse to touch any other non-empty folder."""
    if out.exists() and any(out.iterdir()) and not (out / "manifest.csv").exists():
        sys.exit(f"{out} is not empty and holds no manifest.csv from a previous build; choose another --out.")
    shutil.rmtree(out / "images", ignore_errors=True)
    out.mkdir(parents=True, exist_ok=True)


def build(src: Path, out: Path, size: int, quality: int) -> list[dict]:
    records = read_official_lists(src)
    splits = grocery_splits(records)
    prepare_out(out)
    rows = []
    for record, split in tqdm(list(zip(records, splits, strict=True)), desc=f"{size} px", unit="img"):
        data = shrink(src / "dataset" / record["path"], size, quality)
        target = out / "images" / record["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        rows.append(
            {**record, "split": split, "path": f"images/{record['path']}", "sha256": hashlib.sha256(data).hexdigest()}
        )
    with open(out / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=MANIFEST_FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    shutil.copyfile(src / "LICENSE", out / "LICENSE")
    (out / "CITATION.bib").write_text(CITATION)
    write_readme(out, rows, size, quality)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--src",
        type=Path,
        default=PROJECT_ROOT.parent / "shared" / "datasets" / "grocery-store",
        help="the original dataset (the folder holding dataset/train.txt)",
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "data" / "grocery-store")
    parser.add_argument("--size", type=int, default=96, help="side of the square images in pixels")
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality")
    args = parser.parse_args(argv)
    if not (args.src / "dataset" / "train.txt").exists():
        sys.exit(f"{args.src} does not hold dataset/train.txt; pass the original Grocery Store Dataset with --src.")
    rows = build(args.src, args.out, args.size, args.quality)
    counts = {s: sum(r["split"] == s for r in rows) for s in ("train", "val", "test")}
    print(f"wrote {len(rows)} images to {args.out}: {counts}")


if __name__ == "__main__":
    main()
