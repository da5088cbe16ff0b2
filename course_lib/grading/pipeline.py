"""Grading a batch: from collected submissions to autograded notebooks, feedback and CSVs.

Each student is checked, placed and autograded on their own (``nbgrader autograde
--student`` in its own process, the kernel in the sandbox), so that one broken or hostile
notebook costs only its own row. Feedback pages are checked for hidden-test lines after
nbgrader writes them, because a leak there would spoil the hidden tests for every later class.
"""

from __future__ import annotations

import html.parser
import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib.grading import GradingError
from course_lib.grading.assignment import SOLUTIONS, released_tests
from course_lib.grading.audit import audit_notebook
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
from course_lib.grading.notebooks import check_notebook, repair_notebook
from course_lib.grading.results import Report, write_report, write_results
from course_lib.grading.submissions import Submission, collect_submissions, read_roster

if TYPE_CHECKING:
    from course_lib.grading.cli import GradeConfig

__all__ = ["Report", "grade", "grade_student", "grade_students", "verify_feedback", "write_feedback"]

Progress = Callable[[str], object]


def grade(config: GradeConfig, *, solutions: Path = SOLUTIONS, progress: Progress = print) -> list[Report]:
    """Grade a batch (or one ``config.student``) and write the results into ``config.out``; return the reports.

    Without ``config.submissions``, only registers the roster and rewrites the CSVs from the gradebook.
    """
    put_scripts_on_path()
    kernel_manager, warning = choose_kernel_manager(config.sandbox)
    if warning:
        progress(f"warning: {warning}")
    course = prepare_course(
        config.course or config.out, config.assignment, kernel_manager, config.cell_timeout, solutions
    )
    roster = read_roster(config.students) if config.students else []
    if config.submissions is not None:
        reports = _grade_batch(config, course, roster, warning, progress)
    else:
        register_students(course, roster)
        reports = []
    _publish(course, config.out)
    grades_csv, questions_csv = write_results(course, config.out)
    progress(f"wrote {grades_csv} and {questions_csv}")
    return reports


def _grade_batch(
    config: GradeConfig, course: Course, roster: list[dict], warning: str | None, progress: Progress
) -> list[Report]:
    """Collect, register, autograde and write feedback for the submissions the config names."""
    with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
        collected = collect_submissions(
            config.submissions, config.assignment, course.notebooks, config.pattern, Path(workdir)
        )
        if config.student is not None:
            if config.student not in collected:
                raise GradingError(f"No submission of student {config.student!r} in {config.submissions}.")
            collected = {config.student: collected[config.student]}
        register_students(course, roster + [{"id": s} for s in collected if s not in {r["id"] for r in roster}])
        submissions = list(collected.values())
        reports = grade_students(course, submissions, config.student_timeout, warning, config.jobs, progress)
        write_feedback(course, reports, config.student_timeout)
        for report in reports:
            write_report(course, report)
    return reports


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
    log = course.root / "logs" / course.assignment / f"{submission.student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    report.log = str(log.relative_to(course.root))
    if warning:
        report.problems.append(warning)
    usable, problems, suspicious = _place_notebooks(course, submission)
    report.problems += problems + _stray_files(course, submission)
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
        tests = released_tests(course.path("release") / f"{name}.ipynb")
        notebook, found = check_notebook(submission.files[name], expected, tests)
        problems += found
        if notebook is None:
            continue
        problems += repair_notebook(notebook, expected)
        suspicious += audit_notebook(notebook, json.loads((course.source / f"{name}.ipynb").read_text()))
        (placed / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1))
        usable += 1
    return usable, problems, suspicious


def _stray_files(course: Course, submission: Submission) -> list[str]:
    """The files handed in besides the expected notebooks, and a hint when they look renamed."""
    problems = []
    missing = [n for n in course.notebooks if n not in submission.files]
    strays = [o for o in submission.others if o.endswith(".ipynb")]
    if missing and strays:
        problems.append(
            f"unexpected notebooks {strays[:3]}: renamed? Name them "
            f"{', '.join(n + '.ipynb' for n in missing)} and re-grade with --student"
        )
    if submission.others:
        problems.append(f"{len(submission.others)} other files ignored (only the assignment's notebooks are graded)")
    return problems


def _autograde(course: Course, report: Report, suspicious: list[str], log: Path, timeout: float) -> None:
    """Run ``nbgrader autograde`` for the student; record in ``report`` how it went.

    Code the audit found suspicious is graded as usual but held for review: its status says
    so and its autograded points are withheld until a person has looked.
    """
    placed = course.path("submitted", report.student)
    (placed / "timestamp.txt").write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
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


def write_feedback(course: Course, reports: list[Report], timeout: float) -> None:
    """Feedback HTML for the graded students: one nbgrader call, or one per student if that fails."""
    graded = [r for r in reports if r.status == "graded"]
    if not graded:
        return
    log = course.root / "logs" / course.assignment / "feedback.log"
    args = ["generate_feedback", course.assignment, "--force"]
    if len(graded) == 1:
        args += ["--student", graded[0].student]
    code, _ = run_nbgrader(course.root, args, log, timeout)
    for report in graded:
        if code != 0:
            student_code, text = run_nbgrader(
                course.root, args[:3] + ["--student", report.student], course.root / report.log, timeout
            )
            if student_code != 0:
                report.problems.append(f"feedback not written: {last_error(text)}")
        report.problems += verify_feedback(course, report.student)


class _TextOfHtml(html.parser.HTMLParser):
    """The text of an HTML page, without its markup (code in feedback is split by highlighting spans)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def verify_feedback(course: Course, student: str) -> list[str]:
    """Withhold any feedback file that shows a line of a hidden test."""
    hidden = [line for cell in course.cells for line in cell.hidden_lines]
    problems = []
    for path in sorted(course.path("feedback", student).glob("*.html")):
        parser = _TextOfHtml()
        parser.feed(path.read_text(encoding="utf-8"))
        text = " ".join("".join(parser.parts).split())
        leaked = [line for line in hidden if line in text]
        if leaked:
            path.unlink()
            problems.append(f"feedback {path.name} withheld: it showed a hidden test ({leaked[0][:60]})")
    return problems


def _publish(course: Course, out: Path) -> None:
    """With a separate course directory, copy this assignment's feedback and autograded notebooks to ``out``."""
    if course.root == out.resolve():
        return
    for kind in ("autograded", "feedback"):
        for folder in sorted((course.root / kind).glob(f"*/{course.assignment}")):
            target = out / kind / folder.parent.name / course.assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
