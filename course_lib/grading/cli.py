"""The command ``python -m course_lib.grading`` (alias ``course-grade``): its options and ``main``.

The options are the fields of :class:`GradeConfig`, declared once with their defaults and
help (see :mod:`course_lib.options`); the parser is made from them, and Python callers
build the same config, so ``--help``, the command and :func:`~course_lib.grading.pipeline.grade`
can never disagree about a default.
"""

from __future__ import annotations

import argparse
import html
import sys
from dataclasses import dataclass
from pathlib import Path

from course_lib.errors import CourseError
from course_lib.grading import GradingError, late
from course_lib.grading.backends import BACKENDS, check_backend_options
from course_lib.grading.pipeline import grade
from course_lib.grading.similarity import THRESHOLD
from course_lib.grading.submissions import DEFAULT_PATTERN
from course_lib.i18n import LANGUAGES, check_language
from course_lib.options import add_arguments, from_args, option

__all__ = ["CELL_TIMEOUT", "STUDENT_TIMEOUT", "GradeConfig", "build_parser", "main", "options_table"]

CELL_TIMEOUT = 600
STUDENT_TIMEOUT = 900


@dataclass(kw_only=True)
class GradeConfig:
    """What to grade, where to write it, and the limits: the options of the command."""

    assignment: str = option(help="assignment folder under solutions/, e.g. 01-convolution", positional=True)
    submissions: Path | None = option(
        None,
        "folder or zip: <student>/<assignment>/<nb>.ipynb, <student>/<nb>.ipynb, "
        "or flat <student>_<nb>.ipynb files (omit to bring every output up to date with the gradebook, "
        "e.g. after manual grading)",
        parse=Path,
        positional=True,
    )
    out: Path = option(help="results folder (and course directory by default)", parse=Path, required=True)
    course: Path | None = option(None, "nbgrader course directory to create or keep", parse=Path, default_text="--out")
    students: Path | None = option(
        None,
        "CSV of students: id, and optionally first_name, last_name, email and, for canvas.csv, canvas_id, "
        "sis_user_id, sis_login_id, section (kept for later runs)",
        parse=Path,
        default_text="the kept roster",
    )
    student: str | None = option(None, "grade only this student (re-grade)")
    pattern: str = option(DEFAULT_PATTERN, "file names of flat submissions, with {student}, {notebook} and *")
    language: str | None = option(
        None,
        "language of the class: en, or es for the Spanish release (exercises/es/): the course directory gets the "
        "assignment in that language, the same tests, and the checks' hints in it (kept for later runs)",
        choices=LANGUAGES,
        default_text="kept, else en",
    )
    sandbox: bool = option(
        True,
        "run student code without the sandbox, with your own rights (trusted "
        "notebooks only; by default grading stops when the sandbox cannot run)",
    )
    cell_timeout: int = option(CELL_TIMEOUT, "seconds per cell")
    student_timeout: float = option(STUDENT_TIMEOUT, "seconds per student", parse=float)
    jobs: int = option(1, "students graded at the same time (each uses up to a core and its memory limit)")
    backend: str = option(
        "local",
        "where students are graded: local (this machine, --jobs at a time) or slurm (a job array, one task per "
        "student, on a course directory the nodes share; see grading/README.md)",
        choices=BACKENDS,
    )
    partition: str | None = option(None, "Slurm partition (--backend slurm)", default_text="the cluster's default")
    gres: str | None = option(None, "Slurm generic resources per student, e.g. gpu:1 (--backend slurm)")
    time: str | None = option(
        None, "Slurm time limit per student, as sbatch --time takes it", default_text="--student-timeout + 10 min"
    )
    mem: str | None = option(None, "Slurm memory per student, e.g. 8G", default_text="the cluster's default")
    max_parallel: int | None = option(
        None, "students graded at the same time on Slurm", parse=int, default_text="as many as Slurm allows"
    )
    # The late policy: kept in the course directory, so a later run (after manual grading) applies it again;
    # each option given replaces the kept value (see course_lib.grading.late).
    due: str | None = option(
        None,
        "due date and time, ISO 8601 such as 2025-03-01T23:59 (in --timezone unless it has an offset); "
        "'none' drops the late policy",
        default_text="the kept policy's, else no late policy",
    )
    extensions: Path | None = option(
        None, "CSV of extensions: student_id and due (a new due date) or extra_hours", parse=Path, default_text="kept"
    )
    late_percent: float | None = option(
        None,
        "percent of the score deducted per started --late-unit after the due date",
        parse=float,
        default_text=f"kept, else {late.PERCENT:g}",
    )
    late_unit: str | None = option(
        None, "day or hour", choices=tuple(late.UNITS), default_text=f"kept, else {late.UNIT}"
    )
    late_cap: float | None = option(
        None, "the most percent deducted for lateness", parse=float, default_text=f"kept, else {late.CAP:g}"
    )
    late_grace: float | None = option(
        None,
        "minutes after the due date that still count as on time (later, lateness counts from the due date)",
        parse=float,
        default_text=f"kept, else {late.GRACE_MINUTES:g}",
    )
    timezone: str | None = option(
        None,
        "time zone (IANA name, e.g. Europe/Zurich) of times written without an offset (--due, extensions, "
        "--submitted-at, a zip's file times) and of the times shown",
        default_text=f"kept, else {late.TIMEZONE}",
    )
    submitted_at: Path | None = option(
        None,
        "CSV of submission times: student_id (or email) and submitted_at; they replace those of "
        "timestamp.txt and of the zip",
        parse=Path,
    )
    lms_name: str | None = option(
        None,
        "title of the grade column of canvas.csv and moodle.csv (for Canvas, with the assignment's Canvas id "
        "in parentheses as a Canvas export heads it, e.g. 'Convolution (4123)')",
        default_text="kept, else ASSIGNMENT",
    )
    similarity_threshold: float = option(
        THRESHOLD, "share of answer code two submissions have in common for similarity.html to flag the pair"
    )

    def __post_init__(self) -> None:
        """Paths given as strings become paths; impossible values stop before anything runs."""
        for name in ("submissions", "out", "course", "students", "extensions", "submitted_at"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, Path(value))
        if self.jobs < 1:
            raise GradingError(f"--jobs must be at least 1, not {self.jobs}.")
        if self.language is not None:
            check_language(self.language)
        check_backend_options(self)
        late.check_options(self.due, self.late_percent, self.late_unit, self.late_cap, self.late_grace, self.timezone)
        if not 0 < self.similarity_threshold <= 1:
            raise GradingError(f"--similarity-threshold is a share from 0 to 1, not {self.similarity_threshold}.")


def build_parser() -> argparse.ArgumentParser:
    """The command's parser, one option per field of :class:`GradeConfig`."""
    parser = argparse.ArgumentParser(
        prog="course-grade",
        description="Autograde an assignment's submissions with nbgrader and write feedback, grades.csv, "
        "questions.csv, report.html, canvas.csv, moodle.csv and similarity.html (see grading/README.md).",
    )
    add_arguments(parser, GradeConfig)
    return parser


def options_table() -> str:
    """The options as a Markdown table, made from the parser's help: grading/README.md keeps a copy,
    which a test compares with this, so the README can never quote a default the code does not have.
    Regenerate it with ``python -c "from course_lib.grading.cli import options_table; print(options_table())"``."""
    rows = ["| option | what it does (default) |", "|---|---|"]
    for action in build_parser()._actions:
        if action.dest == "help":
            continue
        name = ", ".join(f"`{flag}`" for flag in action.option_strings) or f"`{action.dest.upper()}`"
        text = html.escape(" ".join((action.help or "").split()), quote=False).replace("|", "&#124;")
        rows.append(f"| {name} | {text} |")
    return "\n".join(rows)


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
