"""Students' files as they arrive: nbgrader's layout, a folder per student, flat files, zips.

Only the assignment's expected notebooks are ever graded; anything else a student hands in
(a ``numpy.py`` that would shadow numpy, data, a renamed copy) is listed, never placed.
Student ids come from folder and file names, so they are checked before they name a folder.

Each submission also records when it was handed in, for the late policy: from ``timestamp.txt``
in nbgrader's layout (nbgrader's ``collect`` writes it; one in a student's own folder is never
trusted), else from the time of its notebooks in a zip (LMS exports keep the upload times there,
in the server's time zone, to the even second).
"""

from __future__ import annotations

import csv
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from course_lib.grading import GradingError
from course_lib.grading.late import TIMEZONE, parse_time, zone

__all__ = ["DEFAULT_PATTERN", "MAX_NOTEBOOK_BYTES", "Submission", "collect_submissions", "read_roster"]

DEFAULT_PATTERN = "{student}_{notebook}.ipynb"
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024


@dataclass
class Submission:
    """One student's notebooks (name without .ipynb -> file), what is wrong with them, and when they came."""

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    submitted_at: datetime | None = None
    submitted_from: str = ""  # where the time comes from: timestamp.txt, the zip, --submitted-at
    place: str = "{notebook}.ipynb"  # where a notebook of this student belongs, relative to the submissions
    renamed: dict[str, str] = field(default_factory=dict)  # flat layout: a loosely named file -> its pattern
    handed_in: list[Path] = field(default_factory=list)  # every file of the student's, graded or not

    def stray_problems(self, notebooks: list[str]) -> list[str]:
        """The files handed in besides the expected notebooks, each counted once, and what to name a
        notebook that looks renamed, in the layout it came in (so that ``--student`` finds it)."""
        missing = [name for name in notebooks if name not in self.files]
        strays = [o for o in self.others if o.endswith(".ipynb")] if missing else []
        problems = []
        if strays:
            names = " or ".join((self.renamed.get(strays[0]) or self.place).format(notebook=name) for name in missing)
            which = "it" if len(strays) == 1 else "the right one"
            problems.append(
                f"unexpected notebook{'s' if len(strays) > 1 else ''} {', '.join(strays[:3])}: renamed? "
                f"Name {which} {names} and grade again with --student {self.student}"
            )
        rest = len(self.others) - len(strays)
        if rest:
            problems.append(f"other files ignored: {rest} (only the assignment's notebooks are graded)")
        return problems


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
    zone_name: str = TIMEZONE,
) -> dict[str, Submission]:
    """Every student's notebooks, from nbgrader's layout, per-student folders, or flat files / a zip.

    Files that are not expected notebooks of the assignment are listed in ``others`` and never graded.
    Times without a zone (a zip's, a timestamp.txt without one) are read in ``zone_name``.
    """
    submissions = Path(submissions)
    if not submissions.exists():
        raise GradingError(f"The submissions {submissions} do not exist: give a folder or a zip file.")
    times: dict[Path, datetime] = {}
    if submissions.is_file():
        if not zipfile.is_zipfile(submissions):
            raise GradingError(f"{submissions} is neither a folder nor a zip file of submissions.")
        workdir = Path(workdir or tempfile.mkdtemp(prefix="course-grade-"))
        submissions, times = _extract_zip(submissions, workdir / "unzipped", zone_name)
    collected = _collect(submissions, assignment, notebooks, pattern, zone_name)
    for submission in collected.values():
        submission.problems += submission.stray_problems(notebooks)
        notebooks_known = [times[path] for path in submission.files.values() if path in times]
        known = notebooks_known or [times[path] for path in submission.handed_in if path in times]
        if submission.submitted_at is None and known:
            submission.submitted_at = max(known)
            submission.submitted_from = "the zip's file times"
    return collected


