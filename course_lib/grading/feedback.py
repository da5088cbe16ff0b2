"""Feedback pages that always show the current grades, and never a hidden test.

nbgrader writes a feedback page from the gradebook once, when asked; a grade given later in
formgrader, a regrade, or a late penalty changed by an extension would leave the page stale.
So every run of the command brings the pages up to date: the late penalties go into the
gradebook (where nbgrader's ``GetGrades`` reads them), the notes nbgrader cannot know (which
cells are still pending, the late policy's note) go into the autograded notebook's metadata
for the page template, and a page is written again whenever what it shows has changed (a
digest of its inputs, kept in the student's report) or its file was changed by someone else.

Every page written is then checked for hidden-test lines and withheld if one appears: a leak
would spoil the hidden tests for every later class.
"""

from __future__ import annotations

import hashlib
import html.parser
import importlib.util
import json
import shutil
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from course_lib.files import write_atomically
from course_lib.grading.course import COURSE_ID, Course, last_error, run_nbgrader
from course_lib.grading.late import LatePolicy, utc
from course_lib.grading.pages import TEMPLATES
from course_lib.grading.results import StudentResult, write_report

__all__ = ["NOTES_KEY", "refresh_feedback", "template_args", "verify_feedback"]

TEMPLATE = "course_feedback"
NOTES_KEY = "course_grade"  # the autograded notebook's metadata that the template reads


def template_args() -> list[str]:
    """nbgrader options that render feedback with this package's template (nbgrader's, with pending
    scores and the late note). Given on the command line, not in nbgrader_config.py, so that
    formgrader keeps its own templates."""
    spec = importlib.util.find_spec("nbgrader")
    nbgrader_templates = Path(spec.origin).parent / "server_extensions" / "formgrader" / "templates"
    return [
        f"--HTMLExporter.template_name={TEMPLATE}",
        f"--HTMLExporter.template_file={TEMPLATE}.html.j2",
        f"--HTMLExporter.extra_template_basedirs={TEMPLATES}",
        f"--HTMLExporter.extra_template_basedirs={nbgrader_templates}",
    ]


def refresh_feedback(
    course: Course, results: list[StudentResult], policy: LatePolicy | None, timeout: float
) -> list[str]:
    """Bring every student's feedback up to date with their results; return the students whose pages were written."""
    comments = _record_in_gradebook(course, results, policy)
    graded = {p.parent.name for p in (course.root / "autograded").glob(f"*/{course.assignment}") if p.is_dir()}
    stale: dict[str, str] = {}
    for result in results:
        if not _shows_feedback(result) or result.student not in graded:
            _remove_feedback(course, result)
            continue
        _annotate(course, result)
        inputs = _inputs_digest(course, result, comments.get(result.student, []))
        if result.report.feedback_digest != f"{inputs}:{_outputs_digest(course, result.student)}":
            stale[result.student] = inputs
    if not stale:
        return []
    problems = _generate(course, sorted(stale), graded, timeout)
    by_student = {r.student: r for r in results}
    for student, inputs in stale.items():
        report = by_student[student].report
        report.feedback_problems = problems.get(student, []) + verify_feedback(course, student)
        report.feedback_digest = f"{inputs}:{_outputs_digest(course, student)}"
        write_report(course, report)
    return sorted(stale)


def _shows_feedback(result: StudentResult) -> bool:
    """A student gets a page once their autograded submission stands: not failed, nothing held for review."""
    return (
        result.submitted
        and result.report.status in ("graded", "review")
        and not any(c.state == "held" for c in result.cells)
    )


def _remove_feedback(course: Course, result: StudentResult) -> None:
    """No page for a student who should have none (held for review, failed, not graded)."""
    shutil.rmtree(course.path("feedback", result.student), ignore_errors=True)
    if result.report.feedback_digest:
        result.report.feedback_digest = ""
        write_report(course, result.report)


