"""The assignment as the instructor wrote it: source notebooks, graded cells, hidden tests.

Everything grading knows about an assignment comes from its nbgrader source notebooks in
``solutions/<assignment>/`` and from the release students received; this module reads
both. The hidden-test markers are defined here once, for the feedback filter and for the
check that no feedback page shows a hidden line.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError

__all__ = [
    "HIDDEN_BEGIN",
    "HIDDEN_END",
    "SOLUTIONS",
    "Cell",
    "assignment_source",
    "failing_line",
    "graded_cells",
    "hidden_line_numbers",
    "hidden_test_lines",
    "normalised_text",
    "released_tests",
]

SOLUTIONS = PROJECT_ROOT / "solutions"
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"


@dataclass
class Cell:
    """A graded cell of the source notebook."""

    notebook: str
    name: str
    kind: str  # "auto" (a test cell) or "manual" (a written answer or a manually graded cell)
    points: float
    source: str
    hidden_lines: list[str]


def assignment_source(assignment: str, solutions: Path = SOLUTIONS) -> Path:
    """The assignment's source folder, or an error that lists the assignments there are."""
    folder = solutions / assignment
    if not folder.is_dir() or not list(folder.glob("*.ipynb")):
        known = sorted(p.name for p in solutions.iterdir() if p.is_dir()) if solutions.is_dir() else []
        raise GradingError(f"No assignment {assignment!r} in {solutions}; choose one of: {', '.join(known) or 'none'}.")
    return folder


def graded_cells(source: Path) -> list[Cell]:
    """The graded cells of every notebook of an assignment's source folder, in order."""
    cells = []
    for path in sorted(source.glob("*.ipynb")):
        notebook = json.loads(path.read_text())
        for cell in notebook["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if not meta.get("grade"):
                continue
            text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            kind = "auto" if cell["cell_type"] == "code" and not meta.get("solution") else "manual"
            cells.append(Cell(path.stem, meta["grade_id"], kind, float(meta["points"]), text, hidden_test_lines(text)))
    return cells


def hidden_test_lines(source: str) -> list[str]:
    """The non-trivial lines between BEGIN and END HIDDEN TESTS that are not also visible."""
    hidden, visible, inside = [], set(), False
    for line in source.splitlines():
        line = " ".join(line.split())
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside and len(line) > 8:
            hidden.append(line)
        else:
            visible.add(line)
    return [line for line in hidden if line not in visible]


def normalised_text(cell: dict) -> str:
    """A cell's source with all whitespace runs made one space, to compare cells across edits."""
    source = cell.get("source", "")
    return " ".join(("".join(source) if isinstance(source, list) else str(source)).split())


def released_tests(release: Path) -> dict[str, str]:
    """The test cells of a released notebook as students receive them (grade id -> normalised text)."""
    notebook = json.loads(release.read_text())
    return {
        cell["metadata"]["nbgrader"]["grade_id"]: normalised_text(cell)
        for cell in notebook["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
        and not cell["metadata"]["nbgrader"].get("solution")
    }


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Where IPython's traceback names a line of a cell: "Cell In[8], line 4" (IPython 8),
# "Input In [8], in <cell line: 4>()" (IPython 7.x), "<ipython-input-8-...> in <module>" then "----> 4".
_CELL_LINE = re.compile(r"^(?:Cell In\[(\d+)\], line (\d+)|Input In \[(\d+)\].*<cell line: (\d+)>)", re.MULTILINE)
_ARROW_LINE = re.compile(r"^-+> ?(\d+)", re.MULTILINE)
# Chained exceptions: the last part of the traceback is the exception that left the cell.
_CHAINED = re.compile(
    r"During handling of the above exception, another exception occurred:|"
    r"The above exception was the direct cause of the following exception:"
)


def hidden_line_numbers(source: str) -> set[int]:
    """The numbers (from 1) of the lines between the hidden-test markers."""
    numbers, inside = set(), False
    for number, line in enumerate(source.splitlines(), start=1):
        if HIDDEN_BEGIN in line:
            inside = True
        elif HIDDEN_END in line:
            inside = False
        elif inside:
            numbers.add(number)
    return numbers


def failing_line(output: dict, execution_count: int | None = None) -> int | None:
    """The line of the running cell that raised the error ``output``, or None if the traceback does not say.

    The exception that left the cell is the last of a chain, and its first frame is the cell's own
    (later frames are in the checks or in the student's functions, defined in other cells).
    """
    text = _CHAINED.split(_ANSI.sub("", "\n".join(output.get("traceback", []))))[-1]
    for found in _CELL_LINE.finditer(text):
        count, line = found[1] or found[3], found[2] or found[4]
        if execution_count is None or int(count) == execution_count:
            return int(line)
    if "<ipython-input-" in text:
        arrow = _ARROW_LINE.search(text)
        return int(arrow[1]) if arrow else None
    return None
