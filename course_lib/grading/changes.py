"""A record of every change of a student's grade: ``grade-changes.csv``, extended by each run.

Grades change after they were first written: a regrade, a written answer graded by hand, an
extension granted, a late policy changed. An instructor answering a student weeks later needs
to see when a grade changed, from what to what, and which run of the command changed it; the
record keeps that, one row per student and change, never rewriting earlier rows.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

from course_lib.grading.results import GRADES_COLUMNS, write_csv

__all__ = ["CHANGES_COLUMNS", "WATCHED", "record_changes"]

CHANGES_COLUMNS = ["time", "student_id", "changes", "score", "status", "run"]
WATCHED = ("score", "raw_score", "late_penalty", "pending_points", "status")  # what a student's grade is


def _read(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def record_changes(out: Path, grades: list[list[str]], run: str) -> tuple[Path, int]:
    """Add to ``out/grade-changes.csv`` what ``grades`` (the new grades.csv rows) change against the
    grades.csv still in ``out``; a student's first grades are recorded too. Return the file and the count."""
    previous = {row["student_id"]: row for row in _read(out / "grades.csv")}
    record = out / "grade-changes.csv"
    kept = [[row.get(column, "") for column in CHANGES_COLUMNS] for row in _read(record)]
    now = datetime.now(UTC).isoformat(timespec="seconds")
    added = []
    for values in grades:
        new = dict(zip(GRADES_COLUMNS, values, strict=True))
        old = previous.get(new["student_id"])
        if old is None:
            changes = "first grades"
        else:
            changes = "; ".join(f"{c} {old.get(c, '')} -> {new[c]}" for c in WATCHED if old.get(c, "") != new[c])
        if changes:
            added.append([now, new["student_id"], changes, new["score"], new["status"], run])
    if added or not record.is_file():
        write_csv(record, CHANGES_COLUMNS, kept + added)
    return record, len(added)
