"""The assignment as the instructor wrote it: source notebooks, graded cells, hidden tests.

Everything grading knows about an assignment comes from its nbgrader source notebooks in
``solutions/<assignment>/`` and from the release students received; this module reads
both. The hidden-test markers are defined here once, for the feedback filter and for the
check that no feedback page shows a hidden line.
"""

from __future__ import annotations

import json
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
    "graded_cells",
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
