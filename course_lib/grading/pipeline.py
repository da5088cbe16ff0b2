"""Grading a batch: from collected submissions to autograded notebooks, then every output.

Each student is checked, placed and autograded on their own (``nbgrader autograde
--student`` in its own process, the kernel in the sandbox), so that one broken or hostile
notebook costs only its own row. What the run writes afterwards (feedback, CSVs, report,
exports) comes from :mod:`course_lib.grading.outputs`, the same after a batch, after one
student graded again, and on a run without submissions after manual grading.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib.grading import GradingError
from course_lib.grading.assignment import SOLUTIONS, released_tests
from course_lib.grading.audit import audit_notebook
from course_lib.grading.backends import check_backend, dispatch
from course_lib.grading.course import (
    COURSE_ID,
    Course,
    choose_kernel_manager,
    last_error,
    prepare_course,
    put_scripts_on_path,
    register_students,
    run_nbgrader,
)
from course_lib.grading.feedback import _TextOfHtml, verify_feedback  # noqa: F401 (imported from here by callers)
from course_lib.grading.late import LatePolicy, utc
from course_lib.grading.notebooks import check_notebook, repair_notebook, restore_test_cells
from course_lib.grading.outputs import kept_roster, late_policy, reading_zone, write_outputs
from course_lib.grading.results import Report, read_reports, write_report
from course_lib.grading.submissions import Submission, collect_submissions
from course_lib.grading.translations import match_language_cell

if TYPE_CHECKING:
    from course_lib.grading.cli import GradeConfig

__all__ = ["Report", "grade", "grade_student", "grade_students", "verify_feedback"]

Progress = Callable[[str], object]


def grade(config: GradeConfig, *, solutions: Path = SOLUTIONS, progress: Progress = print) -> list[Report]:
    """Grade a batch (or one ``config.student``) and write the results into ``config.out``; return the reports.

    Without ``config.submissions``, grades nobody: registers the roster and brings every output
    (feedback, CSVs, report, exports) up to date with the gradebook, e.g. after manual grading.
    """
    put_scripts_on_path()
    check_backend(config)  # e.g. Slurm's commands, before anything is released or run
    kernel_manager, warning = choose_kernel_manager(config.sandbox, check=config.backend == "local")
    if warning:
        progress(f"warning: {warning}")
    course = prepare_course(
        config.course or config.out, config.assignment, kernel_manager, config.cell_timeout, solutions, config.language
    )
    policy = late_policy(course, config)  # checked (and kept) before any student is graded
    roster = kept_roster(course, config.students)
    if config.submissions is not None:
        reports = _grade_batch(config, course, roster, warning, progress, policy)
    else:
        register_students(course, roster)
        reports = []
    write_outputs(config, course, roster, policy, progress)
    return reports


def _grade_batch(
    config: GradeConfig,
    course: Course,
    roster: list[dict],
    warning: str | None,
    progress: Progress,
    policy: LatePolicy | None,
) -> list[Report]:
    """Collect, register and autograde the submissions the config names; keep their reports."""
    with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
        collected = collect_submissions(
            config.submissions,
            config.assignment,
            course.notebooks,
            config.pattern,
            Path(workdir),
            reading_zone(config, policy),
        )
        if config.student is not None:
            if config.student not in collected:
                raise GradingError(
                    f"No submission of student {config.student!r} in {config.submissions} (found "
                    f"{', '.join(sorted(collected)[:5]) or 'none'}{' ...' if len(collected) > 5 else ''}): "
                    f"flat files are named like {config.pattern!r}, folders <student>/<notebook>.ipynb."
                )
            collected = {config.student: collected[config.student]}
        register_students(course, roster + [{"id": s} for s in collected if s not in {r["id"] for r in roster}])
        submissions = list(collected.values())
        earlier = read_reports(course)
        reports = dispatch(config, course, submissions, warning, progress)  # local threads or a Slurm array
        for report in reports:
            _record_time(report, collected[report.student], earlier.get(report.student))
            write_report(course, report)
    return reports


def _record_time(report: Report, submission: Submission, earlier: Report | None) -> None:
    """The submission time in the report (every backend's): the collected one, else the earlier grading's, said so."""
    if submission.submitted_at is not None:
        report.submitted_at, report.submitted_from = submission.submitted_at.isoformat(), submission.submitted_from
    elif earlier is not None and earlier.submitted_at:
        report.submitted_at, report.submitted_from = earlier.submitted_at, earlier.submitted_from
        report.problems.append(
            f"submission time {earlier.submitted_at} kept from the earlier grading (these submissions have "
            "none; --submitted-at sets it)"
        )


def grade_students(
    course: Course,
    submissions: list[Submission],
    timeout: float,
    warning: str | None,
    jobs: int,
    progress: Progress,
) -> list[Report]:
    """Autograde the submissions, ``jobs`` at a time (each in its own nbgrader process and
    sandbox; the gradebook's sqlite serialises their short writes). Reports in input order."""

    def one(submission: Submission) -> Report:
        report = grade_student(course, submission, timeout, warning)
        write_report(course, report)
        return report

    reports = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, submission) for submission in submissions]
        for index, future in enumerate(as_completed(futures), start=1):
            report = future.result()
            reports.append(report)
            progress(
                f"[{index}/{len(submissions)}] {report.student}: {report.status} in {report.seconds:.1f} s"
                + (f" ({len(report.problems)} problems)" if report.problems else "")
            )
    order = {submission.student: index for index, submission in enumerate(submissions)}
    return sorted(reports, key=lambda report: order[report.student])


