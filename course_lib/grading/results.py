"""What grading leaves behind: a report per student, the class's results, ``grades.csv`` and ``questions.csv``.

Scores come from nbgrader's gradebook; what happened to each submission (its status and
problems in words, when it was handed in) comes from the reports kept in
``reports/<assignment>/<student>.json``, so that re-grading one student, or rewriting the CSVs
after manual grading, keeps every other student's row as it was.

A score that nobody has given yet is not a zero: a written answer waiting for a person is
``pending`` (no score), and autograded points held for review are ``held``. The class's
results (:func:`class_results`) are computed once per run and every output reads them:
the CSVs here, feedback, the report, the LMS exports.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from course_lib.files import write_atomically
from course_lib.grading.assignment import Cell
from course_lib.grading.course import COURSE_ID, Course
from course_lib.grading.late import Lateness, LatePolicy, assess, zone

__all__ = [
    "GRADES_COLUMNS",
    "QUESTIONS_COLUMNS",
    "CellResult",
    "Report",
    "StudentResult",
    "class_results",
    "grades_row",
    "question_rows",
    "with_lateness",
    "read_reports",
    "write_report",
    "write_results",
]

GRADES_COLUMNS = [
    "student_id",
    "score",
    "max_score",
    "auto_score",
    "auto_max_score",
    "manual_max_score",
    "needs_manual_grade",
    "status",
    "problems",
    "raw_score",
    "late_penalty",
    "pending_points",
    "submitted_at",
    "due",
    "seconds_late",
    "late_percent",
    "grading_seconds",
]
QUESTIONS_COLUMNS = ["student_id", "notebook", "cell", "kind", "score", "max_score", "needs_manual_grade", "state"]


@dataclass
class Report:
    """What happened to one student's submission."""

    student: str
    status: str = "graded"  # graded | review | not graded | no submission | failed
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""
    submitted_at: str = ""  # ISO 8601 with its offset; empty when unknown
    submitted_from: str = ""  # timestamp.txt, the zip's file times, --submitted-at
    feedback_digest: str = ""  # what the current feedback pages show (see course_lib.grading.feedback)
    feedback_problems: list[str] = field(default_factory=list)


@dataclass
class CellResult:
    """One graded cell of one student: its score, or why it has none yet."""

    cell: Cell
    score: float | None  # None while pending
    state: str  # graded | pending (a person must grade it) | held (withheld for review) | missing | not submitted
    needs_manual_grade: bool


@dataclass
class StudentResult:
    """One student's results, as every output shows them."""

    report: Report
    cells: list[CellResult]
    submitted: bool  # the gradebook has a submission
    lateness: Lateness | None  # None without a late policy
    penalties: dict[str, float]  # notebook -> points deducted for lateness

    @property
    def student(self) -> str:
        """The student's id."""
        return self.report.student

    @property
    def raw_score(self) -> float:
        """Points given so far, before any late penalty."""
        return self.scored()

    def points(self, kind: str | None = None) -> float:
        """What the graded cells are worth: all of them, or those of one kind (auto or manual)."""
        return sum(c.cell.points for c in self.cells if kind in (None, c.cell.kind))

    def scored(self, kind: str | None = None) -> float:
        """Points given so far, before any late penalty: in every cell, or in those of one kind."""
        return sum(c.score or 0.0 for c in self.cells if kind in (None, c.cell.kind))

    @property
    def late_penalty(self) -> float:
        """Points deducted for lateness."""
        return round(sum(self.penalties.values()), 2)

    @property
    def score(self) -> float:
        """Points after the late penalty."""
        return round(self.raw_score - self.late_penalty, 2)

    @property
    def pending_points(self) -> float:
        """Points of the cells still waiting for a person (pending or held)."""
        return sum(c.cell.points for c in self.cells if c.state in ("pending", "held"))

    @property
    def final(self) -> bool:
        """Whether the score is the student's grade: nothing pending or held, the notebooks could be
        graded, and a missing submission is missing for good (no extension still running)."""
        if self.report.status in ("failed", "not graded") or self.pending_points:
            return False  # a notebook that could not be graded (renamed, broken) waits for a person
        if not self.submitted and self.lateness is not None:
            return self.lateness.due <= datetime.now(self.lateness.due.tzinfo)
        return True

    def notebook_score(self, notebook: str) -> float:
        """Points given so far in one notebook."""
        return sum(c.score or 0.0 for c in self.cells if c.cell.notebook == notebook)


def _reports_folder(course: Course) -> Path:
    return course.root / "reports" / course.assignment


def read_reports(course: Course) -> dict[str, Report]:
    """Every report kept for the course's assignment (student -> report)."""
    folder = _reports_folder(course)
    reports = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        values = json.loads(path.read_text())
        if "student" in values:  # the folder also keeps the late policy
            reports[values["student"]] = Report(**values)
    return reports


def write_report(course: Course, report: Report) -> None:
    """Keep one student's report (atomically), replacing the one of an earlier grading."""
    path = _reports_folder(course) / f"{report.student}.json"
    write_atomically(path, lambda handle: json.dump(asdict(report), handle, indent=1))


