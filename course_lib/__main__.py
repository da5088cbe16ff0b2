"""``python -m course_lib pretrain | experiment``: the project's two long-running commands.

Errors a user can cause (a missing folder, a bad option value) print one short message and
exit with status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys

from course_lib import experiment, pretrain
from course_lib.errors import CourseError

COMMANDS = {
    "experiment": (experiment, "train fresh, finetune and feature_extraction on product photos and write a results folder"),
    "pretrain": (pretrain, "train ResNet-18 on another dataset (CIFAR-10) to make the starting weights"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib",
        description="Residual networks and transfer learning on product photos.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, summary) in COMMANDS.items():
        sub = commands.add_parser(name, help=summary, description=summary)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except CourseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
