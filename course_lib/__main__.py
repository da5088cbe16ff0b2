"""``python -m course_lib pretrain | experiment | probe``: the project's long-running commands.

Each command is a module with a config dataclass (its options, declared once) and a
``run(config)``; the parser is made from the config. Errors a user can cause (a missing
folder, a bad option value) print one short message and exit with status 2; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from course_lib import experiment, pretrain, probe
from course_lib.errors import CourseError
from course_lib.options import add_arguments, from_args

COMMANDS = {
    "experiment": (
        experiment.ExperimentConfig,
        experiment.run,
        "train fresh, finetune and feature_extraction on product photos and write a results folder",
    ),
    "pretrain": (
        pretrain.PretrainConfig,
        pretrain.run,
        "train ResNet-18 on another dataset (CIFAR-10) to make the starting weights",
    ),
    "probe": (
        probe.ProbeConfig,
        probe.run,
        "test a linear head on each stage's features of the starting weights: where to cut",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib", description="Residual networks and transfer learning on product photos."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (config_class, _, summary) in COMMANDS.items():
        add_arguments(commands.add_parser(name, help=summary, description=summary), config_class)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    config_class, run, _ = COMMANDS[args.command]
    try:
        return run(from_args(config_class, args))
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
