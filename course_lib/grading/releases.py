"""The student releases: ``exercises/<assignment>/`` generated from ``solutions/<assignment>/``.

Students get what nbgrader's ``generate_assignment`` makes of the source notebooks
(solutions and hidden tests removed). The releases are committed, so that students need no
nbgrader; :func:`stale_releases` says when one no longer matches its source.

Each language has its releases: English in ``exercises/<assignment>/``, the others in
``exercises/<language>/<assignment>/`` (:func:`release_folder`), each made the same way from the
source in that language (:func:`course_lib.grading.translations.translated_source`).
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError
from course_lib.grading.assignment import SOLUTIONS
from course_lib.grading.course import COURSE_ID, last_error, put_scripts_on_path
from course_lib.grading.translations import LOCALES, SOURCE_LANGUAGE, translated_source

__all__ = ["EXERCISES", "comparable", "release_assignments", "release_folder", "stale_releases"]

EXERCISES = PROJECT_ROOT / "exercises"


def release_folder(language: str, exercises: Path = EXERCISES) -> Path:
    """Where the releases in ``language`` are kept: ``exercises/`` for English, ``exercises/<language>/`` else."""
    return exercises if language == SOURCE_LANGUAGE else exercises / language


def _generate_releases(
    assignments: list[str], workdir: Path, solutions: Path, language: str = SOURCE_LANGUAGE, locales: Path = LOCALES
) -> Path:
    """``generate_assignment`` for each assignment in one scratch course, in this process (fast)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    put_scripts_on_path()
    for assignment in assignments:
        translated_source(assignment, language, workdir / "source" / assignment, solutions, locales)
    config = Config()
    config.CourseDirectory.root = str(workdir)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = "sqlite:///" + str(workdir / "gradebook.db")
    api = NbGraderAPI(config=config)
    for assignment in assignments:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise GradingError(
                f"nbgrader generate_assignment failed for {assignment}: "
                f"{last_error(result.get('error', '') + result.get('log', ''))}"
            )
    return workdir / "release"


def release_assignments(
    assignments: list[str],
    exercises: Path,
    solutions: Path = SOLUTIONS,
    language: str = SOURCE_LANGUAGE,
    locales: Path = LOCALES,
) -> list[Path]:
    """Write the student version of each ``solutions/ASSIGNMENT``, in ``language``, to ``exercises/ASSIGNMENT``
    (``exercises`` being the language's folder, :func:`release_folder`)."""
    targets = []
    with tempfile.TemporaryDirectory(prefix="course-release-") as workdir:
        released = _generate_releases(assignments, Path(workdir), solutions, language, locales)
        for assignment in assignments:
            target = exercises / assignment
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(released / assignment, target)
            targets.append(target)
    return targets


def comparable(path: Path) -> list:
    """A notebook's content without volatile metadata: cell types, sources and nbgrader metadata."""
    notebook = json.loads(path.read_text())
    return [
        (cell["cell_type"], "".join(cell["source"]), cell.get("metadata", {}).get("nbgrader"))
        for cell in notebook["cells"]
    ]


def stale_releases(
    assignments: list[str],
    exercises: Path,
    solutions: Path = SOLUTIONS,
    language: str = SOURCE_LANGUAGE,
    locales: Path = LOCALES,
) -> dict[str, str]:
    """Assignments whose folder in ``exercises`` differs from a fresh release in ``language`` (name -> why)."""
    stale = {}
    with tempfile.TemporaryDirectory(prefix="course-release-check-") as workdir:
        released = _generate_releases(assignments, Path(workdir), solutions, language, locales)
        for assignment in assignments:
            why = _difference(released / assignment, exercises / assignment, assignment)
            if why:
                stale[assignment] = why
    return stale


def _difference(fresh: Path, current: Path, assignment: str) -> str | None:
    """Why the committed release ``current`` differs from the ``fresh`` one, or None when it does not."""
    names = sorted(p.name for p in fresh.rglob("*") if p.is_file())
    present = sorted(p.name for p in current.rglob("*") if p.is_file()) if current.is_dir() else []
    if names != present:
        return f"files {present} instead of {names}"
    why = None
    for name in names:
        if name.endswith(".ipynb") and comparable(fresh / name) != comparable(current / name):
            why = f"{name} differs from its source in solutions/{assignment}"
        elif not name.endswith(".ipynb") and (fresh / name).read_bytes() != (current / name).read_bytes():
            why = f"{name} differs"
    return why