def _record_in_gradebook(
    course: Course, results: list[StudentResult], policy: LatePolicy | None
) -> dict[str, list[str]]:
    """Put the due date, submission times, extensions and late penalties into the gradebook, where
    nbgrader's feedback and formgrader read them; return each student's comments (for the digest)."""
    from nbgrader.api import Gradebook, MissingEntry

    comments: dict[str, list[str]] = {}
    with Gradebook(course.db_url, course_id=COURSE_ID) as gradebook:
        assignment = gradebook.find_assignment(course.assignment)
        assignment.duedate = utc(policy.due).replace(tzinfo=None) if policy else None
        for result in results:
            try:
                submission = gradebook.find_submission(course.assignment, result.student)
            except MissingEntry:
                continue
            if result.report.submitted_at:
                submission.timestamp = utc(datetime.fromisoformat(result.report.submitted_at)).replace(tzinfo=None)
            extension = result.lateness.due - policy.due if policy and result.lateness else timedelta(0)
            submission.extension = extension if extension else None
            for notebook in submission.notebooks:
                notebook.late_submission_penalty = result.penalties.get(notebook.name) or None
                comments[result.student] = comments.get(result.student, []) + [
                    f"{notebook.name}/{c.name}: {c.comment or ''}" for c in notebook.comments
                ]
        gradebook.db.commit()
    return comments


def _notes(result: StudentResult, notebook: str) -> dict[str, Any]:
    """What the page of one notebook shows beyond the gradebook's scores."""
    cells = [c for c in result.cells if c.cell.notebook == notebook]
    notes: dict[str, Any] = {
        "pending": [c.cell.name for c in cells if c.state == "pending"],
        "pending_points": sum(c.cell.points for c in cells if c.state == "pending"),
    }
    if result.lateness is not None:
        penalty = result.penalties.get(notebook, 0.0)
        notes["late"] = result.lateness.note + (
            f" Deducted here: {penalty:g} of {result.notebook_score(notebook):g} points." if penalty else ""
        )
    return notes


def _annotate(course: Course, result: StudentResult) -> None:
    """Write the notes into each autograded notebook's metadata, when they changed."""
    for path in sorted(course.path("autograded", result.student).glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        notes = _notes(result, path.stem)
        if notebook.get("metadata", {}).get(NOTES_KEY) != notes:
            notebook.setdefault("metadata", {})[NOTES_KEY] = notes
            write_atomically(path, lambda handle, nb=notebook: json.dump(nb, handle, indent=1))


def _inputs_digest(course: Course, result: StudentResult, comments: list[str]) -> str:
    """A digest of everything a page shows: the autograded notebooks (with the notes), scores,
    penalties and comments, and the template and preprocessor that render them."""
    digest = hashlib.sha256()
    for path in sorted(course.path("autograded", result.student).glob("*.ipynb")):
        digest.update(path.read_bytes())
    state = [(c.cell.name, c.score, c.state) for c in result.cells]
    digest.update(json.dumps([state, result.penalties, comments]).encode())
    for source in (TEMPLATES / TEMPLATE / f"{TEMPLATE}.html.j2", Path(__file__).with_name("plugins.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def _outputs_digest(course: Course, student: str) -> str:
    """A digest of the pages as they are, to notice a page written or deleted by someone else."""
    digest = hashlib.sha256()
    for path in sorted(course.path("feedback", student).glob("*.html")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _generate(course: Course, students: list[str], graded: set[str], timeout: float) -> dict[str, list[str]]:
    """nbgrader's feedback for ``students``: one call for all (the others excluded), or one per
    student if that fails; return what went wrong per student."""
    log = course.root / "logs" / course.assignment / "feedback.log"
    args = ["generate_feedback", course.assignment, "--force", *template_args()]
    others = sorted(graded - set(students))
    if len(students) == 1:
        batch = [*args, "--student", students[0]]
    else:
        batch = args + ([f"--CourseDirectory.student_id_exclude={','.join(others)}"] if others else [])
    code, _ = run_nbgrader(course.root, batch, log, timeout)
    problems: dict[str, list[str]] = {}
    if code == 0:
        return problems
    for student in students:
        student_code, text = run_nbgrader(course.root, [*args, "--student", student], log, timeout)
        if student_code != 0:
            problems[student] = [f"feedback not written: {last_error(text)}"]
    return problems


class _TextOfHtml(html.parser.HTMLParser):
    """The text of an HTML page, without its markup (code in feedback is split by highlighting spans)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
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
