"""``python -m course_lib.grading ASSIGNMENT SUBMISSIONS --out DIR``: the grading command."""

import sys

from course_lib.grading.cli import main

if __name__ == "__main__":
    sys.exit(main())
