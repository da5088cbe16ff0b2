"""`python -m course_lib experiment` end to end on a few photos, its results folder, its errors."""

import json
import subprocess
import sys

import pytest
import torch
from conftest import PHOTO_CLASSES as CLASSES

from course_lib import PROJECT_ROOT, REGIMES
from course_lib.__main__ import main
from course_lib.data import spread_indices
from course_lib.errors import CourseError
from course_lib.experiment import ExperimentConfig, read_results
from course_lib.history import EpochRecord, History
from course_lib.plots import plot_time_to_target
from course_lib.train import CHECKPOINT_NAME


def experiment(photos, pretrained_checkpoint, out, *extra):
    weights = ["--weights", str(pretrained_checkpoint)] if pretrained_checkpoint else []
    return main(
        [
            "experiment",
            "--data",
            str(photos),
            *weights,
            "--image-size",
            "32",
            "--batch-size",
            "8",
            "--out",
            str(out),
            "--runs",
            str(out / "runs"),
            *extra,
        ]
    )


def test_each_regime_end_to_end(photos, pretrained_checkpoint, tmp_path, capsys):
    out = tmp_path / "results"
    assert experiment(photos, pretrained_checkpoint, out, "--epochs", "1") == 0

    for name in ("curves.png", "time_to_90.png", "predictions.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    for regime in REGIMES:
        history = History.from_json(out / "histories" / f"{regime}-seed0.json")
        assert len(history) == 1 and 0 <= history.records[0].val_accuracy <= 1
        assert History.from_csv(out / "histories" / f"{regime}-seed0.csv").records == history.records
        assert (out / "runs" / f"{regime}-seed0" / CHECKPOINT_NAME).is_file()

    summary = (out / "summary.md").read_text()
    for regime, trainable in (("fresh", "11,178,051"), ("finetune", "11,178,051"), ("feature_extraction", "1,539")):
        assert f"| {regime} | {trainable} | 1 |" in summary
    settings = json.loads((out / "settings.json").read_text())
    assert settings["options"]["regimes"] == list(REGIMES)
    assert settings["options"]["seeds"] == [0]
    assert settings["device"] == "cpu" and settings["torch"] == torch.__version__
    assert settings["classes"] == list(CLASSES)
    rows = (out / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "path,true,fresh,finetune,feature_extraction"
    assert len(rows) == 1 + settings["photos"]["test"]
    assert "feature_extraction (seed 0): 1 epochs" in capsys.readouterr().out


def test_corrupt_photo_stops_the_run_or_is_skipped_and_counted(photos, tmp_path, capsys):
    import shutil

    root = tmp_path / "photos"
    shutil.copytree(photos, root)
    (root / "pens" / "broken.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "results"
    assert experiment(root, None, out, "--regimes", "fresh", "--epochs", "1") == 2
    assert "broken.jpg" in capsys.readouterr().err
    assert experiment(root, None, out, "--regimes", "fresh", "--epochs", "1", "--skip-corrupt") == 0
    assert "skipped unreadable files: 1" in capsys.readouterr().out


def test_several_seeds_give_mean_and_std(photos, pretrained_checkpoint, tmp_path):
    out = tmp_path / "results"
    assert (
        experiment(
            photos,
            pretrained_checkpoint,
            out,
            "--regimes",
            "feature_extraction",
            "--seeds",
            "0",
            "1",
            "--epochs",
            "feature_extraction=2",
            "--target",
            "0.5",
        )
        == 0
    )
    summary = (out / "summary.md").read_text()
    assert "mean ± std over seeds 0, 1" in summary
    row = next(line for line in summary.splitlines() if line.startswith("| feature_extraction"))
    assert row.count("±") >= 3  # best val, test, seconds per epoch
    assert sorted(p.name for p in (out / "histories").iterdir()) == [
        "feature_extraction-seed0.csv",
        "feature_extraction-seed0.json",
        "feature_extraction-seed1.csv",
        "feature_extraction-seed1.json",
    ]
    assert (out / "time_to_50.png").is_file()
    rows = (out / "test_accuracy.csv").read_text().splitlines()
    assert rows[0] == "regime,seed,test_accuracy"
    assert [row.split(",")[:2] for row in rows[1:]] == [["feature_extraction", "0"], ["feature_extraction", "1"]]
    assert all(0 <= float(row.split(",")[2]) <= 1 for row in rows[1:])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--regimes", "fresh,transfer"], "Unknown regime transfer; choose from fresh, finetune, feature_extraction."),
        (["--data", "/no/such/folder"], "--data /no/such/folder: no such folder."),
        (["--epochs", "fresh=two"], "--epochs takes a number or REGIME=NUMBER pairs"),
        (["--epochs", "0"], "--epochs values must be positive"),
        (["--target", "90"], "--target is a fraction"),
        (["--seeds", "one"], "--seeds takes whole numbers"),
        (["--device", "tpu"], "Unknown device 'tpu'"),
    ],
)
def test_bad_options_are_short_messages(options, message, tmp_path, capsys):
    assert main(["experiment", "--out", str(tmp_path), *options]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_missing_weights_file_is_a_short_message(photos, tmp_path, capsys):
    assert experiment(photos, tmp_path / "missing.pt", tmp_path / "out", "--regimes", "finetune") == 2
    assert "No checkpoint at" in capsys.readouterr().err


def test_command_line_error_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "course_lib", "experiment", "--regimes", "bogus", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "error: Unknown regime bogus; choose from fresh, finetune, feature_extraction."


def record(epoch, val_accuracy, cumulative):
    return EpochRecord(epoch, 1.0, 0.5, 1.0, val_accuracy, 10.0, cumulative, 5.0, 1.0, 0.01)


def test_time_to_target_plot_shows_not_reached_as_the_whole_run():
    reached = History([record(1, 0.5, 10.0), record(2, 0.95, 20.0)])
    missed = History([record(1, 0.5, 30.0), record(2, 0.7, 60.0), record(3, 0.8, 90.0)])
    figure = plot_time_to_target({"finetune": [reached], "fresh": [missed]}, 0.9)
    axis = figure.axes[0]
    bars = [p for p in axis.patches if p.get_height() > 0 and p.get_y() > -1]
    widths = {round(p.get_y() + p.get_height() / 2): (p.get_width(), p.get_hatch()) for p in bars}
    assert widths[0] == (20.0, None)
    assert widths[1] == (90.0, "//")
    texts = [t.get_text() for t in axis.texts]
    assert "not reached in 90 s (best 80.0%)" in texts
    assert any(t.startswith("20 s") for t in texts)


def test_spread_indices_cover_every_class():
    labels = torch.tensor([2, 0, 0, 1, 1, 1, 2, 0, 2, 2])
    picks = spread_indices(labels, 6)
    assert len(picks) == 6 and len(set(picks)) == 6
    assert sorted(labels[picks].tolist()) == [0, 0, 1, 1, 2, 2]


def test_defaults_suit_the_device():
    cpu = ExperimentConfig().for_device(torch.device("cpu"))
    assert cpu.image_size == 64 and cpu.epochs == {"fresh": 8, "finetune": 8, "feature_extraction": 10}
    cuda = ExperimentConfig().for_device(torch.device("cuda"))
    assert cuda.image_size == 96 and cuda.epochs == {"fresh": 30, "finetune": 30, "feature_extraction": 10}
    mine = ExperimentConfig(image_size=48, epochs={"fresh": 2}).for_device(torch.device("cuda"))
    assert mine.image_size == 48 and mine.epochs == {"fresh": 2, "finetune": 30, "feature_extraction": 10}


def test_help_says_what_each_device_gets(capsys):
    with pytest.raises(SystemExit):
        main(["experiment", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "64 on a CPU, 96 on CUDA" in text
    assert (
        "on a CPU fresh=8,finetune=8,feature_extraction=10; on CUDA fresh=30,finetune=30,feature_extraction=10" in text
    )


def test_feature_extraction_can_read_an_earlier_stage(photos, pretrained_checkpoint, tmp_path):
    out = tmp_path / "results"
    assert (
        experiment(
            photos, pretrained_checkpoint, out, "--regimes", "feature_extraction", "--cut", "layer2", "--epochs", "2"
        )
        == 0
    )
    summary = (out / "summary.md").read_text()
    assert "| feature_extraction | 387 | 2 |" in summary  # 128 features x 3 classes + 3
    assert "The head reads the pooled output of layer2." in summary
    assert "L-BFGS" in summary
    assert json.loads((out / "settings.json").read_text())["options"]["cut"] == "layer2"


def test_reading_a_folder_without_results_names_the_command_that_makes_them(tmp_path):
    with pytest.raises(CourseError, match="settings.json missing.*run `python -m course_lib experiment` first"):
        read_results(tmp_path)
