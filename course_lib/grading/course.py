"""The nbgrader course directory this tool keeps: its config, its gradebook, nbgrader runs.

nbgrader reads everything from ``nbgrader_config.py`` in the course directory, so the
command rewrites that file from its options on every run (the kernel manager, the cell
time limit, the preprocessors of :mod:`course_lib.grading.plugins`). Each nbgrader command
runs in its own process, so a crash or a hang in one student's grading stays there.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from course_lib.errors import CourseError
from course_lib.grading import GradingError
from course_lib.grading.assignment import SOLUTIONS, Cell, graded_cells
from course_lib.grading.translations import SOURCE_LANGUAGE, source_language, translated_source

__all__ = [
    "COURSE_ID",
    "PLAIN",
    "SANDBOXED",
    "Course",
    "choose_kernel_manager",
    "nbgrader_config",
    "prepare_course",
    "register_students",
    "run_nbgrader",
]

COURSE_ID = "course"
SANDBOXED = "course_lib.grading.sandbox.SandboxedKernelManager"
PLAIN = "jupyter_client.manager.AsyncKernelManager"
PLUGINS = "course_lib.grading.plugins"


@dataclass
class Course:
    """A course directory managed by this command."""

    root: Path
    assignment: str
    source: Path
    cells: list[Cell]

    @property
    def notebooks(self) -> list[str]:
        """The assignment's notebook names, without .ipynb."""
        return sorted(p.stem for p in self.source.glob("*.ipynb"))

    @property
    def db_url(self) -> str:
        """The gradebook, as nbgrader's ``Gradebook`` wants it."""
        return "sqlite:///" + str(self.root / "gradebook.db")

    def path(self, kind: str, student: str | None = None) -> Path:
        """nbgrader's folder of a kind (``release``, ``submitted``, ``feedback`` ...) for this assignment."""
        if student is None:
            return self.root / kind / self.assignment
        return self.root / kind / student / self.assignment


def choose_kernel_manager(sandbox: bool = True, *, check: bool = True) -> tuple[str, str | None]:
    """The kernel manager that runs student code, and a warning when it is not isolated.

    ``sandbox`` True (the default): the sandbox, or an error that says why it cannot run;
    False: the plain kernel with the grader's rights (trusted notebooks only). Grading
    never falls back to the plain kernel by itself. ``check`` False skips the check on this
    machine when student code runs on others (Slurm's nodes check it before grading).
    """
    if not sandbox:
        return PLAIN, "sandbox switched off (--no-sandbox): student code ran with the grader's rights"
    if not check:
        return SANDBOXED, None
    try:
        from course_lib.grading import sandbox as sandbox_module

        sandbox_module.check_sandbox()
    except (ImportError, AttributeError, CourseError, OSError, subprocess.SubprocessError) as error:
        raise GradingError(f"No student code was run: {error}") from None
    return SANDBOXED, None


def nbgrader_config(course: Path, kernel_manager: str, cell_timeout: int) -> str:
    """The course directory's nbgrader_config.py."""
    return f'''# Written by course_lib.grading; edit the command's options instead, it rewrites this file.
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
    "{PLUGINS}.GradingExecute",
    "{PLUGINS}.KeepStderrFromFailing",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.CheckCellMetadata",
]  # no AssignLatePenalties: course_lib.grading.late computes penalties again on every run
c.GenerateFeedback.preprocessors = [
    "nbgrader.preprocessors.GetGrades",
    "{PLUGINS}.HideTestsInFeedback",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]
'''


def put_scripts_on_path() -> None:
    """nbgrader's gradebook runs the ``alembic`` script: find it beside this Python, venv activated or not."""
    scripts = str(Path(sys.executable).parent)
    if scripts not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = scripts + os.pathsep + os.environ.get("PATH", "")


def run_nbgrader(
    course: Path, args: list[str], log: Path | None = None, timeout: float | None = None
) -> tuple[int, str]:
    """Run one nbgrader command in the course directory; return its exit code and log text."""
    command = [sys.executable, "-m", "nbgrader", *args]
    try:
        result = subprocess.run(
            command,
            cwd=course,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        code, text = result.returncode, result.stdout + result.stderr
    except subprocess.TimeoutExpired as error:
        code = -1
        text = (
            (error.stdout or b"").decode(errors="replace") if isinstance(error.stdout, bytes) else (error.stdout or "")
        )
        text += f"\n[course_lib.grading] nbgrader {args[0]} stopped after {timeout:.0f} s\n"
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as handle:
            handle.write(f"$ nbgrader {' '.join(args)}\n{text}\n[exit code {code}]\n\n")
    return code, text


def last_error(text: str) -> str:
    """The line of an nbgrader log that says what went wrong (its last error line), shortened."""
    lines = [line.strip() for line in text.splitlines() if "ERROR" in line or "Error" in line]
    return (lines[-1] if lines else text.strip().splitlines()[-1] if text.strip() else "no output")[:300]


def _tree_hash(folder: Path) -> str:
    """A digest of a folder's files, to release the assignment again only when its source changed."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and ".ipynb_checkpoints" not in path.parts:
            digest.update(str(path.relative_to(folder)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def prepare_course(
    root: Path,
    assignment: str,
    kernel_manager: str,
    cell_timeout: int,
    solutions: Path = SOLUTIONS,
    language: str | None = None,
) -> Course:
    """Create or update the course directory and release the assignment into its gradebook.

    The source is the assignment in ``language`` (:func:`course_lib.grading.translations.translated_source`:
    the same cells and tests, its prose and the checks' hints in that language); None keeps the
    language the course directory's source is already in, English for a new one.
    """
    root.mkdir(parents=True, exist_ok=True)
    (root / "nbgrader_config.py").write_text(nbgrader_config(root.resolve(), kernel_manager, cell_timeout))
    target = root.resolve() / "source" / assignment
    if language is None:
        language = source_language(target) if target.is_dir() else SOURCE_LANGUAGE
    with tempfile.TemporaryDirectory(prefix="course-source-") as scratch:
        source = translated_source(assignment, language, Path(scratch) / assignment, solutions)
        return _release_source(root, assignment, source)


def _release_source(root: Path, assignment: str, source: Path) -> Course:
    """Put ``source`` in the course directory and release it, unless the same source already is."""
    course = Course(root.resolve(), assignment, root.resolve() / "source" / assignment, graded_cells(source))
    stamp = course.root / "logs" / f"{assignment}.source-sha256"
    current = _tree_hash(source)
    if course.source.is_dir() and stamp.exists() and stamp.read_text() == current and course.path("release").is_dir():
        return course
    if course.source.exists():
        shutil.rmtree(course.source)
    shutil.copytree(source, course.source, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    log = course.root / "logs" / f"{assignment}.generate.log"
    code, text = run_nbgrader(course.root, ["generate_assignment", assignment, "--force", "--create"], log)
    if code != 0:
        raise GradingError(
            f"nbgrader generate_assignment failed for {assignment}: {last_error(text)} (full log: {log})."
        )
    stamp.write_text(current)
    return course


def register_students(course: Course, students: list[dict]) -> None:
    """Add or update the students in the gradebook (``id`` and optional names and email)."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        for student in students:
            details = {k: student[k] for k in ("first_name", "last_name", "email") if student.get(k)}
            gradebook.update_or_create_student(student["id"], **details)
