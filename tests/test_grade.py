"""The instructor pipeline, end to end with real nbgrader runs, and its parts.

One session fixture grades five batches (one per assignment, two at a time): the solution
must get full marks, the unmodified release zero, and each prepared faulty submission
in tests/submissions/ exactly the points of the tests its fault does not break.
"""

from __future__ import annotations

import copy
import csv
import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from course_lib import PROJECT_ROOT
from course_lib.grading.assignment import Cell, graded_cells
from course_lib.grading.cli import GradeConfig
from course_lib.grading.course import choose_kernel_manager
from course_lib.grading.pipeline import grade, verify_feedback
from course_lib.grading.plugins import HideTestsInFeedback, KeepStderrFromFailing
from course_lib.grading.submissions import collect_submissions

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
FAULTS = Path(__file__).parent / "submissions"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if list(p.glob("*.ipynb")))
NOTEBOOK = {a: next((SOLUTIONS / a).glob("*.ipynb")).stem for a in ASSIGNMENTS}


# ---------------------------------------------------------------- building submissions


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _answers(assignment: str) -> dict[str, str]:
    """What a student who knows the solution writes into each answer cell."""
    notebook = json.loads((SOLUTIONS / assignment / f"{NOTEBOOK[assignment]}.ipynb").read_text())
    answers = {}
    for cell in notebook["cells"]:
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            lines = [
                line
                for line in _source(cell).splitlines()
                if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            ]
            answers[_grade_id(cell)] = "\n".join(lines)
    return answers


def release(assignment: str) -> dict:
    return json.loads((EXERCISES / assignment / f"{NOTEBOOK[assignment]}.ipynb").read_text())


def student_notebook(assignment: str, spec: dict | None = None) -> dict:
    """The release filled in with the solution, then changed as ``spec`` says (a faulty submission)."""
    spec = spec or {}
    replace = {}
    for grade_id, code in spec.get("replace", {}).items():
        if code.startswith("@"):
            code = json.loads((FAULTS / code[1:]).read_text())["replace"][grade_id]
        replace[grade_id] = code
    notebook = release(assignment)
    answers = _answers(assignment)
    cells = []
    for cell in notebook["cells"]:
        grade_id = _grade_id(cell)
        if grade_id in answers:
            cell["source"] = answers[grade_id]
        if grade_id in replace:
            cell["source"] = replace[grade_id]
        cells.append(cell)
        if grade_id in spec.get("duplicate", []):
            twin = copy.deepcopy(cell)
            twin["id"] = cell["id"] + "-copy"
            cells.append(twin)
    notebook["cells"] = cells
    return notebook


def faults(assignment: str) -> dict[str, dict]:
    folder = FAULTS / assignment
    return {p.stem: json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))} if folder.is_dir() else {}


def write(path: Path, notebook: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(notebook, indent=1))
    return path


def auto_points(assignment: str) -> dict[str, float]:
    return {c.name: c.points for c in graded_cells(SOLUTIONS / assignment) if c.kind == "auto"}


def expected_auto(assignment: str, spec: dict) -> float:
    return sum(spec.get("expected", {}).get(name, points) for name, points in auto_points(assignment).items())


def read_csv(path: Path) -> dict[str, dict]:
    rows = list(csv.DictReader(open(path)))
    return rows


# ---------------------------------------------------------------- the batches


def batch_01(root: Path) -> Path:
    """A flat zip as a learning-management system exports it: good, partial, blank, broken, renamed ..."""
    files = {
        "good_convolution.ipynb": student_notebook("01-convolution"),
        "blank_convolution.ipynb": release("01-convolution"),
        "renamed_convolution-final.ipynb": student_notebook("01-convolution"),
    }
    for name, spec in faults("01-convolution").items():
        files[f"{name}_convolution.ipynb"] = student_notebook("01-convolution", spec)
    archive = root / "submissions.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for name, notebook in files.items():
            zipped.writestr(f"export/{name}", json.dumps(notebook))
        zipped.write(FAULTS / "01-convolution" / "broken.ipynb", "export/broken_convolution.ipynb")
        zipped.writestr("export/good_numpy.py", "raise SystemExit('a shadowing module must never be graded')\n")
    (root / "students.csv").write_text("id,first_name,last_name\nabsent,Ada,Absent\ngood,Gus,Good\n")
    return archive


