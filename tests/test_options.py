"""One declaration per option: the parser, the parsed config and the recorded command agree."""

from __future__ import annotations

import argparse
from dataclasses import asdict, dataclass

import pytest

from course_lib import CourseError
from course_lib.experiment import ExperimentConfig
from course_lib.options import add_arguments, from_args, option, per_key, to_argv, whole_number
from course_lib.pretrain import PretrainConfig


@dataclass
class Example:
    name: str = option(help="a required word", required=True)
    size: int = option(32, "pixels")
    rate: float = option(0.5, "a fraction")
    seeds: list[int] = option([0], "one or more", many=True, parse=whole_number("--seeds"))
    steps: dict[str, int] = option(
        {"a": 1, "b": 2},
        "per key",
        parse=per_key("--steps", ("a", "b"), int, {"a": 1, "b": 2}),
        show=lambda d: ",".join(f"{k}={v}" for k, v in d.items()),
    )
    colour: str = option("red", "a choice", choices=("red", "blue"))
    quiet: bool = option(False, "a switch that is off by default")
    augment: bool = option(True, "a switch that is on by default")
    limit: int | None = option(None, "optional", parse=int)


def parse(config_class: type, argv: list[str]):
    parser = argparse.ArgumentParser()
    add_arguments(parser, config_class)
    return from_args(config_class, parser.parse_args(argv))


def test_defaults_come_from_the_dataclass():
    assert parse(Example, ["--name", "x"]) == Example(name="x")


def test_every_kind_of_option_parses():
    config = parse(
        Example,
        [
            "--name",
            "x",
            "--size",
            "64",
            "--rate",
            "0.25",
            "--seeds",
            "1,2",
            "3",
            "--steps",
            "b=5",
            "--colour",
            "blue",
            "--quiet",
            "--no-augment",
            "--limit",
            "7",
        ],
    )
    assert config == Example("x", 64, 0.25, [1, 2, 3], {"a": 1, "b": 5}, "blue", True, False, 7)


def test_the_recorded_command_repeats_the_config():
    config = Example("x", 64, 0.25, [1, 2], {"a": 3, "b": 2}, "blue", True, False, 7)
    argv = to_argv(config)
    assert argv[:2] == ["--name", "x"] and "--no-augment" in argv and "--quiet" in argv
    assert parse(Example, argv) == config
    assert to_argv(Example(name="x")) == ["--name", "x"]  # defaults are left out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--size", "big"], "--size takes a whole number, not 'big'."),
        (["--rate", "half"], "--rate takes a number, not 'half'."),
        (["--seeds", "one"], "--seeds takes whole numbers, not 'one'."),
        (["--steps", "c=1"], "--steps: unknown regime 'c'"),
        (["--steps", "a=0"], "--steps values must be positive"),
    ],
)
def test_bad_values_are_course_errors_that_name_the_option(argv, message):
    with pytest.raises(CourseError) as error:
        parse(Example, ["--name", "x", *argv])
    assert message in str(error.value)


def test_help_shows_each_default_once():
    parser = argparse.ArgumentParser()
    add_arguments(parser, Example)
    text = " ".join(parser.format_help().split())
    assert "pixels (default: 32)" in text and "per key (default: a=1,b=2)" in text
    assert "--no-augment" in text and "--quiet" in text


@pytest.mark.parametrize(
    "config",
    [
        ExperimentConfig(
            regimes=["finetune", "fresh"],
            seeds=[0, 3],
            epochs={"fresh": 2, "finetune": 3, "feature_extraction": 4},
            image_size=64,
            augment=False,
            limit=20,
            target=0.8,
        ),
        PretrainConfig(
            data="cifar.zip",
            epochs=3,
            image_size=64,
            lr=0.2,
            augmentation="none",
            label_smoothing=0.2,
            compile=True,
            threads=2,
        ),
    ],
)
def test_commands_round_trip_through_their_command_line(config):
    assert asdict(parse(type(config), to_argv(config))) == asdict(config)
