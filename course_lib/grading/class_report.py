"""The class report: per-question statistics, the most-failed checks, grading times.

What an instructor asks after grading: which questions the class found hard (mean, the share
of full and of zero marks, the distribution), which checks failed most and with what message
(the line of the test cell that raised, hidden tests included: this page is the
instructor's), and how long each student took to grade. ``report.html`` shows it with plots;
``report.csv`` holds the same table of questions (grading times per student are in
grades.csv's ``grading_seconds``).

The statistics count submissions in the gradebook (graded, held or not); a score still pending
is left out of its question's numbers and counted as pending.
"""

from __future__ import annotations

import json
import re
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from course_lib.files import write_atomically
from course_lib.grading.assignment import Cell, failing_line, hidden_line_numbers
from course_lib.grading.course import Course
from course_lib.grading.pages import render, svg
from course_lib.grading.results import StudentResult, write_csv

__all__ = ["REPORT_COLUMNS", "Check", "QuestionStats", "class_statistics", "failed_checks", "write_class_report"]

REPORT_COLUMNS = [
    "notebook",
    "cell",
    "kind",
    "max_score",
    "scored",
    "pending",
    "held",
    "mean",
    "median",
    "full_marks_share",
    "zero_share",
    "failures",
    "most_failed_check",
    "most_common_message",
]


@dataclass
class Check:
    """One line of a test cell that raised, and how often, for how many students."""

    cell: str
    line: str
    hidden: bool
    students: list[str] = field(default_factory=list)
    messages: Counter = field(default_factory=Counter)


@dataclass
class QuestionStats:
    """One graded cell (or the total, ``cell`` None) across the class."""

    cell: Cell | None
    max_score: float
    scores: list[float]  # of the scored submissions
    pending: int
    held: int
    checks: list[Check] = field(default_factory=list)

    @property
    def name(self) -> str:
        """The cell's grade id, or ``total``."""
        return self.cell.name if self.cell else "total"

    @property
    def mean(self) -> float | None:
        """Mean score of the scored submissions."""
        return statistics.fmean(self.scores) if self.scores else None

    @property
    def median(self) -> float | None:
        """Median score of the scored submissions."""
        return statistics.median(self.scores) if self.scores else None

    @property
    def full_share(self) -> float | None:
        """Share of the scored submissions with full marks."""
        return sum(s >= self.max_score for s in self.scores) / len(self.scores) if self.scores else None

    @property
    def zero_share(self) -> float | None:
        """Share of the scored submissions with no points."""
        return sum(s == 0 for s in self.scores) / len(self.scores) if self.scores else None

    @property
    def failures(self) -> int:
        """Students for whom some check of this cell raised."""
        return len({s for check in self.checks for s in check.students})


def _message(output: dict) -> str:
    """An error's first line, its numbers made ``#`` so that the same mistake on random inputs counts once."""
    text = f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".splitlines()[0]
    return re.sub(r"(?<![\w.])-?\d+(\.\d+)?(e-?\d+)?(?!\w)", "#", text)[:300]


def failed_checks(course: Course, results: list[StudentResult]) -> dict[str, list[Check]]:
    """For each test cell, the lines that raised in the students' autograded notebooks, most frequent first."""
    tests = {(c.notebook, c.name) for c in course.cells if c.kind == "auto"}
    checks: dict[tuple[str, str], Check] = {}
    for result in results:
        for path in sorted(course.path("autograded", result.student).glob("*.ipynb")) if result.submitted else []:
            for cell in json.loads(path.read_text()).get("cells", []):
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if (path.stem, grade_id) not in tests:
                    continue
                source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
                for output in cell.get("outputs", []):
                    if output.get("output_type") != "error":
                        continue
                    number = failing_line(output, cell.get("execution_count"))
                    lines = source.splitlines()
                    line = lines[number - 1].strip() if number and number <= len(lines) else "(line unknown)"
                    hidden = bool(number) and number in hidden_line_numbers(source)
                    check = checks.setdefault((grade_id, line), Check(grade_id, line, hidden))
                    check.students.append(result.student)
                    check.messages[_message(output)] += 1
    by_cell: dict[str, list[Check]] = {}
    for check in sorted(checks.values(), key=lambda c: (-len(c.students), c.cell, c.line)):
        by_cell.setdefault(check.cell, []).append(check)
    return by_cell