def batch_per_student(root: Path, assignment: str, nbgrader_layout: bool) -> Path:
    folder = root / "submissions"
    students = {"solution": student_notebook(assignment), "release": release(assignment)}
    students.update({name: student_notebook(assignment, spec) for name, spec in faults(assignment).items()})
    for student, notebook in students.items():
        inner = folder / student / assignment if nbgrader_layout else folder / student
        write(inner / f"{NOTEBOOK[assignment]}.ipynb", notebook)
    return folder


def run_batch(assignment: str, root: Path) -> dict:
    root.mkdir(parents=True)
    messages = []
    if assignment == "01-convolution":
        submissions = batch_01(root)
        reports = grade(
            GradeConfig(
                assignment=assignment, submissions=submissions, out=root / "out", students=root / "students.csv"
            ),
            progress=messages.append,
        )
        first = read_csv(root / "out" / "grades.csv")
        questions = read_csv(root / "out" / "questions.csv")
        resubmitted = write(root / "again" / "no-padding" / "convolution.ipynb", student_notebook(assignment))
        regraded = grade(
            GradeConfig(
                assignment=assignment, submissions=resubmitted.parent.parent, out=root / "out", student="no-padding"
            ),
            progress=messages.append,
        )
        return {
            "reports": reports,
            "grades": first,
            "questions": questions,
            "regraded": regraded,
            "messages": messages,
            "out": root / "out",
        }
    submissions = batch_per_student(root, assignment, nbgrader_layout=assignment != "02-residual-block")
    reports = grade(
        GradeConfig(assignment=assignment, submissions=submissions, out=root / "out", course=root / "course"),
        progress=messages.append,
    )
    return {
        "reports": reports,
        "grades": read_csv(root / "out" / "grades.csv"),
        "questions": read_csv(root / "out" / "questions.csv"),
        "messages": messages,
        "out": root / "out",
    }


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    root = tmp_path_factory.mktemp("grading")
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {a: pool.submit(run_batch, a, root / a) for a in ASSIGNMENTS}
        return {a: future.result() for a, future in futures.items()}


def rows_by_student(rows: list[dict]) -> dict[str, dict]:
    return {row["student_id"]: row for row in rows}


# ---------------------------------------------------------------- end-to-end results


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_solution_full_marks_release_zero(graded, assignment):
    rows = rows_by_student(graded[assignment]["grades"])
    if assignment == "01-convolution":
        solution, blank = rows["good"], rows["blank"]
    else:
        solution, blank = rows["solution"], rows["release"]
    full = sum(auto_points(assignment).values())
    assert full > 0
    assert (float(solution["auto_score"]), float(solution["auto_max_score"])) == (full, full), solution["problems"]
    assert solution["needs_manual_grade"] == "true"
    assert float(blank["auto_score"]) == 0 and float(blank["score"]) == 0
    assert blank["needs_manual_grade"] == "false"  # unchanged answer cells score 0 by themselves


@pytest.mark.parametrize("assignment", [a for a in ASSIGNMENTS if faults(a)])
def test_faulty_submissions_lose_exactly_their_points(graded, assignment):
    rows = rows_by_student(graded[assignment]["grades"])
    questions = graded[assignment]["questions"]  # before any re-grade
    for name, spec in faults(assignment).items():
        row = rows[name]
        assert float(row["auto_score"]) == expected_auto(assignment, spec), (name, row["problems"])
        scores = {q["cell"]: float(q["score"]) for q in questions if q["student_id"] == name and q["kind"] == "auto"}
        expected = {
            cell: spec.get("expected", {}).get(cell, points) for cell, points in auto_points(assignment).items()
        }
        assert scores == expected, name
        for problem in spec.get("problems", []):
            assert problem in row["problems"], (name, row["problems"])


