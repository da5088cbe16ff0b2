"""The instructor's grading pipeline around nbgrader: one command from submissions to grades.

``python -m course_lib.grade ASSIGNMENT SUBMISSIONS --out DIR`` (alias ``course-grade``)

1. keeps a course directory (``DIR`` or ``--course``) with its ``nbgrader_config.py`` and
   sqlite gradebook, and releases ``solutions/ASSIGNMENT`` into it (``generate_assignment``);
2. collects the submissions: nbgrader's layout ``<student>/<ASSIGNMENT>/<nb>.ipynb``, one
   folder per student ``<student>/<nb>.ipynb``, or a flat folder or zip of
   ``<student>_<nb>.ipynb`` files (``--pattern``), and registers the students;
3. checks each notebook before grading (valid JSON, expected name, test cells intact) and
   copies only the expected notebooks into ``submitted/``;
4. autogrades each student in its own ``nbgrader autograde --student`` process, the kernel
   in the sandbox of :mod:`course_lib.sandbox`, so one bad submission cannot stop the batch;
5. writes feedback HTML without hidden tests (checked after writing), ``grades.csv`` and
   ``questions.csv``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html.parser
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor
from traitlets import Unicode

from course_lib import PROJECT_ROOT
from course_lib.errors import CourseError
from course_lib.sandbox import audit_notebook

__all__ = [
    "DEFAULT_PATTERN",
    "GradingExecute",
    "HideTestsInFeedback",
    "KeepStderrFromFailing",
    "Submission",
    "choose_kernel_manager",
    "collect_submissions",
    "grade",
    "main",
]

SOLUTIONS = PROJECT_ROOT / "solutions"
COURSE_ID = "course"
DEFAULT_PATTERN = "{student}_{notebook}.ipynb"
SANDBOXED = "course_lib.sandbox.SandboxedKernelManager"
PLAIN = "jupyter_client.manager.AsyncKernelManager"
CELL_TIMEOUT = 600
STUDENT_TIMEOUT = 900
MAX_NOTEBOOK_BYTES = 50 * 1024 * 1024
HIDDEN_BEGIN, HIDDEN_END = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
GRADES_COLUMNS = ["student_id", "score", "max_score", "auto_score", "auto_max_score", "manual_max_score",
                  "needs_manual_grade", "status", "problems"]
QUESTIONS_COLUMNS = ["student_id", "notebook", "cell", "kind", "score", "max_score", "needs_manual_grade"]


class GradingError(CourseError):
    """The grading command cannot run as asked (assignment, paths, options)."""


# ---------------------------------------------------------------- nbgrader plug-ins


class GradingExecute(Execute):
    """nbgrader's Execute with the kernel manager taken from the config.

    nbgrader's Execute passes ``kernel_manager_class`` as a constructor argument, which
    overrides ``c.Execute.kernel_manager_class``; this class reads ``kernel_manager``
    (an import string) instead, so the generated config chooses the sandbox.
    """

    kernel_manager = Unicode(PLAIN, help="Import string of the kernel manager class.").tag(config=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from traitlets.utils.importstring import import_item

        self.kernel_manager_class = import_item(self.kernel_manager)


class KeepStderrFromFailing(NbGraderPreprocessor):
    """Correct code that warns keeps its points: stderr text in a test cell becomes stdout.

    nbgrader gives 0 points to a test cell with any stderr output, so a library's
    deprecation warning would fail a right answer. Errors (exceptions) still fail.
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            for output in cell.get("outputs", []):
                if output.get("output_type") == "stream" and output.get("name") == "stderr":
                    output["name"] = "stdout"
                    output["text"] = "".join(f"[stderr] {line}\n" for line in output["text"].splitlines())
        return cell, resources