def class_statistics(course: Course, results: list[StudentResult]) -> list[QuestionStats]:
    """One entry per graded cell, then the total (scores after late penalties)."""
    counted = [r for r in results if r.submitted]
    checks = failed_checks(course, counted)
    stats = []
    for index, cell in enumerate(course.cells):
        states = [r.cells[index] for r in counted]
        stats.append(
            QuestionStats(
                cell,
                cell.points,
                [s.score for s in states if s.state == "graded"],
                sum(s.state == "pending" for s in states),
                sum(s.state == "held" for s in states),
                checks.get(cell.name, []),
            )
        )
    final = [r for r in counted if not r.pending_points]
    total = QuestionStats(
        None,
        sum(c.points for c in course.cells),
        [r.score for r in final],
        len(counted) - len(final),
        sum(any(c.state == "held" for c in r.cells) for r in counted),
    )
    return [*stats, total]


def _report_row(stat: QuestionStats) -> list[str]:
    """One row of report.csv."""
    top = stat.checks[0] if stat.checks else None

    def number(value: float | None) -> str:
        return "" if value is None else f"{round(value, 4):g}"

    return [
        stat.cell.notebook if stat.cell else "",
        stat.name,
        stat.cell.kind if stat.cell else "",
        f"{stat.max_score:g}",
        str(len(stat.scores)),
        str(stat.pending),
        str(stat.held),
        number(stat.mean),
        number(stat.median),
        number(stat.full_share),
        number(stat.zero_share),
        str(stat.failures),
        f"{top.line}{' (hidden test)' if top.hidden else ''}" if top else "",
        top.messages.most_common(1)[0][0] if top else "",
    ]


def _histogram(scores: list[float], maximum: float, width: float = 2.6, height: float = 1.1) -> str:
    """The distribution of scores from 0 to ``maximum`` as a small bar chart."""

    from matplotlib.ticker import MaxNLocator

    def draw(axes: Any) -> None:
        values = Counter(scores)
        axes.bar(list(values), list(values.values()), width=max(maximum / 20, 0.1), color="#4c72b0")
        axes.set_xlim(-maximum / 20 - 0.1, maximum * 1.05 + 0.1)
        axes.set_ylabel("students")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.spines[["top", "right"]].set_visible(False)

    return svg(draw, width, height)


def _times_plot(seconds: list[float]) -> str:
    """Grading time per student as a histogram."""

    from matplotlib.ticker import MaxNLocator

    def draw(axes: Any) -> None:
        axes.hist(seconds, bins=min(20, max(5, len(seconds))), color="#55a868")
        axes.set_xlabel("seconds to grade one student")
        axes.set_ylabel("students")
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.spines[["top", "right"]].set_visible(False)

    return svg(draw, 5, 1.8)


def write_class_report(course: Course, results: list[StudentResult], out: Path) -> list[Path]:
    """report.html and report.csv in ``out``."""
    stats = class_statistics(course, results)
    report_csv = write_csv(out / "report.csv", REPORT_COLUMNS, [_report_row(s) for s in stats])
    timed = sorted(((r.report.seconds, r.student) for r in results if r.report.seconds), reverse=True)
    page = render(
        "report.html.j2",
        assignment=course.assignment,
        students=len(results),
        submitted=sum(r.submitted for r in results),
        late=sum(bool(r.lateness and r.lateness.percent) for r in results),
        questions=stats[:-1],
        total=stats[-1],
        plots={s.name: _histogram(s.scores, s.max_score) for s in stats[:-1]},
        total_plot=_histogram(stats[-1].scores, stats[-1].max_score, 5, 1.8),
        checks=sorted((c for s in stats for c in s.checks), key=lambda c: -len(c.students)),
        times=timed,
        times_plot=_times_plot([t for t, _ in timed]) if timed else "",
        time_summary=(statistics.fmean(t for t, _ in timed), statistics.median(t for t, _ in timed)) if timed else None,
    )
    report_html = write_atomically(out / "report.html", lambda handle: handle.write(page))
    return [report_html, report_csv]
