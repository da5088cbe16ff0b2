"""Regenerate the student releases exercises/<assignment>/ from solutions/ with nbgrader.

python scripts/release_exercises.py            # all assignments
python scripts/release_exercises.py 01-convolution
python scripts/release_exercises.py --check    # exit 1 when exercises/ is out of date
"""

import argparse
import sys

from course_lib.errors import CourseError
from course_lib.grading.assignment import SOLUTIONS
from course_lib.grading.releases import release_assignments, stale_releases

EXERCISES = SOLUTIONS.parent / "exercises"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every folder of solutions/")
    parser.add_argument("--check", action="store_true", help="only report releases that are out of date")
    args = parser.parse_args(argv)
    names = args.assignments or sorted(p.name for p in SOLUTIONS.iterdir() if list(p.glob("*.ipynb")))
    try:
        if args.check:
            stale = stale_releases(names, EXERCISES)
            for name, reason in stale.items():
                print(f"exercises/{name} is out of date: {reason}")
            if stale:
                print("Regenerate with: python scripts/release_exercises.py")
            return 1 if stale else 0
        for target in release_assignments(names, EXERCISES):
            print(f"released exercises/{target.name}")
    except CourseError as error:
        print(f"release_exercises: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