def _collect(
    submissions: Path, assignment: str, notebooks: list[str], pattern: str, zone_name: str
) -> dict[str, Submission]:
    """The submissions in a folder (or in its single top folder, as zips often have)."""
    collected: dict[str, Submission] = {}
    top = sorted(p for p in submissions.iterdir() if _visible(p.relative_to(submissions)))
    folders = [p for p in top if p.is_dir()]
    files = [p for p in top if p.is_file()]
    if len(folders) == 1 and not files and not _student_folder(folders[0], assignment, notebooks):
        return _collect(folders[0], assignment, notebooks, pattern, zone_name)  # e.g. a zip's single top folder
    for folder in folders:
        student = safe_student_id(folder.name)
        if student is None:
            continue
        submission = collected.setdefault(student, Submission(student))
        if (folder / assignment).is_dir():
            submission.place = f"{folder.name}/{assignment}/{{notebook}}.ipynb"
            _add_folder(submission, folder / assignment, notebooks)
            _read_timestamp(submission, folder / assignment / "timestamp.txt", zone_name)
        else:
            submission.place = f"{folder.name}/{{notebook}}.ipynb"
            _add_folder(submission, folder, notebooks)
    _add_flat_files(collected, files, notebooks, pattern)
    return collected


def _read_timestamp(submission: Submission, path: Path, zone_name: str) -> None:
    """The submission time nbgrader's ``collect`` wrote; an unreadable one is reported, not fatal."""
    if "timestamp.txt" in submission.others:
        submission.others.remove("timestamp.txt")
    if not path.is_file():
        return
    try:
        submission.submitted_at = parse_time(path.read_text(errors="replace")[:100], zone_name, str(path))
        submission.submitted_from = "timestamp.txt"
    except GradingError as error:
        submission.problems.append(f"submission time unknown: {error}")


def _visible(path: Path) -> bool:
    """Hidden files and the ``__MACOSX`` folders of zips made on a Mac are nobody's submission."""
    return not any(part.startswith((".", "__MACOSX")) for part in path.parts)


def _student_folder(folder: Path, assignment: str, notebooks: list[str]) -> bool:
    """Whether a folder holds one student's work (rather than everybody's, one level down)."""
    return (folder / assignment).is_dir() or any((folder / f"{name}.ipynb").is_file() for name in notebooks)


def _extract_zip(archive: Path, target: Path, zone_name: str) -> tuple[Path, dict[Path, datetime]]:
    """Extract the files, refusing paths that leave the target and oversized members; return the
    folder and each extracted file's time in the zip (zips store local times without a zone)."""
    target.mkdir(parents=True, exist_ok=True)
    times = {}
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
            times[destination] = datetime(*member.date_time, tzinfo=zone(zone_name))
    return target, times


def _add_folder(submission: Submission, folder: Path, notebooks: list[str]) -> None:
    """One student's folder: expected notebooks at its top level, everything else in ``others``."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not _visible(path.relative_to(folder)):
            continue
        submission.handed_in.append(path)
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
    """Flat files named by ``pattern``; a name that matches only loosely (renamed) goes to ``others``,
    remembered with the name it should have had (the notebook's part of it replaced)."""
    expected, anything = _pattern_regex(pattern, notebooks), _pattern_regex(pattern, None)
    for path in files:
        match = expected.match(path.name) or anything.match(path.name)
        student = safe_student_id(match["student"]) if match else None
        if student is None:
            continue
        submission = collected.setdefault(student, Submission(student))
        submission.handed_in.append(path)
        submission.place = pattern.replace("{student}", student).replace("*", "…")
        if match["notebook"] in notebooks and path.suffix == ".ipynb":
            submission.files[match["notebook"]] = path
            continue
        submission.others.append(path.name)
        if path.suffix == ".ipynb":
            start, end = match.span("notebook")
            before, after = (
                part.replace("{", "{{").replace("}", "}}") for part in (path.name[:start], path.name[end:])
            )
            submission.renamed[path.name] = before + "{notebook}" + after


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
