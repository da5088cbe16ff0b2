"""`python -m course_lib probe`: a linear head on each stage's features, and its results folder."""

from __future__ import annotations

import csv
import json

import pytest

from course_lib.__main__ import main
from course_lib.errors import CourseError
from course_lib.head import WEIGHT_DECAYS
from course_lib.probe import read_probes


def test_probe_writes_one_row_per_stage_in_order(photos, pretrained_checkpoint, tmp_path, capsys):
    out = tmp_path / "probes"
    argv = [
        "probe",
        "--data",
        str(photos),
        "--weights",
        str(pretrained_checkpoint),
        "--image-size",
        "32",
        "--stages",
        "layer4",
        "layer2",
        "--epochs",
        "2",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    rows = list(csv.DictReader(open(out / "probes.csv")))
    assert [(row["stage"], row["features"]) for row in rows] == [("layer2", "128"), ("layer4", "512")]
    for row in rows:
        assert 0 <= float(row["test_accuracy"]) <= 1 and float(row["weight_decay"]) in WEIGHT_DECAYS
        assert float(row["seconds"]) > 0
    assert (out / "where_to_cut.png").read_bytes()[:4] == b"\x89PNG"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["options"]["stages"] == ["layer2", "layer4"] and 0 < settings["majority_class_accuracy"] <= 1
    assert "--stages layer2 layer4" in settings["command"]
    summary = (out / "summary.md").read_text()
    assert "| layer2 | 128 |" in summary and "Always answering the largest class" in summary
    assert "layer4: 512 features, test accuracy" in capsys.readouterr().out
    probes, record = read_probes(out)
    assert [(p.stage, p.features, p.weight_decay) for p in probes] == [
        (row["stage"], int(row["features"]), float(row["weight_decay"])) for row in rows
    ]
    assert record == settings


def test_reading_missing_probes_says_which_command_makes_them(tmp_path):
    with pytest.raises(CourseError, match="run `python -m course_lib probe` first"):
        read_probes(tmp_path)


def test_unknown_stage_is_a_short_message(tmp_path, capsys):
    assert main(["probe", "--stages", "layer9", "--out", str(tmp_path)]) == 2
    assert "Unknown stage layer9; choose from layer1, layer2, layer3, layer4." in capsys.readouterr().err
