"""The command ``python -m course_lib.grading`` (alias ``course-grade``): its options and ``main``.

The options are the fields of :class:`GradeConfig`, declared once with their defaults and
help (see :mod:`course_lib.options`); the parser is made from them, and Python callers
build the same config, so ``--help``, the command and :func:`~course_lib.grading.pipeline.grade`
can never disagree about a default.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

from course_lib.errors import CourseError
from course_lib.grading import GradingError
from course_lib.grading.pipeline import grade
from course_lib.grading.submissions import DEFAULT_PATTERN
from course_lib.options import add_arguments, from_args, option

__all__ = ["CELL_TIMEOUT", "STUDENT_TIMEOUT", "GradeConfig", "build_parser", "main"]

CELL_TIMEOUT = 600
STUDENT_TIMEOUT = 900


@dataclass(kw_only=True)
class GradeConfig:
    """What to grade, where to write it, and the limits: the options of the command."""

    assignment: str = option(help="assignment folder under solutions/, e.g. 01-convolution", positional=True)
    submissions: Path | None = option(
        None,
        "folder or zip: <student>/<assignment>/<nb>.ipynb, <student>/<nb>.ipynb, "
        "or flat <student>_<nb>.ipynb files (omit to rewrite the CSVs from the gradebook)",
        parse=Path,
        positional=True,
    )
    out: Path = option(help="results folder (and course directory by default)", parse=Path, required=True)
    course: Path | None = option(None, "nbgrader course directory to create or keep", parse=Path, default_text="--out")
    students: Path | None = option(None, "CSV of students: id[,first_name,last_name,email]", parse=Path)
    student: str | None = option(None, "grade only this student (re-grade)")
    pattern: str = option(DEFAULT_PATTERN, "file names of flat submissions, with {student}, {notebook} and *")
    sandbox: bool = option(
        True,
        "run student code without the sandbox, with your own rights (trusted "
        "notebooks only; by default grading stops when the sandbox cannot run)",
    )
    cell_timeout: int = option(CELL_TIMEOUT, "seconds per cell")
    student_timeout: float = option(STUDENT_TIMEOUT, "seconds per student", parse=float)
    jobs: int = option(1, "students graded at the same time (each uses up to a core and its memory limit)")

    def __post_init__(self) -> None:
        """Paths given as strings become paths; impossible values stop before anything runs."""
        for name in ("submissions", "out", "course", "students"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        if self.jobs < 1:
            raise GradingError(f"--jobs must be at least 1, not {self.jobs}.")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, one option per field of :class:`GradeConfig`."""
    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="Autograde an assignment's submissions with nbgrader and write "
        "feedback, grades.csv and questions.csv.",
    )
    add_arguments(parser, GradeConfig)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command; a mistake the user can fix prints one line and returns 2."""
    args = build_parser().parse_args(argv)
    try:
        config = from_args(GradeConfig, args)
        reports = grade(config)
    except CourseError as error:
        print(f"course-grade: {error}", file=sys.stderr)
        return 2
    failed = [r.student for r in reports if r.status == "failed"]
    if failed:
        print(f"autograde failed for {', '.join(failed)}: see {config.out}/grades.csv and the logs", file=sys.stderr)
    return 0
