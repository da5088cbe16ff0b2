"""The CPU benchmarks run from a clone and print complete tables.

Each runs at a toy size (a few photos, one step); the tests check the tables' shape and that
every number is a measurement (non-negative, ratios consistent), never the timings themselves (the numbers depend on
the machine and its load; bench/README.md holds real runs).
"""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from course_lib import PROJECT_ROOT, REGIMES

BENCH = PROJECT_ROOT / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def table_rows(text: str) -> list[list[str]]:
    """The body rows of the Markdown table(s) in ``text``, as lists of cells."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("|")
    ]
    return [row for row in rows if not all(set(cell) <= set("-: ") for cell in row)][1:]


def number(cell: str, minimum: float = 0.0) -> float:
    """A measured number of a table cell (seconds print as 0.0 at toy sizes; ratios never do)."""
    value = float(cell.rstrip("x"))
    assert value >= minimum and value == value, cell
    return value


def test_resnet_throughput(tmp_path, capsys):
    out = tmp_path / "throughput.json"
    assert (
        load("resnet_throughput").main(
            [
                "--image-size",
                "32",
                "--batch-size",
                "4",
                "--steps",
                "1",
                "--repeats",
                "2",
                "--warmup",
                "0",
                "--variants",
                "fp32",
                "channels_last",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    rows = [row for row in table_rows(capsys.readouterr().out) if row[0] != "variant"]
    assert [(row[0], row[1]) for row in rows] == [
        ("fp32", "train"),
        ("fp32", "inference"),
        ("channels_last", "train"),
        ("channels_last", "inference"),
    ]
    measured = json.loads(out.read_text())["rows"]
    assert len(measured) == 4
    for row, values in zip(rows, measured, strict=True):
        # The ratio is checked before rounding; the table shows the same values rounded.
        assert values["ratio"] == pytest.approx(values["ours"] / values["torchvision"], rel=1e-9)
        ours, theirs, ratio = (number(cell) for cell in row[2:])
        assert ours == pytest.approx(values["ours"], abs=0.05) and theirs == pytest.approx(
            values["torchvision"], abs=0.05
        )
        assert ratio == pytest.approx(values["ratio"], abs=0.0005) and ratio > 0


def test_trainer_vs_tutorial(capsys):
    assert (
        load("trainer_vs_tutorial").main(["--limit", "12", "--epochs", "1", "--batch-size", "6", "--workers", "0"]) == 0
    )
    text = capsys.readouterr().out
    assert re.search(r"decoding the photos once into uint8 tensors took [\d.]+ s", text)
    rows = table_rows(text)
    assert [row[0] for row in rows] == list(REGIMES)
    for _, tutorial, trainer, speedup in rows:
        assert number(tutorial) >= 0 and number(trainer) >= 0 and number(speedup, minimum=0.05) > 0


def test_feature_cache(capsys):
    assert load("feature_cache").main(["--limit", "12", "--epochs", "2", "--batch-size", "6"]) == 0
    text = capsys.readouterr().out
    rows = table_rows(text)
    assert [row[0] for row in rows] == ["plain (backbone every epoch)", "cached features"]
    for _, wall, per_epoch, accuracy in rows:
        # per-epoch is wall / 2 epochs; wall is printed to 0.05 s and per-epoch to 0.005 s.
        assert number(per_epoch) == pytest.approx(number(wall) / 2, abs=0.025 + 0.005)
        assert 0 <= float(accuracy) <= 1
    assert float(re.search(r"speed-up: ([\d.]+)x over 2 epochs", text)[1]) > 0


def test_time_to_target_reads_the_committed_experiment(capsys):
    assert load("time_to_target").main([]) == 0
    rows = table_rows(capsys.readouterr().out)
    settings = json.loads((PROJECT_ROOT / "results" / "experiment" / "settings.json").read_text())
    assert len(rows) == len(settings["options"]["regimes"]) * len(settings["options"]["seeds"])
    assert {row[0] for row in rows} == set(settings["options"]["regimes"])
