"""Regenerate the student releases from solutions/ with nbgrader, in every language of the course.

English goes to exercises/<assignment>/, Spanish to exercises/es/<assignment>/ (its text from the
catalogs in locales/es/LC_MESSAGES/solutions/, see scripts/translations.py assignments).

python scripts/release_exercises.py            # all assignments, every language
python scripts/release_exercises.py 01-convolution
python scripts/release_exercises.py --check    # exit 1 when a release is out of date
"""

import argparse
import sys

from course_lib.errors import CourseError
from course_lib.grading.assignment import SOLUTIONS
from course_lib.grading.releases import release_assignments, release_folder, stale_releases
from course_lib.i18n import LANGUAGES


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignments", nargs="*", help="default: every folder of solutions/")
    parser.add_argument("--check", action="store_true", help="only report releases that are out of date")
    parser.add_argument("--language", choices=LANGUAGES, action="append", help="only this language (repeatable)")
    args = parser.parse_args(argv)
    names = args.assignments or sorted(p.name for p in SOLUTIONS.iterdir() if list(p.glob("*.ipynb")))
    failed = False
    for language in args.language or LANGUAGES:
        folder = release_folder(language)
        shown = folder.relative_to(SOLUTIONS.parent).as_posix()
        try:
            if args.check:
                stale = stale_releases(names, folder, language=language)
                for name, reason in stale.items():
                    print(f"{shown}/{name} is out of date: {reason}")
                failed = failed or bool(stale)
                continue
            for target in release_assignments(names, folder, language=language):
                print(f"released {shown}/{target.name}")
        except CourseError as error:  # e.g. a translation that is incomplete: the other languages still go out
            print(f"release_exercises ({language}): {error}", file=sys.stderr)
            failed = True
    if args.check and failed:
        print("Regenerate with: python scripts/release_exercises.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
