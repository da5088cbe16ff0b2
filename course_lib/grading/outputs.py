"""Everything a run writes into ``--out`` after grading, from the gradebook and the kept reports.

:func:`write_outputs` runs after every batch, after one student graded again (``--student``), and
alone (no SUBMISSIONS, e.g. after manual grading in formgrader), so that every output tells the
same story at every moment: the class's results are computed once (:mod:`.results`, with the
late policy of :mod:`.late`), then feedback is brought up to date (:mod:`.feedback`) and the
CSVs, the record of grade changes (:mod:`.changes`), the class report (:mod:`.class_report`),
the LMS exports (:mod:`.lms`) and the similarity report (:mod:`.similarity`) are written from
those same results.

What must outlive one run is kept in the course directory: the late policy
(``reports/<assignment>/late-policy.json``), the LMS column title
(``reports/<assignment>/kept-options.json``) and the roster (``roster.csv``), so a later run
without those options applies them again.
"""

from __future__ import annotations

import json
import shlex
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib.files import write_atomically
from course_lib.grading.changes import record_changes
from course_lib.grading.class_report import write_class_report
from course_lib.grading.course import Course
from course_lib.grading.feedback import refresh_feedback
from course_lib.grading.late import (
    TIMEZONE,
    LatePolicy,
    load_policy,
    read_submission_times,
    resolve_policy,
    save_policy,
)
from course_lib.grading.lms import write_canvas, write_moodle
from course_lib.grading.results import class_results, grades_row, read_reports, write_report, write_results
from course_lib.grading.similarity import write_similarity
from course_lib.grading.submissions import read_roster
from course_lib.options import to_argv

if TYPE_CHECKING:
    from course_lib.grading.cli import GradeConfig

__all__ = ["kept_roster", "late_policy", "reading_zone", "write_outputs"]

Progress = Callable[[str], object]


def late_policy(course: Course, config: GradeConfig) -> LatePolicy | None:
    """The late policy of this run (the kept one, with the options given replacing its values), kept again."""
    folder = course.root / "reports" / course.assignment
    policy = resolve_policy(
        load_policy(folder),
        due=config.due,
        percent=config.late_percent,
        unit=config.late_unit,
        cap=config.late_cap,
        grace_minutes=config.late_grace,
        timezone_name=config.timezone,
        extensions=config.extensions,
    )
    save_policy(folder, policy)
    return policy


def reading_zone(config: GradeConfig, policy: LatePolicy | None) -> str:
    """The time zone of times written without one: the option's, else the kept policy's, else UTC."""
    return config.timezone or (policy.timezone if policy else TIMEZONE)


def kept_roster(course: Course, students: Path | None) -> list[dict]:
    """The roster of ``--students``, kept in the course directory for later runs; else the kept one."""
    kept = course.root / "roster.csv"
    if students is not None:
        roster = read_roster(students)  # checked before it replaces the kept one
        write_atomically(kept, lambda handle: handle.write(Path(students).read_bytes()), binary=True)
        return roster
    return read_roster(kept) if kept.is_file() else []


def _kept_option(course: Course, name: str, given: str | None) -> str | None:
    """An option kept for later runs of this assignment: the value given (then kept), else the kept one."""
    path = course.root / "reports" / course.assignment / "kept-options.json"
    kept = json.loads(path.read_text()) if path.is_file() else {}
    if given is not None and kept.get(name) != given:
        kept[name] = given
        write_atomically(path, lambda handle: json.dump(kept, handle, indent=1))
    return kept.get(name)


def _apply_submission_times(course: Course, path: Path, zone_name: str, roster: list[dict]) -> None:
    """Times from ``--submitted-at`` replace those in the kept reports."""
    emails = {row["email"].lower(): row["id"] for row in roster if row.get("email")}
    times = read_submission_times(path, zone_name, emails)
    for student, report in read_reports(course).items():
        if student in times:
            report.submitted_at, report.submitted_from = times[student].isoformat(), "--submitted-at"
            write_report(course, report)


def write_outputs(
    config: GradeConfig, course: Course, roster: list[dict], policy: LatePolicy | None, progress: Progress
) -> None:
    """Bring feedback up to date and write every file of ``--out`` from the class's results."""
    out = config.out
    if policy is not None:
        progress(f"late policy: {policy.describe()}")
    if config.submitted_at is not None:
        _apply_submission_times(course, config.submitted_at, reading_zone(config, policy), roster)
    results = class_results(course, policy)
    written = refresh_feedback(course, results, policy, config.student_timeout)
    if written:
        progress(f"feedback written for {len(written)} student{'s' if len(written) > 1 else ''}: {', '.join(written)}")
    _publish(course, out)
    out.mkdir(parents=True, exist_ok=True)
    command = "course-grade " + shlex.join(to_argv(config))
    record, changed = record_changes(out, [grades_row(r, policy) for r in results], command)
    files = [record, *write_results(course, out, results, policy), *write_class_report(course, results, out)]
    name = _kept_option(course, "lms_name", config.lms_name) or config.assignment
    for write in (write_canvas, write_moodle):
        path, left_out = write(results, roster, name, out)
        files.append(path)
        if left_out:
            progress(f"{path.name}: left out until their grade is final: {', '.join(left_out)}")
    path, flagged = write_similarity(course, results, out, config.similarity_threshold)
    files.append(path)
    if flagged:
        progress(f"{path.name}: {flagged} pair{'s' if flagged > 1 else ''} of submissions to look at")
    progress(f"{record.name}: {changed} change{'s' if changed != 1 else ''} of grades recorded")
    progress("wrote " + ", ".join(str(f) for f in files))


def _publish(course: Course, out: Path) -> None:
    """With a separate course directory, copy this assignment's feedback and autograded notebooks to ``out``
    (and remove copies whose original is gone, e.g. feedback withheld after a regrade)."""
    if course.root == out.resolve():
        return
    for kind in ("autograded", "feedback"):
        for folder in sorted((out / kind).glob(f"*/{course.assignment}")):
            if not (course.root / kind / folder.parent.name / course.assignment).is_dir():
                shutil.rmtree(folder)
        for folder in sorted((course.root / kind).glob(f"*/{course.assignment}")):
            target = out / kind / folder.parent.name / course.assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)
