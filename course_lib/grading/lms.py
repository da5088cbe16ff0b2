"""Grades for the learning-management system: ``canvas.csv`` and ``moodle.csv``.

Both files hold the students whose score is final (see :attr:`StudentResult.final`) and only
them: a pending written answer, points held for review, a failed grading or an extension still
running leaves the student out, because both systems would record what the file says
(Moodle's import clears a grade for an empty cell and stops at a row it cannot match; a
Canvas import overwrites the grade). Scores are points after the late penalty, out of the
assignment's points; the LMS assignment must have the same maximum.

- canvas.csv: the columns of a Canvas gradebook export, ``Student`` ("Last, First"), ``ID``
  (Canvas's user id), ``SIS User ID``, ``SIS Login ID``, ``Section``, then one column per
  assignment named as Canvas names it, ``Name (canvas id)``; a second row ``Points
  Possible``. Canvas matches a row by ID, SIS User ID or name. The roster's optional columns
  ``canvas_id``, ``sis_user_id`` (else its ``id``), ``sis_login_id`` and ``section`` fill them.
- moodle.csv: ``First name``, ``Last name``, ``ID number`` (the roster's id), ``Email address``,
  the grade column, and a feedback column: one sentence with the score and its parts (the
  "score with a message"). Moodle's import maps the user by email or ID number and each
  column to a grade item or its feedback.
"""

from __future__ import annotations

from pathlib import Path

from course_lib.grading.results import StudentResult, write_csv

__all__ = ["CANVAS_COLUMNS", "MOODLE_COLUMNS", "message", "write_canvas", "write_moodle"]

CANVAS_COLUMNS = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
MOODLE_COLUMNS = ["First name", "Last name", "ID number", "Email address"]


def _number(value: float) -> str:
    return f"{value:g}"


def _final(results: list[StudentResult]) -> tuple[list[StudentResult], list[str]]:
    """The results with a final score, and the students left out."""
    final = [r for r in results if r.final]
    return final, [r.student for r in results if not r.final]


def message(result: StudentResult) -> str:
    """What the score is made of, in one sentence for the LMS's feedback column."""
    total = result.points()
    if not result.submitted:
        reason = "no submission" if result.report.status == "no submission" else "no notebook could be graded"
        return f"{_number(result.score)} of {_number(total)} points: {reason}."
    parts = []
    for kind, label in (("auto", "autograded"), ("manual", "written answers")):
        if points := result.points(kind):
            parts.append(f"{label} {_number(result.scored(kind))} of {_number(points)}")
    text = f"{_number(result.score)} of {_number(total)} points ({', '.join(parts)})"
    if result.late_penalty:
        text += f"; {_number(result.lateness.percent)}% deducted for lateness (-{_number(result.late_penalty)} points)"
    return text + ". Details in your feedback page."


def write_canvas(results: list[StudentResult], roster: list[dict], name: str, out: Path) -> tuple[Path, list[str]]:
    """canvas.csv; return its path and the students left out."""
    people = {row["id"]: row for row in roster}
    final, left_out = _final(results)
    max_score = _number(results[0].points()) if results else ""
    rows = [["Points Possible", "", "", "", "", max_score]]
    for result in final:
        person = people.get(result.student, {})
        full = ", ".join(p for p in (person.get("last_name"), person.get("first_name")) if p) or result.student
        rows.append(
            [
                full,
                person.get("canvas_id", ""),
                person.get("sis_user_id") or result.student,
                person.get("sis_login_id", ""),
                person.get("section", ""),
                _number(result.score),
            ]
        )
    return write_csv(out / "canvas.csv", [*CANVAS_COLUMNS, name], rows), left_out


def write_moodle(results: list[StudentResult], roster: list[dict], name: str, out: Path) -> tuple[Path, list[str]]:
    """moodle.csv; return its path and the students left out."""
    people = {row["id"]: row for row in roster}
    final, left_out = _final(results)
    rows = []
    for result in final:
        person = people.get(result.student, {})
        rows.append(
            [
                person.get("first_name", ""),
                person.get("last_name", ""),
                result.student,
                person.get("email", ""),
                _number(result.score),
                message(result),
            ]
        )
    return write_csv(out / "moodle.csv", [*MOODLE_COLUMNS, name, f"{name} feedback"], rows), left_out
