"""What is wrong with a submitted notebook, and the repairs that let nbgrader grade it.

nbgrader refuses a whole notebook for some edits (a duplicated grade id, a changed schema
version), silently restores others (edited test cells) and skips deleted test cells. Checking
first turns each into a line of the student's report, and a repair (deleted test cells put
back from the release) keeps one bad edit from costing every point.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from course_lib.grading.assignment import Cell, normalised_text
from course_lib.grading.submissions import MAX_NOTEBOOK_BYTES

__all__ = ["check_notebook", "repair_notebook", "restore_test_cells"]


def check_notebook(
    path: Path, expected: list[Cell], tests: dict[str, str] | None = None
) -> tuple[dict | None, list[str]]:
    """Parse a submitted notebook; return it (None if unusable) and what is wrong with it.

    ``tests`` are the released test cells: a submitted test cell that differs is reported
    (nbgrader grades the original in its place).
    """
    notebook, unusable = _read_notebook(path)
    if notebook is None:
        return None, [unusable]
    return notebook, _graded_cell_problems(path.stem, notebook, expected, tests)


def _read_notebook(path: Path) -> tuple[dict | None, str]:
    """The notebook, or None and why it cannot be graded (too large, not JSON, not format 4)."""
    name = path.stem
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, f"{name}.ipynb is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB: not graded"
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, f"{name}.ipynb is not a valid notebook (invalid JSON: {error}): not graded"
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list) or notebook.get("nbformat") != 4:
        return None, f"{name}.ipynb is not a Jupyter notebook in format 4: not graded"
    return notebook, ""


def _graded_cell_problems(name: str, notebook: dict, expected: list[Cell], tests: dict[str, str] | None) -> list[str]:
    """Test cells edited, graded cells deleted or duplicated, in words."""
    problems = []
    seen: dict[str, int] = {}
    edited = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if isinstance(meta, dict) and meta.get("grade_id"):
            grade_id = meta["grade_id"]
            seen[grade_id] = seen.get(grade_id, 0) + 1
            if (
                tests
                and grade_id in tests
                and seen[grade_id] == 1
                and (normalised_text(cell) != tests[grade_id] or cell.get("cell_type") != "code")
            ):
                edited.append(grade_id)
    if edited:
        problems.append(f"{name}: test cells {', '.join(edited)} were edited (the originals were graded)")
    for cell in expected:
        count = seen.get(cell.name, 0)
        if count == 0:
            problems.append(
                f"{name}: graded cell {cell.name!r} was deleted or its metadata removed (restored for grading)"
            )
        elif count > 1:
            problems.append(f"{name}: graded cell {cell.name!r} appears {count} times (the copies are not graded)")
    return problems


def repair_notebook(notebook: dict, expected: list[Cell]) -> list[str]:
    """Undo edits that would stop nbgrader: duplicated grade ids, changed schema versions.

    nbgrader itself restores the content, type and points of test cells from the gradebook;
    what remains are edits that make it refuse the whole notebook.
    """
    changes, seen = [], set()
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if not isinstance(meta, dict):
            continue
        grade_id = meta.get("grade_id")
        if grade_id in seen:
            del cell["metadata"]["nbgrader"]
            continue
        seen.add(grade_id)
        if meta.get("schema_version") != 3:
            changes.append(f"cell {grade_id!r}: nbgrader schema_version {meta.get('schema_version')!r} reset to 3")
            meta["schema_version"] = 3
    return changes


def restore_test_cells(notebook: dict, release: dict) -> None:
    """Put back the test cells a student deleted (or stripped of their metadata), as released, after
    the cell that precedes them in the release: nbgrader only overwrites test cells it finds, so a
    deleted one would never run, and the tests after it that still pass would lose nothing."""
    present = {_grade_id(cell) for cell in notebook["cells"]} - {None}
    ids = {cell.get("id") for cell in notebook["cells"]}
    for index, cell in enumerate(release["cells"]):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade") or meta.get("solution") or meta.get("grade_id") in present:
            continue
        restored = copy.deepcopy(cell)
        if restored.get("id") in ids:
            restored["id"] = f"{restored['id']}-restored"
        notebook["cells"].insert(_position_after(notebook, release["cells"][:index]), restored)
        present.add(meta["grade_id"])


def _grade_id(cell: Any) -> str | None:
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
    return meta.get("grade_id") if isinstance(meta, dict) else None


def _position_after(notebook: dict, earlier: list[dict]) -> int:
    """Where a cell goes: after the last of the release's ``earlier`` cells the notebook still has
    (matched by grade id, else by cell id), else at the top."""
    for cell in reversed(earlier):
        for index, mine in enumerate(notebook["cells"]):
            if (_grade_id(cell) and _grade_id(mine) == _grade_id(cell)) or (
                cell.get("id") and isinstance(mine, dict) and mine.get("id") == cell.get("id")
            ):
                return index + 1
    return 0
