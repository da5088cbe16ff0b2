"""The adversarial suite: hostile and broken submissions graded in one batch through the
real pipeline (``course_lib.grading`` -> ``nbgrader autograde`` -> the sandboxed kernel).

Checks: no hostile submission gets a point it does not deserve, honest ones in the same
batch get exactly their marks, the batch finishes, the instructor's files are unchanged,
no process outlives the batch, feedback shows no hidden test, and the report says what
happened to whom. The cases and their expected outcomes are in ``adversarial/cases.py``.
"""

import csv
import hashlib
import json
import os
import shutil
import sqlite3
import sys
import time
from pathlib import Path

import pytest
from processes import processes_carrying

from course_lib import PROJECT_ROOT
from course_lib.grading.assignment import graded_cells
from course_lib.grading.cli import GradeConfig
from course_lib.grading.pipeline import grade

sys.path.insert(0, str(Path(__file__).parent / "adversarial"))
import cases as adversarial  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)"),
]

SOLUTION = PROJECT_ROOT / "solutions" / adversarial.ASSIGNMENT / f"{adversarial.NOTEBOOK}.ipynb"
CELL_TIMEOUT = 40  # the setup cell imports torch: 3 s on an idle 2-core machine, 12 s on a loaded one
STUDENT_TIMEOUT = 300
JOBS = 2  # two students at a time, as an instructor would on a 2-core machine
SANDBOX_CONFIG = """c = get_config()
c.SandboxedKernelManager.wall_time_limit = 240
c.SandboxedKernelManager.cpu_time_limit = 120
c.SandboxedKernelManager.memory_limit = 6 * 1024**3
c.SandboxedKernelManager.output_limit = 100_000
"""


def tree_hash(folder):
    digest = hashlib.sha256()
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file():
            digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def gradebook_definition(course):
    """The gradebook's record of the assignment itself (cells, points, checksums): grading
    adds students' grades but must never change it."""
    with sqlite3.connect(course / "gradebook.db") as db:
        rows = [
            db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
            for table in ("assignment", "notebook", "base_cell", "grade_cells", "solution_cells", "source_cell")
        ]
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def instructor_files(course):
    """What grading must never change: the source, the release, the solutions, the config
    and the assignment's definition in the gradebook."""
    return {
        "gradebook definition": gradebook_definition(course),
        "source": tree_hash(course / "source"),
        "release": tree_hash(course / "release"),
        "solutions": tree_hash(SOLUTION.parent),
        "nbgrader_config.py": hashlib.sha256((course / "nbgrader_config.py").read_bytes()).hexdigest(),
    }


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """Grade every case in one batch; return what the checks need."""
    root = tmp_path_factory.mktemp("adversarial")
    course, submissions, config = root / "course", root / "submissions", root / "jupyter-config"
    config.mkdir()
    (config / "nbgrader_config.py").write_text(SANDBOX_CONFIG)
    old_config_dir = os.environ.get("JUPYTER_CONFIG_DIR")
    os.environ["JUPYTER_CONFIG_DIR"] = str(config)
    try:
        grade(
            GradeConfig(assignment=adversarial.ASSIGNMENT, out=course, cell_timeout=CELL_TIMEOUT),
            progress=lambda line: None,
        )
        release = json.loads(
            (course / "release" / adversarial.ASSIGNMENT / f"{adversarial.NOTEBOOK}.ipynb").read_text()
        )
        solution = json.loads(SOLUTION.read_text())
        cases = selected(adversarial.build_cases(release, solution, course))
        for case in cases:
            folder = submissions / case.name
            folder.mkdir(parents=True)
            for name, content in case.files.items():
                (folder / name).write_bytes(content)
        before = instructor_files(course)
        log = []
        started = time.perf_counter()
        reports = grade(
            GradeConfig(
                assignment=adversarial.ASSIGNMENT,
                submissions=submissions,
                out=course,
                cell_timeout=CELL_TIMEOUT,
                student_timeout=STUDENT_TIMEOUT,
                jobs=JOBS,
            ),
            progress=log.append,
        )
        seconds = time.perf_counter() - started
    finally:
        if old_config_dir is None:
            os.environ.pop("JUPYTER_CONFIG_DIR", None)
        else:
            os.environ["JUPYTER_CONFIG_DIR"] = old_config_dir
    grades = {row["student_id"]: row for row in read_csv(course / "grades.csv")}
    print(f"\nadversarial batch: {len(cases)} submissions graded in {seconds:.0f} s")
    print("| case | what | status | auto score | problems |\n|---|---|---|---|---|")
    for case in cases:
        row = grades.get(case.name, {})
        print(
            f"| {case.name} | {case.what} | {row.get('status')} | "
            f"{row.get('auto_score')}/{row.get('auto_max_score')} | {row.get('problems', '')[:150]} |"
        )
    return {
        "course": course,
        "cases": {case.name: case for case in cases},
        "reports": reports,
        "before": before,
        "after": instructor_files(course),
        "grades": grades,
        "questions": read_csv(course / "questions.csv"),
        "points": {c.name: c.points for c in graded_cells(SOLUTION.parent) if c.kind == "auto"},
        "hidden": adversarial.hidden_lines(json.loads(SOLUTION.read_text())),
    }


