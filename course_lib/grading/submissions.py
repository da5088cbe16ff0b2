"""Students' files as they arrive: nbgrader's layout, a folder per student, flat files, zips.

Only the assignment's expected notebooks are ever graded; anything else a student hands in
(a ``numpy.py`` that would shadow numpy, data, a renamed copy) is listed, never placed.
Student ids come from folder and file names, so they are checked before they name a folder.
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from course_lib.grading import GradingError

__all__ = ["DEFAULT_PATTERN", "MAX_NOTEBOOK_BYTES", "Submission", "collect_submissions", "read_roster"]

DEFAULT_PATTERN = "{student}_{notebook}.ipynb"
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass
class Submission:
    """One student's notebooks (name without .ipynb -> file) and what is wrong with them."""

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


def safe_student_id(name: str) -> str | None:
    """The id, stripped, when it is safe as a folder name and gradebook key; else None."""
    name = name.strip()
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*", name) else None


def collect_submissions(
    submissions: Path,
    assignment: str,
    notebooks: list[str],
    pattern: str = DEFAULT_PATTERN,
    workdir: Path | None = None,
) -> dict[str, Submission]:
    """Every student's notebooks, from nbgrader's layout, per-student folders, or flat files / a zip.

    Files that are not expected notebooks of the assignment are listed in ``others`` and never graded.
    """
    submissions = Path(submissions)
    if not submissions.exists():
        raise GradingError(f"The submissions {submissions} do not exist: give a folder or a zip file.")
    if submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise GradingError(f"{submissions} is neither a folder nor a zip file of submissions.")
        workdir = Path(workdir or tempfile.mkdtemp(prefix="course-grade-"))
        submissions = _extract_zip(submissions, workdir / "unzipped")
    collected: dict[str, Submission] = {}
    top = sorted(p for p in submissions.iterdir() if _visible(p.relative_to(submissions)))
    folders = [p for p in top if p.is_dir()]
    files = [p for p in top if p.is_file()]
    if len(folders) == 1 and not files and not _student_folder(folders[0], assignment, notebooks):
        return collect_submissions(folders[0], assignment, notebooks, pattern)  # e.g. a zip's single top folder
    for folder in folders:
        student = safe_student_id(folder.name)
        if student is None:
            continue
        inner = folder / assignment if (folder / assignment).is_dir() else folder
        _add_folder(collected.setdefault(student, Submission(student)), inner, notebooks)
    _add_flat_files(collected, files, notebooks, pattern)
    return collected


def _visible(path: Path) -> bool:
    """Hidden files and the ``__MACOSX`` folders of zips made on a Mac are nobody's submission."""
    return not any(part.startswith((".", "__MACOSX")) for part in path.parts)


def _student_folder(folder: Path, assignment: str, notebooks: list[str]) -> bool:
    """Whether a folder holds one student's work (rather than everybody's, one level down)."""
    return (folder / assignment).is_dir() or any((folder / f"{name}.ipynb").is_file() for name in notebooks)


def _extract_zip(archive: Path, target: Path) -> Path:
    """Extract notebooks only, refusing paths that leave the target and oversized members."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zipped:
        for member in zipped.infolist():
            name = Path(member.filename)
            if member.is_dir() or name.is_absolute() or ".." in name.parts or not _visible(name):
                continue
            if member.file_size > MAX_NOTEBOOK_BYTES:
                continue
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            with zipped.open(member) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
    return target


def _add_folder(submission: Submission, folder: Path, notebooks: list[str]) -> None:
    """One student's folder: expected notebooks at its top level, everything else in ``others``."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not _visible(path.relative_to(folder)):
            continue
        if path.suffix == ".ipynb" and path.parent == folder and path.stem in notebooks:
            submission.files[path.stem] = path
        else:
            submission.others.append(str(path.relative_to(folder)))


def _pattern_regex(pattern: str, notebooks: list[str] | None) -> re.Pattern:
    """The file-name pattern as a regex; with ``notebooks`` None, any notebook name and any suffix."""
    if "{student}" not in pattern or "{notebook}" not in pattern:
        raise GradingError(f"The pattern {pattern!r} must contain {{student}} and {{notebook}}.")
    if notebooks is None and pattern.endswith(".ipynb"):
        pattern = pattern[: -len(".ipynb")]
    parts = re.split(r"(\{student\}|\{notebook\}|\*)", pattern)
    names = "|".join(re.escape(n) for n in sorted(notebooks, key=len, reverse=True)) if notebooks else ".+?"
    regex = {"{student}": r"(?P<student>.+?)", "{notebook}": f"(?P<notebook>{names})", "*": ".*?"}
    suffix = r"\Z" if notebooks else r"(\.[^.]*)?\Z"
    return re.compile("".join(regex.get(part, re.escape(part)) for part in parts) + suffix)


def _add_flat_files(collected: dict[str, Submission], files: list[Path], notebooks: list[str], pattern: str) -> None:
    """Flat files named by ``pattern``; a name that matches only loosely (renamed) goes to ``others``."""
    expected, anything = _pattern_regex(pattern, notebooks), _pattern_regex(pattern, None)
    for path in files:
        match = expected.match(path.name) or anything.match(path.name)
        student = safe_student_id(match["student"]) if match else None
        if student is None:
            continue
        submission = collected.setdefault(student, Submission(student))
        if match["notebook"] in notebooks and path.suffix == ".ipynb":
            submission.files[match["notebook"]] = path
        else:
            submission.others.append(path.name)


def read_roster(path: Path) -> list[dict]:
    """Students from a CSV with a column ``id`` (or ``student_id``) and optional names and email."""
    try:
        rows = list(csv.DictReader(open(path, newline="", encoding="utf-8-sig")))
    except OSError as error:
        raise GradingError(f"Cannot read the student list {path}: {error.strerror}.") from None
    students = []
    for row in rows:
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        identifier = safe_student_id(row.get("id") or row.get("student_id") or "")
        if identifier is None:
            raise GradingError(
                f"{path}: every row needs an id (column 'id' or 'student_id') of letters, digits, "
                f"'_', '.', '@', '+' or '-'; got {row}."
            )
        students.append({**row, "id": identifier})
    return students