def class_results(course: Course, policy: LatePolicy | None = None) -> list[StudentResult]:
    """Every student's results, from the gradebook and the kept reports, with the late policy applied."""
    from nbgrader.api import Gradebook

    reports = read_reports(course)
    results = []
    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        for student in sorted({s.id for s in gradebook.students} | set(reports)):
            report = reports.get(student, Report(student, status="no submission"))
            grades = _gradebook_grades(gradebook, course.assignment, student)
            if grades is None and student not in reports:
                report.problems = ["no submission"]
            cells = [
                _cell_result(cell, (grades or {}).get((cell.notebook, cell.name)), report) for cell in course.cells
            ]
            results.append(with_lateness(StudentResult(report, cells, grades is not None, None, {}), policy))
    return results


def with_lateness(result: StudentResult, policy: LatePolicy | None) -> StudentResult:
    """The result with its lateness and per-notebook penalties (rounded to cents, as every output shows them)."""
    if policy is None:
        return result
    submitted = datetime.fromisoformat(result.report.submitted_at) if result.report.submitted_at else None
    result.lateness = assess(policy, result.student, submitted if result.submitted else None)
    if result.submitted:
        notebooks = sorted({c.cell.notebook for c in result.cells})
        result.penalties = {
            name: round(result.notebook_score(name) * result.lateness.percent / 100, 2) for name in notebooks
        }
    return result


def _gradebook_grades(gradebook: Any, assignment: str, student: str) -> dict[tuple[str, str], Any] | None:
    """The student's grade records by (notebook, cell), or None when the gradebook has no submission."""
    from nbgrader.api import MissingEntry

    try:
        submission = gradebook.find_submission(assignment, student)
    except MissingEntry:
        return None
    if submission is None:
        return None
    return {(notebook.name, grade.name): grade for notebook in submission.notebooks for grade in notebook.grades}


def _cell_result(cell: Cell, grade: Any, report: Report) -> CellResult:
    """One cell's score and state. A submission held for review scores 0 on its autograded cells
    until a person has set their scores (``manual_score``) in formgrader; a cell with neither an
    autograded nor a manual score (a written answer not graded yet) is pending, without a score."""
    if grade is None:
        return CellResult(cell, 0.0, "not submitted", False)
    needs = bool(grade.needs_manual_grade)
    if report.status == "review" and cell.kind == "auto" and grade.manual_score is None:
        return CellResult(cell, 0.0, "held", needs)  # a person decides after reading the code
    if grade.manual_score is None and grade.auto_score is None and cell.kind == "manual":
        return CellResult(cell, None, "pending", needs)  # nobody has scored it (nbgrader may flag scored cells too)
    if grade.manual_score is None and grade.auto_score is None:
        return CellResult(cell, 0.0, "missing", needs)  # a test cell that did not run: 0 until a person decides
    return CellResult(cell, float(grade.score), "graded", needs)


def _format(value: float) -> str:
    return f"{value:g}"


def _time(moment: datetime | None, policy: LatePolicy | None) -> str:
    """A time for the CSVs: ISO 8601 with its offset, in the policy's time zone."""
    if moment is None:
        return ""
    return moment.astimezone(zone(policy.timezone)).isoformat() if policy else moment.isoformat()


def grades_row(result: StudentResult, policy: LatePolicy | None = None) -> list[str]:
    """One student's row of grades.csv."""
    lateness = result.lateness
    submitted = datetime.fromisoformat(result.report.submitted_at) if result.report.submitted_at else None
    return [
        result.student,
        _format(result.score),
        _format(result.points()),
        _format(result.scored("auto")),
        _format(result.points("auto")),
        _format(result.points("manual")),
        str(any(c.needs_manual_grade for c in result.cells)).lower(),
        result.report.status,
        "; ".join(result.report.problems + result.report.feedback_problems),
        _format(result.raw_score),
        _format(result.late_penalty),
        _format(result.pending_points),
        _time(submitted, policy),
        _time(lateness.due, policy) if lateness else "",
        str(math.ceil(lateness.seconds_late)) if lateness and lateness.submitted else "",
        _format(lateness.percent) if lateness and result.submitted else "",
        f"{result.report.seconds:.1f}",
    ]


def question_rows(result: StudentResult) -> list[list[str]]:
    """One student's rows of questions.csv: a pending cell has no score."""
    return [
        [
            result.student,
            c.cell.notebook,
            c.cell.name,
            c.cell.kind,
            "" if c.score is None else _format(c.score),
            _format(c.cell.points),
            str(c.needs_manual_grade).lower(),
            c.state,
        ]
        for c in result.cells
    ]


def write_results(
    course: Course, out: Path, results: list[StudentResult] | None = None, policy: LatePolicy | None = None
) -> tuple[Path, Path]:
    """grades.csv (one row per student) and questions.csv (one row per student and graded cell), atomically."""
    results = class_results(course, policy) if results is None else results
    grades_csv, questions_csv = out / "grades.csv", out / "questions.csv"
    write_csv(grades_csv, GRADES_COLUMNS, [grades_row(r, policy) for r in results])
    write_csv(questions_csv, QUESTIONS_COLUMNS, [row for r in results for row in question_rows(r)])
    return grades_csv, questions_csv


def write_csv(path: Path, columns: list[str], rows: list[list[str]]) -> Path:
    """A CSV file, written atomically (a spreadsheet open on the old one never sees half of the new)."""

    def write(handle: Any) -> None:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)

    return write_atomically(path, write)
