"""course_lib.data: the embedded copy, folders of photos, bad input, batches and augmentation."""

import csv
import importlib.util
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from course_lib import PROJECT_ROOT, CourseError
from course_lib.data import (
    EMBEDDED_ROOT,
    MEAN,
    STD,
    DataError,
    Split,
    batches,
    grocery_splits,
    load_products,
    normalize,
    random_crop_flip,
    random_resized_crop,
    read_manifest,
    verify_manifest,
)

SIZE = 32


def save_photo(path: Path, colour=(200, 40, 40), mode="RGB", size=(40, 30), format=None, **kwargs):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, colour).save(path, format=format, **kwargs)
    return path


def photo_folder(root: Path, classes=("bag", "pen", "phone"), per_class=10) -> Path:
    for c, name in enumerate(classes):
        for i in range(per_class):
            save_photo(root / name / f"{name}_{i:02d}.jpg", colour=(40 * c, 10 * i, 100))
    return root


def manifest_subset(tmp_path: Path, per_fine_and_split: int = 1) -> Path:
    """A copy of the embedded dataset with a few photos of every fine class in every split."""
    rows = read_manifest(EMBEDDED_ROOT)
    taken, kept = Counter(), []
    for row in rows:
        key = (row["split"], row["fine"])
        if taken[key] < per_fine_and_split:
            taken[key] += 1
            kept.append(row)
    root = tmp_path / "subset"
    for row in kept:
        (root / row["path"]).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(EMBEDDED_ROOT / row["path"], root / row["path"])
    with open(root / "manifest.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(kept)
    return root


# --- the embedded copy ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def embedded():
    return load_products(image_size=SIZE)


def test_embedded_super_task_matches_manifest(embedded):
    rows = read_manifest(EMBEDDED_ROOT)
    assert embedded.classes == ["Fruit", "Packages", "Vegetables"]
    assert embedded.task == "super" and embedded.image_size == SIZE
    for name, split in embedded.splits().items():
        expected = [r for r in rows if r["split"] == name]
        assert len(split) == len(expected) > 0
        assert split.paths == [r["path"] for r in expected]
        assert split.labels.tolist() == [int(r["super"]) for r in expected]
        assert split.images.dtype == torch.uint8 and split.images.shape == (len(expected), 3, SIZE, SIZE)
        assert split.labels.dtype == torch.int64
        assert set(split.labels.tolist()) == {0, 1, 2}
    assert embedded.skipped_files == [] and embedded.ignored_files == []


def test_embedded_images_are_photos_not_blank(embedded):
    images = embedded.test.images.float()
    assert 40 < images.mean() < 215
    assert images.std(dim=(1, 2, 3)).min() > 5  # no flat, empty images


def test_embedded_validation_is_official_val_plus_train_hold_out():
    rows = read_manifest(EMBEDDED_ROOT)
    official = [r["official_split"] for r in rows]
    assert sum(s == "val" for s in official) == 296
    records = [{**r, "fine": int(r["fine"]), "path": r["path"].removeprefix("images/")} for r in rows]
    assert grocery_splits(records) == [r["split"] for r in rows]
    val = [r for r in rows if r["split"] == "val"]
    assert {r["official_split"] for r in val} == {"val", "train"}
    assert {r["fine"] for r in val} == {r["fine"] for r in rows}  # every fine class is validated
    assert all(r["official_split"] == "test" for r in rows if r["split"] == "test")
    # the hold-out is the last block of each fine class's official train photos
    train_by_fine = {}
    for r in sorted(rows, key=lambda r: r["path"]):
        if r["official_split"] == "train":
            train_by_fine.setdefault(r["fine"], []).append(r["split"])
    for splits in train_by_fine.values():
        held = splits.count("val")
        assert splits == ["train"] * (len(splits) - held) + ["val"] * held
        assert 0.1 < held / len(splits) < 0.2


def test_embedded_copy_matches_its_manifest_and_size_budget():
    verify_manifest(EMBEDDED_ROOT)
    total = sum(p.stat().st_size for p in EMBEDDED_ROOT.rglob("*") if p.is_file())
    assert total < 30e6
    for name in ("LICENSE", "CITATION.bib", "README.md"):
        assert (EMBEDDED_ROOT / name).is_file()
    assert "MIT" in (EMBEDDED_ROOT / "LICENSE").read_text()
    assert "Klasson" in (EMBEDDED_ROOT / "CITATION.bib").read_text()


@pytest.mark.parametrize("task, classes", [("coarse", 43), ("fine", 81)])
def test_coarse_and_fine_tasks(tmp_path, task, classes):
    root = manifest_subset(tmp_path)
    data = load_products(root, task=task, image_size=16)
    rows = read_manifest(root)
    assert data.num_classes == classes
    assert len({r[f"{task}_name"] for r in rows}) == classes
    for name, split in data.splits().items():
        expected = [r for r in rows if r["split"] == name]
        assert split.labels.tolist() == [int(r[task]) for r in expected]
        assert 0 <= split.labels.min() and split.labels.max() < classes
        assert [data.classes[i] for i in split.labels.tolist()] == [r[f"{task}_name"] for r in expected]


def test_verify_catches_a_modified_file(tmp_path):
    root = manifest_subset(tmp_path)
    load_products(root, image_size=16, verify=True)
    victim = root / read_manifest(root)[5]["path"]
    save_photo(victim, colour=(1, 2, 3), size=(96, 96))
    load_products(root, image_size=16)  # still a readable photo
    with pytest.raises(DataError, match=victim.name):
        load_products(root, image_size=16, verify=True)
    victim.unlink()
    with pytest.raises(DataError, match="missing"):
        load_products(root, image_size=16)


def test_unknown_task_and_bad_size():
    with pytest.raises(DataError, match="task"):
        load_products(task="brand")
    with pytest.raises(DataError, match="image_size"):
        load_products(image_size=2)


# --- the full-size layout and the builder ---------------------------------------------------------


def fake_original(root: Path) -> Path:
    """A tiny dataset in the original layout: dataset/{train,val,test}.txt and classes.csv."""
    classes = [
        ("Granny-Smith", 0, "Apple", 0, "Fruit/Apple/Granny-Smith"),
        ("Pink-Lady", 1, "Apple", 0, "Fruit/Apple/Pink-Lady"),
        ("Oatly-Oat-Milk", 2, "Oat-Milk", 1, "Packages/Oat-Milk/Oatly-Oat-Milk"),
        ("Carrots", 3, "Carrots", 2, "Vegetables/Carrots"),
    ]
    dataset = root / "dataset"
    dataset.mkdir(parents=True)
    with open(dataset / "classes.csv", "w") as f:
        f.write("Class Name (str),Class ID (int),Coarse Class Name (str),Coarse Class ID (int),Iconic,Description\n")
        for fine_name, fine, coarse_name, coarse, _ in classes:
            f.write(f"{fine_name},{fine},{coarse_name},{coarse},/x.jpg,/x.txt\n")
    for split, count in (("train", 7), ("val", 1), ("test", 2)):
        lines = []
        for fine_name, fine, _, coarse, folder in classes:
            for i in range(count):
                path = f"{split}/{folder}/{fine_name}_{i + 1:03d}.jpg"
                save_photo(dataset / path, colour=(60 * fine, 20 * i, 90), size=(120, 160))
                lines.append(f"{path}, {fine}, {coarse}")
        (dataset / f"{split}.txt").write_text("\n".join(lines) + "\n")
    (root / "LICENSE").write_text("MIT License\n")
    return root


def load_builder():
    spec = importlib.util.spec_from_file_location("build_dataset", PROJECT_ROOT / "scripts" / "build_dataset.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_builder_is_deterministic_and_matches_the_full_size_loader(tmp_path):
    src = fake_original(tmp_path / "original")
    builder = load_builder()
    builder.main(["--src", str(src), "--out", str(tmp_path / "a"), "--size", "24"])
    builder.main(["--src", str(src), "--out", str(tmp_path / "b"), "--size", "24"])
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b
    assert all((tmp_path / "a" / p).read_bytes() == (tmp_path / "b" / p).read_bytes() for p in files_a)

    copy = load_products(tmp_path / "a", task="fine", image_size=24, verify=True)
    full = load_products(src, task="fine", image_size=24)
    for name in ("train", "val", "test"):
        assert [p.removeprefix("images/") for p in getattr(copy, name).paths] == getattr(full, name).paths
        assert torch.equal(getattr(copy, name).labels, getattr(full, name).labels)
    assert len(full.val) == 4 * (1 + 1)  # one official val photo + the last of 7 train photos (15 %), per class
    assert all(p.endswith("_007.jpg") for p in full.val.paths if p.startswith("train/"))
    coarse = load_products(src, task="coarse", image_size=24)
    assert coarse.classes == ["Apple", "Oat-Milk", "Carrots"]
    super_ = load_products(src, image_size=24)
    assert super_.classes == ["Fruit", "Packages", "Vegetables"]
    assert super_.train.labels.tolist() == [0] * 12 + [1] * 6 + [2] * 6
    with pytest.raises(DataError, match="manifest"):
        load_products(src, verify=True)
    with pytest.raises(SystemExit, match="not empty"):  # never overwrites a folder it did not build
        builder.main(["--src", str(src), "--out", str(src), "--size", "24"])


# --- folders of one's own photos -----------------------------------------------------------------


def test_folder_without_splits_is_split_stratified_and_deterministically(tmp_path):
    root = photo_folder(tmp_path / "photos", per_class=10)
    (root / "notes.txt").write_text("not a photo")
    (root / "pen" / "receipt.pdf").write_bytes(b"%PDF-1.4")
    data = load_products(root, image_size=SIZE)
    assert data.classes == ["bag", "pen", "phone"]
    assert [len(s) for s in data.splits().values()] == [18, 6, 6]
    for split in data.splits().values():
        assert Counter(split.labels.tolist()) == Counter({0: len(split) // 3, 1: len(split) // 3, 2: len(split) // 3})
    all_paths = data.train.paths + data.val.paths + data.test.paths
    assert len(set(all_paths)) == 30
    assert sorted(data.ignored_files) == ["notes.txt", "pen/receipt.pdf"]
    again = load_products(root, image_size=SIZE)
    assert again.val.paths == data.val.paths and torch.equal(again.train.images, data.train.images)
    other_seed = load_products(root, image_size=SIZE, seed=1)
    assert other_seed.val.paths != data.val.paths


def test_folder_with_split_subfolders(tmp_path):
    root = tmp_path / "photos"
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        photo_folder(root / split, classes=("bag", "pen"), per_class=count)
    data = load_products(root, image_size=SIZE)
    assert [len(s) for s in data.splits().values()] == [8, 4, 6]
    assert all(p.startswith("val/") for p in data.val.paths)
    assert data.val.labels.tolist() == [0, 0, 1, 1]


def test_folder_with_train_and_test_only_holds_out_val(tmp_path):
    root = tmp_path / "photos"
    photo_folder(root / "train", classes=("bag", "pen"), per_class=10)
    photo_folder(root / "test", classes=("bag", "pen"), per_class=3)
    data = load_products(root, image_size=SIZE)
    assert len(data.val) == 4 and len(data.train) == 16 and len(data.test) == 6
    assert all(p.startswith("train/") for p in data.val.paths)


def test_grayscale_cmyk_and_transparent_photos_become_rgb(tmp_path):
    root = photo_folder(tmp_path / "photos", classes=("bag", "pen"), per_class=3)
    save_photo(root / "bag" / "gray.jpg", colour=120, mode="L")
    save_photo(root / "bag" / "cmyk.jpg", colour=(0, 0, 0, 0), mode="CMYK")
    save_photo(root / "pen" / "clear.png", colour=(255, 0, 0, 0), mode="RGBA")
    save_photo(root / "pen" / "half.png", colour=(0, 0, 255, 255), mode="RGBA")
    palette = Image.new("P", (30, 30), 0)
    palette.putpalette([0, 255, 0] + [0, 0, 0] * 255)
    palette.save(root / "pen" / "palette.gif", transparency=0)
    data = load_products(root, image_size=SIZE, val_fraction=0.2, test_fraction=0.2)
    assert sorted(data.converted_files) == [
        "bag/cmyk.jpg",
        "bag/gray.jpg",
        "pen/clear.png",
        "pen/half.png",
        "pen/palette.gif",
    ]
    pixels = {}
    for split in data.splits().values():
        for path, image in zip(split.paths, split.images, strict=True):
            pixels[path] = image[:, SIZE // 2, SIZE // 2].tolist()
    assert pixels["bag/gray.jpg"][0] == pixels["bag/gray.jpg"][1] == pixels["bag/gray.jpg"][2]
    assert abs(pixels["bag/gray.jpg"][0] - 120) <= 2
    assert min(pixels["bag/cmyk.jpg"]) >= 250  # no ink is white
    assert pixels["pen/clear.png"] == [255, 255, 255]  # transparent becomes white
    assert pixels["pen/half.png"] == [0, 0, 255]
    assert pixels["pen/palette.gif"] == [255, 255, 255]


def test_photos_are_turned_upright_and_centre_cropped(tmp_path):
    root = photo_folder(tmp_path / "photos", classes=("bag", "pen"), per_class=3)
    image = Image.new("RGB", (60, 40), (255, 0, 0))
    image.paste((0, 0, 255), (30, 0, 60, 40))  # left red, right blue
    exif = Image.Exif()
    exif[0x0112] = 3  # rotated 180 degrees
    image.save(root / "bag" / "rotated.jpg", exif=exif.tobytes(), quality=95)
    data = load_products(root, image_size=SIZE, val_fraction=0.2, test_fraction=0.2)
    split = next(s for s in data.splits().values() if "bag/rotated.jpg" in s.paths)
    photo = split.images[split.paths.index("bag/rotated.jpg")].int()
    left, right = photo[:, :, : SIZE // 4].float().mean(dim=(1, 2)), photo[:, :, -SIZE // 4 :].float().mean(dim=(1, 2))
    assert left[2] > 200 and left[0] < 50  # blue on the left after turning upright
    assert right[0] > 200 and right[2] < 50


def test_corrupt_photo_is_named_or_skipped(tmp_path):
    root = photo_folder(tmp_path / "photos", per_class=4)
    (root / "pen" / "broken.jpg").write_bytes(b"this is not a jpeg")
    good = (root / "bag" / "bag_00.jpg").read_bytes()
    (root / "bag" / "cut.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(DataError, match=r"broken\.jpg|cut\.jpg") as error:
        load_products(root, image_size=SIZE)
    assert "skip_corrupt=True" in str(error.value)
    assert isinstance(error.value, CourseError)
    data = load_products(root, image_size=SIZE, skip_corrupt=True)
    assert sorted(data.skipped_files) == ["bag/cut.jpg", "pen/broken.jpg"]
    assert sum(len(s) for s in data.splits().values()) == 12


def test_empty_class_folder(tmp_path):
    root = photo_folder(tmp_path / "photos")
    (root / "mug").mkdir()
    (root / "mug" / "readme.txt").write_text("photos to come")
    with pytest.raises(DataError, match="mug"):
        load_products(root)


def test_missing_root(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_products(tmp_path / "nowhere")


def test_different_classes_in_different_splits(tmp_path):
    root = tmp_path / "photos"
    photo_folder(root / "train", classes=("bag", "pen"), per_class=3)
    photo_folder(root / "test", classes=("bag", "phone"), per_class=2)
    with pytest.raises(DataError, match="different classes") as error:
        load_products(root)
    assert "pen" in str(error.value) and "phone" in str(error.value)


def test_folder_input_mistakes(tmp_path):
    root = photo_folder(tmp_path / "photos", per_class=2)
    with pytest.raises(DataError, match="at least 3 photos"):
        load_products(root)
    root = photo_folder(tmp_path / "more", per_class=5)
    with pytest.raises(DataError, match="task"):
        load_products(root, task="fine")
    photo_folder(root / "train", classes=("bag",), per_class=3)
    with pytest.raises(DataError, match="mixes split folders"):
        load_products(root)
    only_test = tmp_path / "only_test"
    photo_folder(only_test / "test", per_class=3)
    with pytest.raises(DataError, match="no train/ folder"):
        load_products(only_test)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no class folders"):
        load_products(empty)


# --- batches, augmentation and normalisation ---------------------------------------------------------


def toy_split(n=10, size=16) -> Split:
    images = torch.randint(0, 256, (n, 3, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    return Split(images, torch.arange(n), [f"{i}.jpg" for i in range(n)])


def test_normalisation_uses_imagenet_statistics():
    images = torch.full((2, 3, 4, 4), 128, dtype=torch.uint8)
    expected = (128 / 255 - torch.tensor(MEAN)) / torch.tensor(STD)
    out = normalize(images)
    assert out.dtype == torch.float32
    assert torch.allclose(out[0, :, 0, 0], expected, atol=1e-6)
    assert torch.allclose(normalize(images.float() / 255), out, atol=1e-6)


def test_plain_batches_cover_the_split_in_order():
    split = toy_split()
    got = list(batches(split, 4))
    assert [len(y) for _, y in got] == [4, 4, 2]
    assert torch.equal(torch.cat([y for _, y in got]), split.labels)
    assert torch.allclose(torch.cat([x for x, _ in got]), normalize(split.images), atol=1e-6)
    assert [len(y) for _, y in batches(split, 4, drop_last=True)] == [4, 4]
    resized = next(batches(split, 4, size=8))[0]
    assert resized.shape == (4, 3, 8, 8)


def test_batches_are_reproducible_with_a_seeded_generator():
    split = toy_split()

    def epoch(seed):
        g = torch.Generator().manual_seed(seed)
        return list(batches(split, 4, shuffle=True, augment="resized_crop", generator=g))

    first, second, other = epoch(7), epoch(7), epoch(8)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))
    assert sorted(torch.cat([y for _, y in first]).tolist()) == list(range(10))  # a permutation
    assert not torch.equal(torch.cat([y for _, y in first]), torch.cat([y for _, y in other]))


def test_augmented_batches_keep_shape_and_range():
    split = toy_split(n=32, size=24)
    g = torch.Generator().manual_seed(0)
    for images, _ in batches(split, 16, shuffle=True, augment="resized_crop", generator=g):
        assert images.shape == (16, 3, 24, 24) and images.dtype == torch.float32
        pixels = images * torch.tensor(STD).view(1, 3, 1, 1) + torch.tensor(MEAN).view(1, 3, 1, 1)
        assert pixels.min() >= -1e-5 and pixels.max() <= 1 + 1e-5
    small = next(batches(split, 16, augment="resized_crop", generator=g, size=16))[0]
    assert small.shape == (16, 3, 16, 16)


def test_random_resized_crop_of_the_whole_image_is_identity_or_mirror():
    images = toy_split(n=64).images.float() / 255
    out = random_resized_crop(images, scale=(1.0, 1.0), ratio=(1.0, 1.0), generator=torch.Generator().manual_seed(0))
    same = (out - images).abs().amax(dim=(1, 2, 3)) < 1e-5
    mirrored = (out - images.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-5
    assert torch.all(same | mirrored)
    assert 10 < mirrored.sum() < 54  # about half are flipped
    crops = random_resized_crop(images, scale=(0.25, 0.5), flip=False, generator=torch.Generator().manual_seed(0))
    assert crops.shape == images.shape
    assert (crops - images).abs().amax(dim=(1, 2, 3)).min() > 1e-3  # every image was cropped


def test_split_and_data_move_between_devices(embedded):
    moved = embedded.to("cpu")
    assert moved.train.images.device.type == "cpu" and len(moved.train) == len(embedded.train)
    assert toy_split().to("cpu").labels.device.type == "cpu"


def test_random_crop_flip_is_a_shifted_window_of_the_mirrored_image():
    images = toy_split(n=24, size=16).images.float() / 255
    out = random_crop_flip(images, generator=torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    pad = 2  # an eighth of 16 px
    padded = torch.nn.functional.pad(images, (pad, pad, pad, pad), mode="reflect")
    windows = [(top, left) for top in range(2 * pad + 1) for left in range(2 * pad + 1)]
    found = []  # (window, flipped) of each output
    for image, result in zip(padded, out, strict=True):
        matches = [
            ((top, left), flip)
            for top, left in windows
            for flip in (False, True)
            if torch.equal(
                result,
                image[:, top : top + 16, left : left + 16].flip(-1)
                if flip
                else image[:, top : top + 16, left : left + 16],
            )
        ]
        assert matches, "an output that is no window of the padded image"
        found.append(matches[0])
    flipped = sum(flip for _, flip in found)
    shifted = sum(window != (pad, pad) for window, _ in found)
    assert 4 < flipped < 20  # about half
    assert shifted > 12  # most windows move


def test_crop_flip_batches_repeat_with_the_seed_and_can_resize():
    split = toy_split(n=10, size=16)

    def first_batch(seed: int, size: int | None = None) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return next(batches(split, 10, shuffle=True, augment="crop_flip", generator=generator, size=size))[0]

    assert torch.equal(first_batch(3), first_batch(3)) and not torch.equal(first_batch(3), first_batch(4))
    assert first_batch(3, size=32).shape == (10, 3, 32, 32)
    with pytest.raises(CourseError, match="Unknown augmentation 'zoom'"):
        next(batches(split, 4, augment="zoom"))
