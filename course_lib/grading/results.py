"""What grading leaves behind: a report per student, ``grades.csv`` and ``questions.csv``.

Scores come from nbgrader's gradebook; what happened to each submission (its status and
problems in words) comes from the reports kept in ``reports/<assignment>/<student>.json``,
so that re-grading one student, or rewriting the CSVs after manual grading, keeps every
other student's row as it was.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.grading.assignment import Cell
from course_lib.grading.course import COURSE_ID, Course

__all__ = ["GRADES_COLUMNS", "QUESTIONS_COLUMNS", "Report", "read_reports", "write_report", "write_results"]

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
]
QUESTIONS_COLUMNS = ["student_id", "notebook", "cell", "kind", "score", "max_score", "needs_manual_grade"]


@dataclass
class Report:
    """What happened to one student's submission."""

    student: str
    status: str = "graded"  # graded | review | not graded | no submission | failed
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""


def _reports_folder(course: Course) -> Path:
    return course.root / "reports" / course.assignment


def read_reports(course: Course) -> dict[str, Report]:
    """Every report kept for the course's assignment (student -> report)."""
    folder = _reports_folder(course)
    reports = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        values = json.loads(path.read_text())
        reports[values["student"]] = Report(**values)
    return reports


def write_report(course: Course, report: Report) -> None:
    """Keep one student's report, replacing the one of an earlier grading."""
    folder = _reports_folder(course)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{report.student}.json").write_text(json.dumps(report.__dict__, indent=1))


def _format(value: float) -> str:
    return f"{value:g}"


def write_results(course: Course, out: Path) -> tuple[Path, Path]:
    """grades.csv (one row per student) and questions.csv (one row per student and graded cell)."""
    from nbgrader.api import Gradebook

    reports = read_reports(course)
    cells = {(c.notebook, c.name): c for c in course.cells}
    max_auto = sum(c.points for c in course.cells if c.kind == "auto")
    max_manual = sum(c.points for c in course.cells if c.kind == "manual")
    grades, questions = [], []
    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        students = sorted({s.id for s in gradebook.students} | set(reports))
        for student in students:
            report = reports.get(student, Report(student, status="no submission"))
            scores = _gradebook_grades(gradebook, course.assignment, student)
            if scores is None and student not in reports:
                report.problems = ["no submission"]
            grade_row, question_rows = _student_rows(report, scores or {}, cells, max_auto, max_manual)
            grades.append(grade_row)
            questions += question_rows
    out.mkdir(parents=True, exist_ok=True)
    grades_csv, questions_csv = out / "grades.csv", out / "questions.csv"
    _write_csv(grades_csv, GRADES_COLUMNS, grades)
    _write_csv(questions_csv, QUESTIONS_COLUMNS, questions)
    return grades_csv, questions_csv


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


def _student_rows(
    report: Report,
    scores: dict[tuple[str, str], Any],
    cells: dict[tuple[str, str], Cell],
    max_auto: float,
    max_manual: float,
) -> tuple[list[str], list[list[str]]]:
    """One student's row of grades.csv and rows of questions.csv.

    A submission held for review scores 0 on its autograded cells until a person has set
    their scores (``manual_score``) in formgrader.
    """
    student = report.student
    questions = []
    auto = manual_needed = 0.0
    total = 0.0
    for (notebook, name), cell in cells.items():
        grade = scores.get((notebook, name))
        score = float(grade.score) if grade is not None else 0.0
        if report.status == "review" and cell.kind == "auto" and grade is not None and grade.manual_score is None:
            score = 0.0  # held: a person decides after reading the code
        needs = bool(grade is not None and grade.needs_manual_grade)
        total += score
        if cell.kind == "auto":
            auto += score
        manual_needed = manual_needed or needs
        questions.append([student, notebook, name, cell.kind, _format(score), _format(cell.points), str(needs).lower()])
    grade_row = [
        student,
        _format(total),
        _format(max_auto + max_manual),
        _format(auto),
        _format(max_auto),
        _format(max_manual),
        str(bool(manual_needed)).lower(),
        report.status,
        "; ".join(report.problems),
    ]
    return grade_row, questions


def _write_csv(path: Path, columns: list[str], rows: list[list[str]]) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        writer.writerows(rows)
