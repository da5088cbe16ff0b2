"""Time to 90 % validation accuracy per regime: the course's headline, from an experiment's results.

Reads the results folder that ``python -m course_lib experiment`` wrote (``settings.json``
and ``histories/<regime>-seed<N>.json``) and prints, per regime and seed, the training
seconds until validation accuracy first reached the target, the epochs that took, and the
best accuracy, with the hardware named. ``--run`` runs the experiment first (any further
arguments after ``--`` go to it).

    python bench/time_to_target.py                                   # read results/experiment
    python bench/time_to_target.py --run --out bench/results/experiment -- --device cpu
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from course_lib import PROJECT_ROOT, TARGET_ACCURACY
from course_lib.errors import CourseError
from course_lib.experiment import Results, read_results


def table(results: Results, target: float) -> list[str]:
    label = f"{target:.0%}"
    lines = [
        f"| regime | seed | epochs | best val acc | epochs to {label} | seconds to {label} |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for regime, histories in results.histories.items():
        for seed, history in zip(results.seeds, histories, strict=True):
            seconds = history.time_to(target)
            lines.append(
                f"| {regime} | {seed} | {len(history)} | {history.best_val_accuracy:.3f} | "
                f"{history.epochs_to(target) or 'not reached'} | "
                f"{'not reached' if seconds is None else f'{seconds:.1f}'} |"
            )
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--out",
        type=Path,
        default=PROJECT_ROOT / "results" / "experiment",
        help="the experiment's results folder (default: results/experiment)",
    )
    parser.add_argument("--target", type=float, default=None, help="default: the experiment's own target (0.90)")
    parser.add_argument("--run", action="store_true", help="run the experiment into --out first")
    parser.add_argument("experiment_args", nargs="*", help="after --: more arguments for the experiment")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.run:
        command = [sys.executable, "-m", "course_lib", "experiment", "--out", str(args.out), *args.experiment_args]
        print("running:", " ".join(command), flush=True)
        if subprocess.run(command).returncode != 0:
            print("error: the experiment failed; see its output above.", file=sys.stderr)
            return 1
    try:
        results = read_results(args.out)
    except CourseError as error:
        print(f"error: {error} Or add --run.", file=sys.stderr)
        return 2
    settings, options = results.settings, results.settings["options"]
    target = args.target or options.get("target", TARGET_ACCURACY)
    print(
        f"# Time to {target:.0%} validation accuracy on {settings.get('device_name') or settings.get('device')}, "
        f"torch {settings.get('torch')}, {options.get('image_size')} px, batch {options.get('batch_size')}, "
        f"{settings.get('date')}; command: `{settings.get('command')}`\n"
    )
    print("\n".join(table(results, target)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