class HideTestsInFeedback(NbGraderPreprocessor):
    """Feedback shows neither hidden tests nor anything they print or quote.

    Hidden regions are cut from the cell sources; a test cell with hidden tests shows none
    of its printed output (a hidden test, or the student's code it calls, could print the
    hidden inputs), and an error in a test cell is shown as its one-line message (the
    checks' messages say what to fix).
    """

    NOTE = "[printed output not shown: this cell has hidden tests]\n"

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade"):
            had_hidden = "BEGIN HIDDEN TESTS" in cell.source
            remover = ClearHiddenTests(enforce_metadata=False)
            remover._remove_hidden_test_region(cell)
            shown = []
            for output in cell.get("outputs", []):
                if output.get("output_type") == "error":
                    output["traceback"] = [f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"]
                    shown.append(output)
                elif not had_hidden:
                    shown.append(output)
            if len(shown) < len(cell.get("outputs", [])):
                shown.insert(0, nbformat.v4.new_output("stream", name="stdout", text=self.NOTE))
            cell.outputs = shown
        return cell, resources


# ---------------------------------------------------------------- the kernel manager hook


def choose_kernel_manager(sandbox: bool = True) -> tuple[str, str | None]:
    """The kernel manager that runs student code, and a warning when it is not isolated.

    ``sandbox`` True (the default): the sandbox, or an error that says why it cannot run;
    False: the plain kernel with the grader's rights (trusted notebooks only). Grading
    never falls back to the plain kernel by itself.
    """
    if not sandbox:
        return PLAIN, "sandbox switched off (--no-sandbox): student code ran with the grader's rights"
    try:
        from course_lib import sandbox as sandbox_module

        sandbox_module.check_sandbox()
    except (ImportError, AttributeError, CourseError, OSError, subprocess.SubprocessError) as error:
        raise GradingError(f"No student code was run: {error}") from None
    return SANDBOXED, None


def nbgrader_config(course: Path, kernel_manager: str, cell_timeout: int) -> str:
    """The course directory's nbgrader_config.py."""
    return f'''# Written by course_lib.grade; edit the command's options instead, it rewrites this file.
c = get_config()
c.CourseDirectory.root = {str(course)!r}
c.CourseDirectory.course_id = {COURSE_ID!r}
c.CourseDirectory.db_url = {"sqlite:///" + str(course / "gradebook.db")!r}
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback"]
c.Execute.timeout = {cell_timeout}
c.Execute.raise_on_iopub_timeout = False  # a cell past its time limit scores 0; the notebook is still graded
c.Execute.iopub_timeout = 15  # output of an interrupted slow cell may arrive late; 4 s failed whole notebooks
c.GradingExecute.kernel_manager = {kernel_manager!r}
c.Autograde.autograde_preprocessors = [
    "course_lib.grade.GradingExecute",
    "course_lib.grade.KeepStderrFromFailing",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "course_lib.grade.HideTestsInFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''


# ---------------------------------------------------------------- the assignment


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


# ---------------------------------------------------------------- collecting submissions


@dataclass
class Submission:
    """One student's notebooks (name without .ipynb -> file) and what is wrong with them."""

    student: str
    files: dict[str, Path] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    others: list[str] = field(default_factory=list)


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


def _visible(path: Path) -> bool:
    return not any(part.startswith((".", "__MACOSX")) for part in path.parts)


def _safe_student_id(name: str) -> str | None:
    name = name.strip()
    return name if re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.@+-]*", name) else None


def collect_submissions(submissions: Path, assignment: str, notebooks: list[str],
                        pattern: str = DEFAULT_PATTERN, workdir: Path | None = None) -> dict[str, Submission]:
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
        student = _safe_student_id(folder.name)
        if student is None:
            continue
        inner = folder / assignment if (folder / assignment).is_dir() else folder
        _add_folder(collected.setdefault(student, Submission(student)), inner, notebooks)
    _add_flat_files(collected, files, notebooks, pattern)
    return collected


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
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or not _visible(path.relative_to(folder)):
            continue
        if path.suffix == ".ipynb" and path.parent == folder and path.stem in notebooks:
            submission.files[path.stem] = path
        else:
            submission.others.append(str(path.relative_to(folder)))


def _add_flat_files(collected: dict[str, Submission], files: list[Path], notebooks: list[str], pattern: str) -> None:
    expected, anything = _pattern_regex(pattern, notebooks), _pattern_regex(pattern, None)
    for path in files:
        match = expected.match(path.name) or anything.match(path.name)
        student = _safe_student_id(match["student"]) if match else None
        if student is None:
            continue
        submission = collected.setdefault(student, Submission(student))
        if match["notebook"] in notebooks and path.suffix == ".ipynb":
            submission.files[match["notebook"]] = path
        else:
            submission.others.append(path.name)


# ---------------------------------------------------------------- checking a notebook


def _cell_text(cell: dict) -> str:
    source = cell.get("source", "")
    return " ".join(("".join(source) if isinstance(source, list) else str(source)).split())


def released_tests(release: Path) -> dict[str, str]:
    """The test cells of a released notebook as students receive them (grade id -> normalised text)."""
    notebook = json.loads(release.read_text())
    return {cell["metadata"]["nbgrader"]["grade_id"]: _cell_text(cell) for cell in notebook["cells"]
            if cell.get("metadata", {}).get("nbgrader", {}).get("grade")
            and not cell["metadata"]["nbgrader"].get("solution")}


def check_notebook(path: Path, expected: list[Cell], tests: dict[str, str] | None = None) -> tuple[dict | None, list[str]]:
    """Parse a submitted notebook; return it (None if unusable) and what is wrong with it.

    ``tests`` are the released test cells: a submitted test cell that differs is reported
    (nbgrader grades the original in its place).
    """
    name = path.stem
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None, [f"{name}.ipynb is larger than {MAX_NOTEBOOK_BYTES // 2**20} MiB: not graded"]
    try:
        notebook = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        return None, [f"{name}.ipynb is not a valid notebook (invalid JSON: {error}): not graded"]
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list) or \
            notebook.get("nbformat") != 4:
        return None, [f"{name}.ipynb is not a Jupyter notebook in format 4: not graded"]
    problems = []
    seen: dict[str, int] = {}
    edited = []
    for cell in notebook["cells"]:
        meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell, dict) else None
        if isinstance(meta, dict) and meta.get("grade_id"):
            grade_id = meta["grade_id"]
            seen[grade_id] = seen.get(grade_id, 0) + 1
            if tests and grade_id in tests and seen[grade_id] == 1 and \
                    (_cell_text(cell) != tests[grade_id] or cell.get("cell_type") != "code"):
                edited.append(grade_id)
    if edited:
        problems.append(f"{name}: test cells {', '.join(edited)} were edited (the originals were graded)")
    for cell in expected:
        count = seen.get(cell.name, 0)
        if count == 0:
            problems.append(f"{name}: graded cell {cell.name!r} was deleted or its metadata removed (restored for grading)")
        elif count > 1:
            problems.append(f"{name}: graded cell {cell.name!r} appears {count} times (the copies are not graded)")
    return notebook, problems


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


# ---------------------------------------------------------------- the course directory


@dataclass
class Course:
    """A course directory managed by this command."""

    root: Path
    assignment: str
    source: Path
    cells: list[Cell]

    @property
    def notebooks(self) -> list[str]:
        return sorted(p.stem for p in self.source.glob("*.ipynb"))

    @property
    def db_url(self) -> str:
        return "sqlite:///" + str(self.root / "gradebook.db")

    def path(self, kind: str, student: str | None = None) -> Path:
        if student is None:
            return self.root / kind / self.assignment
        return self.root / kind / student / self.assignment


def _tree_hash(folder: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def run_nbgrader(course: Path, args: list[str], log: Path | None = None, timeout: float | None = None) -> tuple[int, str]:
    """Run one nbgrader command in the course directory; return its exit code and log text."""
    command = [sys.executable, "-m", "nbgrader", *args]
    try:
        result = subprocess.run(command, cwd=course, capture_output=True, text=True, timeout=timeout,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        code, text = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        code = -1
        text = (error.stdout or b"").decode(errors="replace") if isinstance(error.stdout, bytes) else (error.stdout or "")
        text += f"\n[course_lib.grade] nbgrader {args[0]} stopped after {timeout:.0f} s\n"
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle:
            handle.write(f"$ nbgrader {' '.join(args)}\n{text}\n[exit code {code}]\n\n")
    return code, text


def prepare_course(root: Path, assignment: str, kernel_manager: str, cell_timeout: int,
                   solutions: Path = SOLUTIONS) -> Course:
    """Create or update the course directory and release the assignment into its gradebook."""
    source = assignment_source(assignment, solutions)
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(nbgrader_config(root.resolve(), kernel_manager, cell_timeout))
    course = Course(root.resolve(), assignment, root.resolve() / "source" / assignment, graded_cells(source))
    stamp = course.root / "logs" / f"{assignment}.source-sha256"
    current = _tree_hash(source)
    if course.source.is_dir() and stamp.exists() and stamp.read_text() == current and \
            course.path("release").is_dir():
        return course
    if course.source.exists():
        shutil.rmtree(course.source)
    shutil.copytree(source, course.source, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    code, text = run_nbgrader(course.root, ["generate_assignment", assignment, "--force", "--create"],
                              course.root / "logs" / f"{assignment}.generate.log")
    if code != 0:
        raise GradingError(f"nbgrader generate_assignment failed for {assignment}: {_last_error(text)} "
                           f"(full log: {course.root / 'logs' / (assignment + '.generate.log')}).")
    stamp.write_text(current)
    return course


def _last_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if "ERROR" in line or "Error" in line]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "no output")[:300]


def register_students(course: Course, students: list[dict]) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        for student in students:
            details = {k: student[k] for k in ("first_name", "last_name", "email") if student.get(k)}
            gradebook.update_or_create_student(student["id"], **details)


def read_roster(path: Path) -> list[dict]:
    """Students from a CSV with a column ``id`` (or ``student_id``) and optional names and email."""
    try:
        rows = list(csv.DictReader(open(path, newline="", encoding="utf-8-sig")))
    except OSError as error:
        raise GradingError(f"Cannot read the student list {path}: {error.strerror}.") from None
    students = []
    for row in rows:
        row = {k.strip().lower(): (v or "").strip() for k, v in row.items() if k}
        identifier = _safe_student_id(row.get("id") or row.get("student_id") or "")
        if identifier is None:
            raise GradingError(f"{path}: every row needs an id (column 'id' or 'student_id') of letters, digits, "
                               f"'_', '.', '@', '+' or '-'; got {row}.")
        students.append({**row, "id": identifier})
    return students


# ---------------------------------------------------------------- grading one student


@dataclass
class Report:
    """What happened to one student's submission."""

    student: str
    status: str = "graded"  # graded | review | not graded | no submission | failed
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0
    log: str = ""


def grade_student(course: Course, submission: Submission, timeout: float, warning: str | None) -> Report:
    """Check and place one student's notebooks, then autograde them in their own nbgrader process."""
    start = time.perf_counter()
    report = Report(submission.student, problems=list(submission.problems))
    log = course.root / "logs" / course.assignment / f"{submission.student}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("")
    report.log = str(log.relative_to(course.root))
    if warning:
        report.problems.append(warning)
    for kind in ("submitted", "autograded", "feedback"):
        shutil.rmtree(course.path(kind, submission.student), ignore_errors=True)
    placed = course.path("submitted", submission.student)
    placed.mkdir(parents=True)
    usable, suspicious = 0, []
    for name in course.notebooks:
        if name not in submission.files:
            report.problems.append(f"missing notebook {name}.ipynb (0 points)")
            continue
        expected = [c for c in course.cells if c.notebook == name]
        tests = released_tests(course.path("release") / f"{name}.ipynb")
        notebook, problems = check_notebook(submission.files[name], expected, tests)
        report.problems += problems
        if notebook is None:
            continue
        report.problems += repair_notebook(notebook, expected)
        suspicious += audit_notebook(notebook, json.loads((course.source / f"{name}.ipynb").read_text()))
        (placed / f"{name}.ipynb").write_text(json.dumps(notebook, indent=1))
        usable += 1
    missing = [n for n in course.notebooks if n not in submission.files]
    strays = [o for o in submission.others if o.endswith(".ipynb")]
    if missing and strays:
        report.problems.append(f"unexpected notebooks {strays[:3]}: renamed? Name them "
                               f"{', '.join(n + '.ipynb' for n in missing)} and re-grade with --student")
    if submission.others:
        report.problems.append(f"{len(submission.others)} other files ignored (only the assignment's notebooks are graded)")
    if usable == 0:
        _remove_submission(course, submission.student)
        report.status = "not graded"
        report.seconds = time.perf_counter() - start
        return report
    (placed / "timestamp.txt").write_text(time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()))
    code, text = run_nbgrader(course.root, ["autograde", course.assignment, "--student", submission.student,
                                            "--force"], log, timeout)
    if code != 0:
        report.status = "failed"
        report.problems.append(f"autograde failed: {_last_error(text)}")
        report.problems += _autograde_warnings(text)
        _remove_submission(course, submission.student)
        report.seconds = time.perf_counter() - start
        return report
    report.problems += _autograde_warnings(text)
    if suspicious:
        report.status = "review"
        report.problems.append("held for review, autograded points withheld until a person has looked "
                               "(set the cells' scores in formgrader): " + "; ".join(suspicious[:5]))
    report.seconds = time.perf_counter() - start
    return report


def write_feedback(course: Course, reports: list[Report], timeout: float) -> None:
    """Feedback HTML for the graded students: one nbgrader call, or one per student if that fails."""
    graded = [r for r in reports if r.status == "graded"]
    if not graded:
        return
    log = course.root / "logs" / course.assignment / "feedback.log"
    args = ["generate_feedback", course.assignment, "--force"]
    if len(graded) == 1:
        args += ["--student", graded[0].student]
    code, _ = run_nbgrader(course.root, args, log, timeout)
    for report in graded:
        if code != 0:
            student_code, text = run_nbgrader(course.root, args[:3] + ["--student", report.student],
                                              course.root / report.log, timeout)
            if student_code != 0:
                report.problems.append(f"feedback not written: {_last_error(text)}")
        report.problems += verify_feedback(course, report.student)


def _autograde_warnings(text: str) -> list[str]:
    """What nbgrader repaired or met, in words: edited test cells, changed points,
    timeouts, a dead kernel, a sandbox killed at its time limit."""
    found = []
    for line in text.splitlines():
        changed = re.search(r"Attribute '(\w+)' for cell (\S+) has changed", line)
        missing = re.search(r"Missing grade cell (\S+)", line)
        if changed and changed[1] == "checksum":
            continue  # every test cell with hidden tests; edits are found by check_notebook
        if changed:
            found.append(f"graded cell {changed[2]}: its {changed[1]} was edited (the original was graded)")
        elif missing:
            found.append(f"graded cell {missing[1]} was missing (the original was graded)")
        elif "CellTimeoutError" in line or "Timeout waiting for execute reply" in line:
            found.append("a cell ran past the time limit")
        elif "Kernel died" in line or "DeadKernelError" in line:
            found.append("the kernel died while grading")
        elif "Killing the kernel's sandbox:" in line:
            found.append("the sandbox was killed: " + line.split("Killing the kernel's sandbox:", 1)[1].strip())
    return list(dict.fromkeys(found))[:10]


def _remove_submission(course: Course, student: str) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        try:
            gradebook.remove_submission(course.assignment, student)
        except MissingEntry:
            pass


class _TextOfHtml(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts = []

    def handle_data(self, data):
        self.parts.append(data)


def verify_feedback(course: Course, student: str) -> list[str]:
    """Withhold any feedback file that shows a line of a hidden test."""
    hidden = [line for cell in course.cells for line in cell.hidden_lines]
    problems = []
    for path in sorted(course.path("feedback", student).glob("*.html")):
        parser = _TextOfHtml()
        parser.feed(path.read_text(encoding="utf-8"))
        text = " ".join("".join(parser.parts).split())
        leaked = [line for line in hidden if line in text]
        if leaked:
            path.unlink()
            problems.append(f"feedback {path.name} withheld: it showed a hidden test ({leaked[0][:60]})")
    return problems


# ---------------------------------------------------------------- student releases


def _generate_releases(assignments: list[str], workdir: Path, solutions: Path) -> Path:
    """``generate_assignment`` for each assignment in one scratch course, in this process (fast)."""
    from nbgrader.apps import NbGraderAPI
    from traitlets.config import Config

    _put_scripts_on_path()
    for assignment in assignments:
        shutil.copytree(assignment_source(assignment, solutions), workdir / "source" / assignment,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    config = Config()
    config.CourseDirectory.root = str(workdir)
    config.CourseDirectory.course_id = COURSE_ID
    config.CourseDirectory.db_url = "sqlite:///" + str(workdir / "gradebook.db")
    api = NbGraderAPI(config=config)
    for assignment in assignments:
        result = api.generate_assignment(assignment, force=True, create=True)
        if not result["success"]:
            raise GradingError(f"nbgrader generate_assignment failed for {assignment}: "
                               f"{_last_error(result.get('error', '') + result.get('log', ''))}")
    return workdir / "release"


def release_assignments(assignments: list[str], exercises: Path, solutions: Path = SOLUTIONS) -> list[Path]:
    """Write the student version of each ``solutions/ASSIGNMENT`` to ``exercises/ASSIGNMENT``."""
    targets = []
    with tempfile.TemporaryDirectory(prefix="course-release-") as workdir:
        released = _generate_releases(assignments, Path(workdir), solutions)
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
    return [(cell["cell_type"], "".join(cell["source"]), cell.get("metadata", {}).get("nbgrader"))
            for cell in notebook["cells"]]


def stale_releases(assignments: list[str], exercises: Path, solutions: Path = SOLUTIONS) -> dict[str, str]:
    """Assignments whose folder in ``exercises`` differs from a fresh release (name -> why)."""
    stale = {}
    with tempfile.TemporaryDirectory(prefix="course-release-check-") as workdir:
        released = _generate_releases(assignments, Path(workdir), solutions)
        for assignment in assignments:
            fresh = released / assignment
            current = exercises / assignment
            names = sorted(p.name for p in fresh.rglob("*") if p.is_file())
            present = sorted(p.name for p in current.rglob("*") if p.is_file()) if current.is_dir() else []
            if names != present:
                stale[assignment] = f"files {present} instead of {names}"
                continue
            for name in names:
                if name.endswith(".ipynb") and comparable(fresh / name) != comparable(current / name):
                    stale[assignment] = f"{name} differs from its source in solutions/{assignment}"
                elif not name.endswith(".ipynb") and (fresh / name).read_bytes() != (current / name).read_bytes():
                    stale[assignment] = f"{name} differs"
    return stale


# ---------------------------------------------------------------- results


def _read_reports(course: Course) -> dict[str, Report]:
    folder = course.root / "reports" / course.assignment
    reports = {}
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else []:
        values = json.loads(path.read_text())
        reports[values["student"]] = Report(**values)
    return reports


def _write_report(course: Course, report: Report) -> None:
    folder = course.root / "reports" / course.assignment
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{report.student}.json").write_text(json.dumps(report.__dict__, indent=1))


def _format(value: float) -> str:
    return f"{value:g}"


def write_results(course: Course, out: Path) -> tuple[Path, Path]:
    """grades.csv (one row per student) and questions.csv (one row per student and graded cell)."""
    from nbgrader.api import Gradebook, MissingEntry

    reports = _read_reports(course)
    cells = {(c.notebook, c.name): c for c in course.cells}
    max_auto = sum(c.points for c in course.cells if c.kind == "auto")
    max_manual = sum(c.points for c in course.cells if c.kind == "manual")
    grades, questions = [], []
    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        students = sorted({s.id for s in gradebook.students} | set(reports))
        for student in students:
            report = reports.get(student, Report(student, status="no submission"))
            try:
                submission = gradebook.find_submission(course.assignment, student)
            except MissingEntry:
                submission = None
            if submission is None and student not in reports:
                report.problems = ["no submission"]
            scores = {}
            if submission is not None:
                for notebook in submission.notebooks:
                    for grade in notebook.grades:
                        scores[(notebook.name, grade.name)] = grade
            auto = manual_needed = 0.0
            total = 0.0
            for (notebook, name), cell in cells.items():
                grade = scores.get((notebook, name))
                score = float(grade.score) if grade is not None else 0.0
                if report.status == "review" and cell.kind == "auto" and grade is not None \
                        and grade.manual_score is None:
                    score = 0.0  # held: a person decides after reading the code
                needs = bool(grade is not None and grade.needs_manual_grade)
                total += score
                if cell.kind == "auto":
                    auto += score
                manual_needed = manual_needed or needs
                questions.append([student, notebook, name, cell.kind, _format(score), _format(cell.points),
                                  str(needs).lower()])
            grades.append([student, _format(total), _format(max_auto + max_manual), _format(auto), _format(max_auto),
                           _format(max_manual), str(bool(manual_needed)).lower(), report.status,
                           "; ".join(report.problems)])
    out.mkdir(parents=True, exist_ok=True)
    grades_csv, questions_csv = out / "grades.csv", out / "questions.csv"
    for path, columns, rows in ((grades_csv, GRADES_COLUMNS, grades), (questions_csv, QUESTIONS_COLUMNS, questions)):
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(columns)
            writer.writerows(rows)
    return grades_csv, questions_csv


# ---------------------------------------------------------------- the command


def grade(assignment: str, submissions: Path | None, out: Path, *, course_dir: Path | None = None,
          students_csv: Path | None = None, student: str | None = None, pattern: str = DEFAULT_PATTERN,
          sandbox: bool = True, cell_timeout: int = CELL_TIMEOUT, student_timeout: float = STUDENT_TIMEOUT,
          jobs: int = 1, solutions: Path = SOLUTIONS, progress=print) -> list[Report]:
    """Grade a batch (or one ``student``) and write the results into ``out``; return the reports.
    ``jobs``: students graded at the same time."""
    out = Path(out)
    if jobs < 1:
        raise GradingError(f"--jobs must be at least 1, not {jobs}.")
    _put_scripts_on_path()
    kernel_manager, warning = choose_kernel_manager(sandbox)
    if warning:
        progress(f"warning: {warning}")
    course = prepare_course(Path(course_dir or out), assignment, kernel_manager, cell_timeout, solutions)
    roster = read_roster(Path(students_csv)) if students_csv else []
    collected = {}
    if submissions is not None:
        with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
            collected = collect_submissions(Path(submissions), assignment, course.notebooks, pattern, Path(workdir))
            if student is not None:
                if student not in collected:
                    raise GradingError(f"No submission of student {student!r} in {submissions}.")
                collected = {student: collected[student]}
            register_students(course, roster + [{"id": s} for s in collected if s not in {r["id"] for r in roster}])
            reports = grade_students(course, list(collected.values()), student_timeout, warning, jobs, progress)
            write_feedback(course, reports, student_timeout)
            for report in reports:
                _write_report(course, report)
    else:
        register_students(course, roster)
        reports = []
    _publish(course, out)
    grades_csv, questions_csv = write_results(course, out)
    progress(f"wrote {grades_csv} and {questions_csv}")
    return reports


def grade_students(course: Course, submissions: list[Submission], timeout: float, warning: str | None,
                   jobs: int, progress) -> list[Report]:
    """Autograde the submissions, ``jobs`` at a time (each in its own nbgrader process and
    sandbox; the gradebook's sqlite serialises their short writes). Reports in input order."""
    def one(submission: Submission) -> Report:
        report = grade_student(course, submission, timeout, warning)
        _write_report(course, report)
        return report

    reports = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(one, submission) for submission in submissions]
        for index, future in enumerate(as_completed(futures), start=1):
            report = future.result()
            reports.append(report)
            progress(f"[{index}/{len(submissions)}] {report.student}: {report.status} in {report.seconds:.1f} s"
                     + (f" ({len(report.problems)} problems)" if report.problems else ""))
    order = {submission.student: index for index, submission in enumerate(submissions)}
    return sorted(reports, key=lambda report: order[report.student])


def _put_scripts_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` script: find it beside this Python, venv activated or not."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def _publish(course: Course, out: Path) -> None:
    """With a separate course directory, copy this assignment's feedback and autograded notebooks to ``out``."""
    if course.root == out.resolve():
        return
    for kind in ("autograded", "feedback"):
        for folder in sorted((course.root / kind).glob(f"*/{course.assignment}")):
            target = out / kind / folder.parent.name / course.assignment
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(folder, target)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="course-grade", description="Autograde an assignment's submissions with nbgrader and write "
        "feedback, grades.csv and questions.csv.")
    parser.add_argument("assignment", help="assignment folder under solutions/, e.g. 01-convolution")
    parser.add_argument("submissions", nargs="?", type=Path,
                        help="folder or zip: <student>/<assignment>/<nb>.ipynb, <student>/<nb>.ipynb, "
                             "or flat <student>_<nb>.ipynb files (omit to rewrite the CSVs from the gradebook)")
    parser.add_argument("--out", type=Path, required=True, help="results folder (and course directory by default)")
    parser.add_argument("--course", type=Path, help="nbgrader course directory to create or keep (default: --out)")
    parser.add_argument("--students", type=Path, help="CSV of students: id[,first_name,last_name,email]")
    parser.add_argument("--student", help="grade only this student (re-grade)")
    parser.add_argument("--pattern", default=DEFAULT_PATTERN,
                        help="file names of flat submissions, with {student}, {notebook} and * "
                             f"(default: {DEFAULT_PATTERN})")
    parser.add_argument("--no-sandbox", dest="sandbox", action="store_false",
                        help="run student code without the sandbox, with your own rights (trusted "
                             "notebooks only; by default grading stops when the sandbox cannot run)")
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, help="seconds per cell")
    parser.add_argument("--student-timeout", type=float, default=STUDENT_TIMEOUT, help="seconds per student")
    parser.add_argument("--jobs", type=int, default=1,
                        help="students graded at the same time (default 1; each uses up to a core and its memory limit)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        reports = grade(args.assignment, args.submissions, args.out, course_dir=args.course,
                        students_csv=args.students, student=args.student, pattern=args.pattern,
                        sandbox=args.sandbox, cell_timeout=args.cell_timeout, student_timeout=args.student_timeout,
                        jobs=args.jobs)
    except CourseError as error:
        print(f"course-grade: {error}", file=sys.stderr)
        return 2
    failed = [r.student for r in reports if r.status == "failed"]
    if failed:
        print(f"autograde failed for {', '.join(failed)}: see {args.out}/grades.csv and the logs", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