def test_mixed_batch_grades_csv(graded):
    """good, partial, blank, broken, renamed, absent: exactly these rows."""
    rows = rows_by_student(graded["01-convolution"]["grades"])
    full = sum(auto_points("01-convolution").values())
    expected = {
        "absent": ("0", "false", "no submission"),
        "blank": ("0", "false", "graded"),
        "broken": ("0", "false", "not graded"),
        "duplicated-test": (f"{full:g}", "true", "graded"),
        "edited-test": (f"{full - 2:g}", "true", "graded"),
        "good": (f"{full:g}", "true", "graded"),
        "im2col-order": (f"{full - 2:g}", "true", "graded"),
        "no-padding": (f"{full - 2:g}", "true", "graded"),
        "off-by-one-size": (f"{full - 2:g}", "true", "graded"),
        "renamed": ("0", "false", "not graded"),
        "warns": (f"{full:g}", "true", "graded"),
    }
    assert sorted(rows) == sorted(expected)
    for student, (score, manual, status) in expected.items():
        row = rows[student]
        assert (row["score"], row["needs_manual_grade"], row["status"]) == (score, manual, status), (student, row)
        assert row["max_score"] == f"{full + 2:g}"
    assert "invalid JSON" in rows["broken"]["problems"]
    assert "renamed?" in rows["renamed"]["problems"] and "convolution-final.ipynb" in rows["renamed"]["problems"]
    assert "other files ignored" in rows["good"]["problems"]
    assert "no submission" in rows["absent"]["problems"]


def test_only_expected_notebooks_are_placed(graded):
    course = graded["01-convolution"]["out"]
    placed = sorted(p.name for p in (course / "submitted" / "good" / "01-convolution").iterdir())
    assert placed == ["convolution.ipynb", "timestamp.txt"]


def test_regrade_one_student(graded):
    before = rows_by_student(graded["01-convolution"]["grades"])
    after = rows_by_student(read_csv(graded["01-convolution"]["out"] / "grades.csv"))
    full = sum(auto_points("01-convolution").values())
    assert [r.student for r in graded["01-convolution"]["regraded"]] == ["no-padding"]
    assert after["no-padding"]["auto_score"] == f"{full:g}"
    for student in before:
        if student != "no-padding":
            assert after[student] == before[student], student


def test_feedback_without_hidden_tests(graded):
    for assignment, result in graded.items():
        course = result["out"]
        student = "good" if assignment == "01-convolution" else "solution"
        pages = list((course / "feedback" / student / assignment).glob("*.html"))
        assert len(pages) == 1, assignment
        text = pages[0].read_text()
        assert "HIDDEN TESTS" not in text
        hidden = [line for cell in graded_cells(SOLUTIONS / assignment) for line in cell.hidden_lines]
        assert hidden and verify_feedback_text(text, hidden) == []


def verify_feedback_text(text: str, hidden: list[str]) -> list[str]:
    from course_lib.grading.pipeline import _TextOfHtml

    parser = _TextOfHtml()
    parser.feed(text)
    flat = " ".join("".join(parser.parts).split())
    return [line for line in hidden if line in flat]


def test_failed_test_feedback_is_actionable(graded):
    """A failing check's message reaches the student; its traceback does not."""
    course = graded["01-convolution"]["out"]
    page = (course / "feedback" / "im2col-order" / "01-convolution" / "convolution.html").read_text()
    assert "CheckFailed" in page and "wrong order" in page


# ---------------------------------------------------------------- parts, without nbgrader


