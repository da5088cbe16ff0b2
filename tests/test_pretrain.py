"""Pretraining on a tiny CIFAR-like zip: the checkpoint, its metadata and log, and bad input."""

import csv
import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

import course_lib.pretrain
from course_lib import PROJECT_ROOT, CourseError
from course_lib.__main__ import main as course_main
from course_lib.models import ResNet18
from course_lib.pretrain import PretrainConfig, load_cifar10, pretrain
from course_lib.weights import load_checkpoint

CLASSES = ("cat", "dog", "ship")
TRAIN_PER_CLASS, TEST_PER_CLASS = 4, 2
EPOCHS = 2
BATCH = 6  # two steps per epoch: enough to exercise the loop, cheap on a shared CPU


def make_cifar_zip(path, size=32, prefix=""):
    """A zip laid out like cifar10-jpg.zip: [prefix/]train/<class>/*.jpg and test/<class>/*.jpg."""
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{prefix}README.md", "not an image")
        for split, count in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
            for label in CLASSES:
                for i in range(count):
                    buffer = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(buffer, "JPEG")
                    archive.writestr(f"{prefix}{split}/{label}/{i:04d}.jpg", buffer.getvalue())
    return path


def train(data, **options):
    """``pretrain`` on the CPU without progress bars."""
    return pretrain(PretrainConfig(data=str(data), **{"device": "cpu", "image_size": 32, **options}), progress=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrain")
    data = make_cifar_zip(root / "cifar.zip")
    out = root / "weights" / "tiny.pt"
    meta = train(data, epochs=EPOCHS, batch_size=BATCH, out=str(out), run_dir=str(root / "run"))
    return out, meta


def test_reads_zip_and_folder_alike(tmp_path):
    archive = make_cifar_zip(tmp_path / "cifar.zip", prefix="cifar10/")
    with zipfile.ZipFile(archive) as z:
        z.extractall(tmp_path / "extracted")
    from_zip = load_cifar10(archive, progress=False)
    from_folder = load_cifar10(tmp_path / "extracted", progress=False)
    assert from_zip.classes == list(CLASSES)
    assert from_zip.train.images.shape == (len(CLASSES) * TRAIN_PER_CLASS, 3, 32, 32)
    assert from_zip.train.images.dtype == torch.uint8
    assert from_zip.test.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert torch.equal(from_zip.train.images, from_folder.train.images)
    assert torch.equal(from_zip.test.labels, from_folder.test.labels)


def test_resizes_to_image_size(tmp_path):
    data = load_cifar10(make_cifar_zip(tmp_path / "cifar.zip"), image_size=48, progress=False)
    assert data.train.images.shape[-2:] == (48, 48)


def test_curve_subset_is_balanced(tmp_path):
    data = load_cifar10(make_cifar_zip(tmp_path / "cifar.zip"), progress=False)
    subset = data.train.subset(6)
    assert torch.bincount(subset.labels).tolist() == [2, 2, 2]


def test_checkpoint_metadata(trained):
    out, meta = trained
    checkpoint = load_checkpoint(out)
    assert checkpoint.meta["source"] == "cifar10"
    assert checkpoint.meta["classes"] == list(CLASSES)
    assert checkpoint.meta["epochs"] == EPOCHS
    assert checkpoint.meta["image_size"] == 32
    assert checkpoint.meta["seed"] == 0
    assert checkpoint.meta["complete"] is True
    assert 0.0 <= checkpoint.meta["test_accuracy"] <= 1.0
    assert checkpoint.meta["seconds"] > 0
    assert checkpoint.meta["hardware"]["torch"] == torch.__version__
    assert checkpoint.meta["hardware"]["device"] == "cpu" and "threads" in checkpoint.meta["hardware"]["name"]
    # The recipe that made it: the default augmentation, and every option of the command.
    assert checkpoint.meta["augmentation"] == "crop_flip" and "padded by an eighth" in checkpoint.meta["recipe"]
    assert checkpoint.meta["config"]["epochs"] == EPOCHS and checkpoint.meta["config"]["label_smoothing"] == 0.0
    assert "pretrain" in checkpoint.meta["command"]
    assert checkpoint.meta["date"] == meta["date"]


def test_checkpoint_is_fp16_and_loads_strictly(trained):
    out, _ = trained
    stored = torch.load(out, weights_only=True)["state_dict"]
    assert stored["conv1.weight"].dtype == torch.float16
    assert out.stat().st_size <= 25 * 2**20
    state_dict = load_checkpoint(out).state_dict
    ResNet18(num_classes=len(CLASSES)).load_state_dict(state_dict, strict=True)
    torchvision.models.resnet18(num_classes=len(CLASSES)).load_state_dict(state_dict, strict=True)


def test_training_log_next_to_checkpoint(trained):
    out, _ = trained
    with open(out.with_name("tiny-history.csv")) as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == [str(e + 1) for e in range(EPOCHS)]
    assert 0.0 <= float(rows[0]["test_subset_accuracy"]) <= 1.0
    text = out.with_name("tiny.log").read_text()
    assert "test accuracy" in text and "command:" in text


def test_missing_data_is_a_course_error(tmp_path):
    with pytest.raises(CourseError, match="No CIFAR-10 data at"):
        load_cifar10(tmp_path / "nowhere.zip")


def test_not_a_zip_is_a_course_error(tmp_path):
    bad = tmp_path / "cifar.zip"
    bad.write_text("hello")
    with pytest.raises(CourseError, match="not a zip"):
        load_cifar10(bad)


def test_zip_without_test_split_is_a_course_error(tmp_path):
    archive = tmp_path / "train-only.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("train/cat/0.jpg", b"")
    with pytest.raises(CourseError, match="no images under test/<class>/"):
        load_cifar10(archive)


def test_corrupt_image_names_the_file(tmp_path):
    archive = make_cifar_zip(tmp_path / "cifar.zip")
    with zipfile.ZipFile(archive, "a") as z:
        z.writestr("train/cat/broken.jpg", b"not a jpeg")
    with pytest.raises(CourseError, match="broken.jpg"):
        load_cifar10(archive, progress=False)


def test_command_line_reports_missing_data(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "course_lib",
            "pretrain",
            "--data",
            str(tmp_path / "nowhere.zip"),
            "--out",
            str(tmp_path / "w.pt"),
        ],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert "No CIFAR-10 data at" in result.stderr and "Traceback" not in result.stderr


def test_resume_without_run_folder_is_a_course_error(tmp_path):
    with pytest.raises(CourseError, match="Nothing to resume"):
        train(tmp_path / "cifar.zip", resume=True, out=str(tmp_path / "w.pt"), run_dir=str(tmp_path / "run"))


def test_interrupted_run_resumes_to_the_same_weights(trained, tmp_path, monkeypatch):
    out, _ = trained
    data = out.parent.parent / "cifar.zip"
    options = dict(epochs=EPOCHS, batch_size=BATCH, out=str(tmp_path / "tiny.pt"), run_dir=str(tmp_path / "run"))
    save = course_lib.pretrain.save_checkpoint

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt  # after epoch 1, once fit has saved its run checkpoint

    monkeypatch.setattr(course_lib.pretrain, "save_checkpoint", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(data, **options)
    monkeypatch.setattr(course_lib.pretrain, "save_checkpoint", save)
    meta = train(data, resume=True, **options)
    assert meta["epochs"] == EPOCHS
    resumed, uninterrupted = load_checkpoint(tmp_path / "tiny.pt"), load_checkpoint(out)
    assert resumed.meta["sha256"] == uninterrupted.meta["sha256"]
    assert "resuming after epoch 1" in (tmp_path / "tiny.log").read_text()


def test_python_m_course_lib_pretrain_reports_missing_data(tmp_path, capsys):
    assert course_main(["pretrain", "--data", str(tmp_path / "nowhere.zip"), "--out", str(tmp_path / "w.pt")]) == 2
    assert "No CIFAR-10 data at" in capsys.readouterr().err


def test_init_continues_from_a_checkpoint(trained, tmp_path):
    out, _ = trained
    data = out.parent.parent / "cifar.zip"
    meta = train(
        data,
        init=str(out),
        epochs=1,
        batch_size=BATCH,
        lr=0.01,
        out=str(tmp_path / "more.pt"),
        run_dir=str(tmp_path / "run"),
    )
    assert meta["epochs"] == EPOCHS + 1 and meta["epochs_this_stage"] == 1
    assert [stage["sha256"] for stage in meta["stages"]] == [load_checkpoint(out).meta["sha256"]]
    assert meta["seconds"] > meta["seconds_this_stage"]
    with open(tmp_path / "more-history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == [str(EPOCHS + 1)]
    assert float(rows[0]["cumulative_seconds"]) == pytest.approx(meta["seconds"], abs=0.1)


def test_init_with_other_classes_is_a_course_error(trained, tmp_path):
    out, _ = trained
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(out.parent.parent / "cifar.zip") as source, zipfile.ZipFile(other, "w") as target:
        for name in source.namelist():
            target.writestr(name.replace("/ship/", "/truck/"), source.read(name))
    with pytest.raises(CourseError, match="other classes"):
        train(other, init=str(out), epochs=1, out=str(tmp_path / "w.pt"), run_dir=str(tmp_path / "run"))


def test_the_recipe_reaches_fit():
    config = PretrainConfig(data="cifar.zip", label_smoothing=0.2, augmentation="resized_crop", compile=True)
    training = config.training()
    assert (training.label_smoothing, training.augment, training.compile) == (0.2, "resized_crop", True)
    assert (training.epochs, training.batch_size) == (config.epochs, config.batch_size)