def selected(cases):
    """All cases, or those named in ADVERSARIAL_CASES (comma-separated), to iterate faster."""
    names = [name for name in os.environ.get("ADVERSARIAL_CASES", "").split(",") if name]
    return [case for case in cases if not names or case.name in names]


def case_names():
    """The case names, built from the source notebook (the release comes later)."""
    source = json.loads(SOLUTION.read_text())
    return [case.name for case in selected(adversarial.build_cases(source, source, Path("/course")))]


@pytest.mark.parametrize("name", case_names())
def test_each_test_cell_scores_exactly_what_the_submission_deserves(batch, name):
    case = batch["cases"][name]
    scores = {
        row["cell"]: float(row["score"])
        for row in batch["questions"]
        if row["student_id"] == name and row["kind"] == "auto"
    }
    expected = {cell: (points if cell in case.passes else 0.0) for cell, points in batch["points"].items()}
    assert scores == expected, f"{name} ({case.what}): report {batch['grades'][name]}"


@pytest.mark.parametrize("name", case_names())
def test_report_says_what_happened(batch, name):
    case = batch["cases"][name]
    row = batch["grades"][name]
    assert row["status"] == case.status, row
    assert case.says.lower() in row["problems"].lower(), row
    assert float(row["auto_score"]) == sum(batch["points"][cell] for cell in case.passes)
    if case.honest:
        assert row["problems"] == "", row


def test_batch_grades_every_submission(batch):
    assert set(batch["grades"]) == set(batch["cases"])
    assert len(batch["cases"]) >= 25 or os.environ.get("ADVERSARIAL_CASES")


def test_instructor_files_unchanged(batch):
    assert batch["after"] == batch["before"]


def test_gradebook_holds_no_score_above_the_maximum(batch):
    with sqlite3.connect(batch["course"] / "gradebook.db") as db:
        rows = db.execute(
            "SELECT auto_score, max_score FROM grade JOIN grade_cells ON grade.cell_id = grade_cells.id"
        ).fetchall()
    assert rows
    assert all(score is None or score <= maximum for score, maximum in rows)


def test_no_process_outlives_the_batch(batch):
    assert processes_carrying(adversarial.MARKER) == []


def test_feedback_shows_no_hidden_test(batch):
    feedback = sorted((batch["course"] / "feedback").rglob("*.html"))
    assert feedback
    for path in feedback:
        text = path.read_text(encoding="utf-8")
        leaked = [line for line in batch["hidden"] if line in text]
        assert leaked == [], path


def test_hostile_code_found_nothing_to_read_or_write(batch):
    for name, word in (("reads-instructor-files", "LEAKED"), ("writes-gradebook", "WROTE")):
        if name not in batch["cases"]:
            continue
        graded = batch["course"] / "autograded" / name / adversarial.ASSIGNMENT / f"{adversarial.NOTEBOOK}.ipynb"
        text = json.dumps([cell.get("outputs", []) for cell in json.loads(graded.read_text())["cells"]])
        assert "blocked" in text and word not in text


def test_endless_output_is_cut(batch):
    if "endless-printing" not in batch["cases"]:
        pytest.skip("endless-printing not selected in ADVERSARIAL_CASES")
    graded = (
        batch["course"] / "autograded" / "endless-printing" / adversarial.ASSIGNMENT / f"{adversarial.NOTEBOOK}.ipynb"
    )
    assert graded.stat().st_size < 2 * 2**20
    assert "output truncated" in graded.read_text()


def test_a_failed_hidden_test_is_reported_without_its_code(batch):
    if "hidden-only-failure" not in batch["cases"]:
        pytest.skip("hidden-only-failure not selected in ADVERSARIAL_CASES")
    feedback = sorted((batch["course"] / "feedback" / "hidden-only-failure").rglob("*.html"))
    assert feedback
    text = feedback[0].read_text(encoding="utf-8")
    assert "Error" in text
    assert [line for line in batch["hidden"] if line in text] == []