def test_grading_refuses_to_run_student_code_without_the_sandbox(monkeypatch, tmp_path, capsys):
    from course_lib.grading import GradingError, sandbox
    from course_lib.grading.cli import main

    def unavailable():
        raise sandbox.SandboxUnavailable("bubblewrap (bwrap) is not installed ... (--no-sandbox).")

    monkeypatch.setattr(sandbox, "check_sandbox", unavailable)
    with pytest.raises(GradingError, match="No student code was run: bubblewrap"):
        choose_kernel_manager()
    assert main(["01-convolution", str(FAULTS), "--out", str(tmp_path / "out")]) == 2
    assert "--no-sandbox" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
    manager, warning = choose_kernel_manager(False)
    assert manager.endswith("AsyncKernelManager") and "grader's rights" in warning


def test_autograde_log_in_words():
    from course_lib.grading.pipeline import _autograde_warnings

    log = """[AutogradeApp | WARNING] Attribute 'points' for cell test_im2col has changed! (should be: 2.0, got: 100)
[AutogradeApp | WARNING] Attribute 'checksum' for cell test_conv2d has changed! (should be: ab, got: cd)
[AutogradeApp | WARNING] Missing grade cell test_conv2d_im2col
[AutogradeApp | ERROR] Timeout waiting for execute reply (60s).
[AutogradeApp | WARNING] Killing the kernel's sandbox: it ran past 240 s
[AutogradeApp | ERROR] Kernel died while waiting for execute reply."""
    assert _autograde_warnings(log) == [
        "graded cell test_im2col: its points was edited (the original was graded)",
        "graded cell test_conv2d_im2col was missing (the original was graded)",
        "a cell ran past the time limit",
        "the sandbox was killed: it ran past 240 s",
        "the kernel died while grading",
    ]


def test_collect_layouts(tmp_path):
    notebook = {"cells": [], "nbformat": 4, "metadata": {}, "nbformat_minor": 5}
    write(tmp_path / "nb" / "s1" / "01-convolution" / "convolution.ipynb", notebook)
    write(tmp_path / "nb" / "s1" / "01-convolution" / "numpy.py", {})
    write(tmp_path / "per" / "s2" / "convolution.ipynb", notebook)
    write(tmp_path / "per" / "s3" / "convolution (1).ipynb", notebook)
    write(tmp_path / "flat" / "s4_convolution.ipynb", notebook)
    write(tmp_path / "flat" / "s_5_convolution.ipynb", notebook)
    write(tmp_path / "lms" / "Doe Jane_s6_assignsubmission_convolution.ipynb", notebook)
    nb = collect_submissions(tmp_path / "nb", "01-convolution", ["convolution"])
    assert list(nb) == ["s1"] and list(nb["s1"].files) == ["convolution"] and nb["s1"].others == ["numpy.py"]
    per = collect_submissions(tmp_path / "per", "01-convolution", ["convolution"])
    assert list(per["s2"].files) == ["convolution"]
    assert per["s3"].files == {} and per["s3"].others == ["convolution (1).ipynb"]
    flat = collect_submissions(tmp_path / "flat", "01-convolution", ["convolution"])
    assert sorted(flat) == ["s4", "s_5"]
    lms = collect_submissions(
        tmp_path / "lms", "01-convolution", ["convolution"], pattern="*_{student}_assignsubmission_{notebook}.ipynb"
    )
    assert list(lms) == ["s6"]
    archive = tmp_path / "flat.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("s7_convolution.ipynb", "{}")
        zipped.writestr("../evil_convolution.ipynb", "{}")
    zipped_subs = collect_submissions(archive, "01-convolution", ["convolution"], workdir=tmp_path / "work")
    assert list(zipped_subs) == ["s7"]