def grade_student(course: Course, submission: Submission, timeout: float, warning: str | None) -> Report:
    """Check and place one student's notebooks, then autograde them in their own nbgrader process."""
    start = time.perf_counter()
    report = Report(submission.student, problems=list(submission.problems))
    if submission.submitted_at is not None:
        report.submitted_at, report.submitted_from = submission.submitted_at.isoformat(), submission.submitted_from
    log = course.root / "logs" / course.assignment / f"{submission.student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    report.log = str(log.relative_to(course.root))
    if warning:
        report.problems.append(warning)
    usable, problems, suspicious = _place_notebooks(course, submission)
    report.problems += problems
    if usable == 0:
        _remove_submission(course, submission.student)
        report.status = "not graded"
    else:
        _autograde(course, report, suspicious, log, timeout)
    report.seconds = time.perf_counter() - start
    return report


def _place_notebooks(course: Course, submission: Submission) -> tuple[int, list[str], list[str]]:
    """Clear the student's earlier grading, check each expected notebook and place the usable ones
    in ``submitted/``. Returns how many were placed, what is wrong, and the audit's findings."""
    for kind in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course.path(kind, submission.student), ignore_errors=True)
    placed = course.path("submitted", submission.student)
    placed.mkdir(parents=True)
    usable, problems, suspicious = 0, [], []
    for name in course.notebooks:
        if name not in submission.files:
            problems.append(f"missing notebook {name}.ipynb (0 points)")
            continue
        expected = [c for c in course.cells if c.notebook == name]
        release = course.path("release") / f"{name}.ipynb"
        notebook, found = check_notebook(submission.files[name], expected, released_tests(release))
        problems += found
        if notebook is None:
            continue
        problems += repair_notebook(notebook, expected)
        released = json.loads(release.read_text())
        restore_test_cells(notebook, released)
        match_language_cell(notebook, released)  # the checks speak the class's language, whichever release
        suspicious += audit_notebook(notebook, json.loads((course.source / f"{name}.ipynb").read_text()))
        (placed / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1))
        usable += 1
    return usable, problems, suspicious


def _autograde(course: Course, report: Report, suspicious: list[str], log: Path, timeout: float) -> None:
    """Run ``nbgrader autograde`` for the student; record in ``report`` how it went.

    Code the audit found suspicious is graded as usual but held for review: its status says
    so and its autograded points are withheld until a person has looked.
    """
    if report.submitted_at:  # nbgrader records it in the gradebook; without one it records none
        submitted = utc(datetime.fromisoformat(report.submitted_at))
        (course.path("submitted", report.student) / "timestamp.txt").write_text(
            submitted.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
        )
    args = ["autograde", course.assignment, "--student", report.student, "--force"]
    code, text = run_nbgrader(course.root, args, log, timeout)
    if code != 0:
        report.status = "failed"
        report.problems.append(f"autograde failed: {last_error(text)}")
        report.problems += _autograde_warnings(text)
        _remove_submission(course, report.student)
        return
    report.problems += _autograde_warnings(text)
    if suspicious:
        report.status = "review"
        report.problems.append(
            "held for review, autograded points withheld until a person has looked "
            "(set the cells' scores in formgrader): " + "; ".join(suspicious[:5])
        )


def _autograde_warnings(text: str) -> list[str]:
    """What nbgrader repaired or met, in words: edited test cells, changed points,
    timeouts, a dead kernel, a sandbox killed at its time limit."""
    found = []
    for line in text.splitlines():
        changed = re.search(r"Attribute '(\w+)' for cell (\S+) has changed", line)
        missing = re.search(r"Missing grade cell (\S+)", line)
        if changed and changed[1] == "checksum":
            continue  # every test cell with hidden tests; edits are found by check_notebook
        if changed:
            found.append(f"graded cell {changed[2]}: its {changed[1]} was edited (the original was graded)")
        elif missing:
            found.append(f"graded cell {missing[1]} was missing (the original was graded)")
        elif "CellTimeoutError" in line or "Timeout waiting for execute reply" in line:
            found.append("a cell ran past the time limit")
        elif "Kernel died" in line or "DeadKernelError" in line:
            found.append("the kernel died while grading")
        elif "Killing the kernel's sandbox:" in line:
            found.append("the sandbox was killed: " + line.split("Killing the kernel's sandbox:", 1)[1].strip())
    return list(dict.fromkeys(found))[:10]


def _remove_submission(course: Course, student: str) -> None:
    """Drop the student's submission from the gradebook, so no stale score from an earlier grading remains."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        try:
            gradebook.remove_submission(course.assignment, student)
        except MissingEntry:
            pass