def test_feedback_preprocessor_hides_hidden_tests_and_tracebacks():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    cell = new_code_cell("check(f)\n### BEGIN HIDDEN TESTS\nsecret_check(f)\n### END HIDDEN TESTS\n")
    cell.metadata = {"nbgrader": {"grade": True, "grade_id": "t", "points": 1, "solution": False}}
    cell.outputs = [
        new_output(
            "error",
            ename="CheckFailed",
            evalue="check the padding",
            traceback=["---", "secret_check(f)", "CheckFailed: check the padding"],
        ),
        new_output("stream", name="stderr", text="UserWarning: fine\n"),
    ]
    visible = new_code_cell("check(f)\nprint('checked 3 cases')")
    visible.metadata = cell.metadata
    visible.outputs = [new_output("stream", name="stdout", text="checked 3 cases\n")]
    notebook, _ = HideTestsInFeedback().preprocess(
        new_notebook(cells=[copy.deepcopy(cell), copy.deepcopy(visible)]), {}
    )
    shown = notebook.cells[0]
    assert "secret_check" not in shown.source
    assert [o.output_type for o in shown.outputs] == ["stream", "error"]
    assert shown.outputs[0].text == HideTestsInFeedback.NOTE  # printed output of a hidden-test cell dropped
    assert shown.outputs[1].traceback == ["CheckFailed: check the padding"]
    assert notebook.cells[1].outputs == visible.outputs  # a cell without hidden tests keeps its output
    notebook, _ = KeepStderrFromFailing().preprocess(new_notebook(cells=[copy.deepcopy(cell)]), {})
    assert notebook.cells[0].outputs[1].name == "stdout"


def test_verify_feedback_withholds_leaks(tmp_path):
    from course_lib.grading.course import Course

    course = Course(
        tmp_path, "a1", tmp_path / "source" / "a1", [Cell("nb", "t", "auto", 1.0, "", ["secret_check(f, trials=10)"])]
    )
    page = tmp_path / "feedback" / "s1" / "a1" / "nb.html"
    page.parent.mkdir(parents=True)
    page.write_text("<pre><span>secret_check</span>(f,   trials=10)</pre>")
    problems = verify_feedback(course, "s1")
    assert problems and "withheld" in problems[0] and not page.exists()


def test_collect_descends_into_an_export_folder(tmp_path):
    notebook = {"cells": [], "nbformat": 4, "metadata": {}, "nbformat_minor": 5}
    write(tmp_path / "zip" / "export" / "s1_convolution.ipynb", notebook)
    write(tmp_path / "zip" / "export" / "s2_convolution.ipynb", notebook)
    write(tmp_path / "one" / "s3" / "convolution.ipynb", notebook)
    assert sorted(collect_submissions(tmp_path / "zip", "01-convolution", ["convolution"])) == ["s1", "s2"]
    assert list(collect_submissions(tmp_path / "one", "01-convolution", ["convolution"])) == ["s3"]


def test_options_are_declared_once(capsys):
    """The command line, ``--help`` and Python callers share GradeConfig's fields and defaults."""
    from course_lib.grading import GradingError
    from course_lib.grading.cli import CELL_TIMEOUT, build_parser
    from course_lib.options import from_args, to_argv

    config = from_args(GradeConfig, build_parser().parse_args(["01-convolution", "--out", "o", "--no-sandbox"]))
    assert config == GradeConfig(assignment="01-convolution", out=Path("o"), sandbox=False)
    assert config.cell_timeout == CELL_TIMEOUT and config.submissions is None
    assert from_args(GradeConfig, build_parser().parse_args(to_argv(config))) == config
    with pytest.raises(GradingError, match="--jobs must be at least 1"):
        GradeConfig(assignment="01-convolution", out=Path("o"), jobs=0)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    assert f"(default: {CELL_TIMEOUT})" in capsys.readouterr().out


def test_generated_config_names_classes_that_import(tmp_path):
    """nbgrader loads the plug-ins and the kernel manager by import string: they must follow the modules."""
    import re

    from traitlets.utils.importstring import import_item

    from course_lib.grading.course import SANDBOXED, nbgrader_config

    names = re.findall(r"\"(course_lib\.[\w.]+)\"|'(course_lib\.[\w.]+)'", nbgrader_config(tmp_path, SANDBOXED, 60))
    names = [a or b for a, b in names]
    assert len(names) == 4  # the kernel manager and three preprocessors
    for name in names:
        assert isinstance(import_item(name), type), name
