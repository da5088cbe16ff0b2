"""The instructor's whole grading cycle, consistent in every output.

One class of six is graded end to end (a flat LMS zip of 01-convolution through nbgrader and the
sandbox, a renamed notebook graded again as the advice says, written answers graded by hand and
the outputs brought up to date), and every output is checked against the others: grades.csv,
questions.csv, feedback, report.html/csv, canvas.csv, moodle.csv, similarity.html. The parts
(late policy at its boundaries, LMS exports, report numbers, hidden-test marks, rename advice,
the README's options) are tested alone, without nbgrader.
"""

from __future__ import annotations

import copy
import csv
import json
import re
import shutil
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from test_grade import release, student_notebook

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError
from course_lib.grading.assignment import Cell, failing_line, graded_cells
from course_lib.grading.changes import record_changes
from course_lib.grading.class_report import class_statistics
from course_lib.grading.cli import GradeConfig, options_table
from course_lib.grading.feedback import _TextOfHtml
from course_lib.grading.late import (
    LatePolicy,
    assess,
    load_policy,
    parse_time,
    read_extensions,
    read_submission_times,
    resolve_policy,
    save_policy,
)
from course_lib.grading.lms import CANVAS_COLUMNS, MOODLE_COLUMNS, write_canvas, write_moodle
from course_lib.grading.pipeline import grade
from course_lib.grading.plugins import HideTestsInFeedback
from course_lib.grading.results import GRADES_COLUMNS, CellResult, Report, StudentResult, grades_row, with_lateness
from course_lib.grading.submissions import collect_submissions

ASSIGNMENT = "01-convolution"
ZURICH = "Europe/Zurich"
DUE = "2025-03-01T23:59"


def rows(path: Path, key: str = "student_id") -> dict[str, dict]:
    """A CSV as rows keyed by one column."""
    with open(path, newline="") as handle:
        return {row[key]: row for row in csv.DictReader(handle)}


def page_text(path: Path) -> str:
    """The visible text of an HTML page, whitespace collapsed."""
    parser = _TextOfHtml()
    parser.feed(path.read_text(encoding="utf-8"))
    return " ".join("".join(parser.parts).split())


# ---------------------------------------------------------------- the late policy at its boundaries


def policy(**values) -> LatePolicy:
    base = {"due": parse_time(DUE, ZURICH, "due"), "percent": 10.0, "unit": "day", "cap": 50.0, "timezone": ZURICH}
    return LatePolicy(**{**base, **values})


def at(policy_: LatePolicy, **offset) -> datetime:
    return policy_.due + timedelta(**offset)


def test_on_time_exactly_and_one_second_late():
    rule = policy()
    assert assess(rule, "s", at(rule)).percent == 0
    assert "on time" in assess(rule, "s", at(rule)).note
    late = assess(rule, "s", at(rule, seconds=1))
    assert (late.percent, late.seconds_late) == (10, 1)
    assert assess(rule, "s", at(rule, days=1)).percent == 10  # one whole day: still one started day
    assert assess(rule, "s", at(rule, days=1, seconds=1)).percent == 20


def test_grace_period_ends_and_lateness_counts_from_the_due_date():
    rule = policy(grace_minutes=15, unit="hour")
    assert assess(rule, "s", at(rule, minutes=15)).percent == 0
    assert "grace" in assess(rule, "s", at(rule, minutes=15)).note
    past = assess(rule, "s", at(rule, minutes=15, seconds=1))
    assert past.percent == 10 and past.seconds_late == 15 * 60 + 1  # counted from the due date, one started hour
    assert assess(rule, "s", at(rule, hours=2, seconds=1)).percent == 30


def test_the_cap():
    rule = policy()
    assert assess(rule, "s", at(rule, days=4, seconds=1)).percent == 50
    assert assess(rule, "s", at(rule, days=40)).percent == 50
    assert assess(policy(cap=100), "s", at(rule, days=40)).percent == 100


def test_extension_exactly_met():
    rule = policy(extensions={"hours": timedelta(hours=48), "date": parse_time("2025-03-05T12:00", ZURICH, "x")})
    assert assess(rule, "hours", at(rule, hours=48)).percent == 0
    assert assess(rule, "hours", at(rule, hours=48, seconds=1)).percent == 10
    new_due = parse_time("2025-03-05T12:00", ZURICH, "x")
    assert assess(rule, "date", new_due).percent == 0 and "your extension" in assess(rule, "date", new_due).note
    assert assess(rule, "date", new_due + timedelta(seconds=1)).percent == 10
    assert assess(rule, "other", at(rule, hours=1)).percent == 10


def test_time_zones_and_unknown_times():
    rule = policy()
    assert rule.due == datetime(2025, 3, 1, 22, 59, tzinfo=UTC)  # 23:59 in Zurich, winter time
    assert assess(rule, "s", datetime(2025, 3, 1, 22, 59, tzinfo=UTC)).percent == 0
    unknown = assess(rule, "s", None)
    assert unknown.percent == 0 and "unknown" in unknown.note
    assert parse_time("Saturday, 1 March 2025, 11:59 PM", ZURICH, "x") == rule.due  # Moodle's worksheet
    with pytest.raises(GradingError, match="not a date"):
        parse_time("soon", ZURICH, "--due")


def test_penalty_is_a_share_of_the_score_in_every_notebook():
    cells = [Cell("a", "t1", "auto", 3.0, "", []), Cell("b", "t2", "auto", 4.0, "", [])]
    result = StudentResult(
        Report("s", submitted_at=at(policy(), hours=3).isoformat()),
        [CellResult(cells[0], 3.0, "graded", False), CellResult(cells[1], 3.33, "graded", False)],
        True,
        None,
        {},
    )
    with_lateness(result, policy(percent=15))
    assert result.penalties == {"a": 0.45, "b": 0.5}  # 15 % of each notebook's score, to the cent
    assert (result.raw_score, result.late_penalty, result.score) == (6.33, 0.95, 5.38)


def test_policy_kept_and_options_replace_its_values(tmp_path):
    extensions = tmp_path / "extensions.csv"
    extensions.write_text("student_id,due,extra_hours\ncy,,48\nada,2025-03-04 12:00,\n")
    first = resolve_policy(None, due=DUE, percent=5, timezone_name=ZURICH, extensions=extensions)
    save_policy(tmp_path, first)
    kept = load_policy(tmp_path)
    assert kept == first and kept.extensions["cy"] == timedelta(hours=48)
    again = resolve_policy(kept, cap=30)
    assert (again.percent, again.cap, again.due, again.extensions) == (5, 30, first.due, first.extensions)
    assert resolve_policy(kept) == kept
    assert resolve_policy(kept, due="none") is None
    assert resolve_policy(None, timezone_name=ZURICH) is None
    with pytest.raises(GradingError, match="--late-percent: a late policy needs a due date"):
        resolve_policy(None, percent=10)


def test_bad_extension_and_time_files_say_where(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("student_id,due,extra_hours\ncy,2025-03-04,12\n")
    with pytest.raises(GradingError, match="line 2: each row needs a student_id and either"):
        read_extensions(bad, ZURICH)
    bad.write_text("student_id,extra_hours\ncy,two\n")
    with pytest.raises(GradingError, match="extra_hours takes a number"):
        read_extensions(bad, ZURICH)
    times = tmp_path / "times.csv"
    times.write_text(
        "Email address,Last modified (submission)\n"
        'Ada@Example.org,"Saturday, 1 March 2025, 11:00 PM"\nben@example.org,-\n'
    )
    found = read_submission_times(times, ZURICH, {"ada@example.org": "ada", "ben@example.org": "ben"})
    assert found == {"ada": parse_time("2025-03-01T23:00", ZURICH, "x")}
    with pytest.raises(GradingError, match="no student_id, id, or email of a student on the roster"):
        read_submission_times(times, ZURICH, {})


def test_impossible_options_stop_before_anything_runs():
    config = {"assignment": ASSIGNMENT, "out": Path("o")}
    for wrong, message in (
        ({"late_percent": 150}, "percents from 0 to 100"),
        ({"due": "next week"}, "not a date"),
        ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
        ({"late_unit": "week"}, "--late-unit must be one of"),
        ({"late_grace": -1}, "--late-grace"),
        ({"similarity_threshold": 0}, "--similarity-threshold"),
    ):
        with pytest.raises(GradingError, match=message):
            GradeConfig(**config, **wrong)


# ---------------------------------------------------------------- LMS exports and report numbers, from results

CELLS = [
    Cell("nb", "t1", "auto", 4.0, "", []),
    Cell("nb", "t2", "auto", 4.0, "", []),
    Cell("nb", "w", "manual", 2.0, "", []),
]


def result(student: str, scores: list[float | None], status: str = "graded", submitted: bool = True) -> StudentResult:
    states = []
    for cell, score in zip(CELLS, scores, strict=True):
        state = "pending" if score is None else "graded" if submitted else "not submitted"
        states.append(CellResult(cell, score, state, score is None))
    return StudentResult(Report(student, status=status, seconds=2.5), states, submitted, None, {})


def class_of_five() -> list[StudentResult]:
    late = result("ben", [4, 2, 2])
    late.report.submitted_at = at(policy(), hours=5).isoformat()  # one started day: 10 %
    return [
        result("ada", [4, 4, 2]),
        with_lateness(late, policy()),
        result("cy", [0, 4, None]),
        result("dave", [0, 0, 0], status="not graded", submitted=False),
        result("finn", [0, 0, 0], status="no submission", submitted=False),
    ]


def test_lms_exports_hold_final_grades_only(tmp_path):
    roster = [
        {"id": "ada", "first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org", "canvas_id": "71"},
        {"id": "ben", "first_name": "Ben", "last_name": "Ng", "email": "ben@example.org", "section": "B"},
        {"id": "finn", "first_name": "Finn", "last_name": "Berg", "sis_user_id": "S-9", "sis_login_id": "fberg"},
    ]
    results = class_of_five()
    canvas, left_out = write_canvas(results, roster, "Convolution (4123)", tmp_path)
    assert left_out == ["cy", "dave"]  # a pending answer; a notebook that could not be graded
    with open(canvas, newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [*CANVAS_COLUMNS, "Convolution (4123)"]
    assert table[1] == ["Points Possible", "", "", "", "", "10"]
    assert table[2:] == [
        ["Lovelace, Ada", "71", "ada", "", "", "10"],
        ["Ng, Ben", "", "ben", "", "B", "7.2"],  # 8 points, 10 % off for 5 hours late
        ["Berg, Finn", "", "S-9", "fberg", "", "0"],
    ]
    moodle, _ = write_moodle(results, roster, "Convolution", tmp_path)
    with open(moodle, newline="") as handle:
        table = list(csv.reader(handle))
    assert table[0] == [*MOODLE_COLUMNS, "Convolution", "Convolution feedback"]
    by_id = {row[2]: row for row in table[1:]}
    assert sorted(by_id) == ["ada", "ben", "finn"]
    assert by_id["ben"][:5] == ["Ben", "Ng", "ben", "ben@example.org", "7.2"]
    assert by_id["ben"][5].startswith("7.2 of 10 points (autograded 6 of 8, written answers 2 of 2); 10% deducted")
    assert by_id["finn"][5] == "0 of 10 points: no submission."


def test_a_missing_submission_waits_for_a_running_extension():
    future = policy(extensions={"finn": datetime.now(UTC) + timedelta(days=2)})
    waiting = with_lateness(result("finn", [0, 0, 0], status="no submission", submitted=False), future)
    assert not waiting.final
    assert with_lateness(result("gus", [0, 0, 0], status="no submission", submitted=False), future).final


def test_report_numbers(tmp_path):
    from course_lib.grading.course import Course

    course = Course(tmp_path, ASSIGNMENT, tmp_path / "source", CELLS)
    stats = {s.name: s for s in class_statistics(course, class_of_five())}
    t1 = stats["t1"]  # ada 4, ben 4, cy 0 (dave and finn have no submission)
    assert t1.scores == [4, 4, 0]
    assert t1.mean == pytest.approx(8 / 3) and t1.median == 4
    assert (t1.full_share, t1.zero_share) == (pytest.approx(2 / 3), pytest.approx(1 / 3))
    written = stats["w"]
    assert (written.scores, written.pending) == ([2, 2], 1)  # cy's answer waits: not a zero
    total = stats["total"]
    assert total.scores == [10, 7.2] and total.pending == 1  # after the penalty; cy is not final


def test_grade_changes_are_recorded_once_each(tmp_path):
    first = [grades_row(r) for r in class_of_five()]
    record, count = record_changes(tmp_path, first, "course-grade a --out o")
    assert count == 5
    (tmp_path / "grades.csv").write_text(",".join(GRADES_COLUMNS) + "\n" + "\n".join(",".join(r) for r in first))
    assert record_changes(tmp_path, first, "course-grade a --out o")[1] == 0  # nothing changed, nothing added
    regraded = class_of_five()
    regraded[2].cells[2] = CellResult(CELLS[2], 2.0, "graded", False)  # cy's written answer graded
    _, count = record_changes(tmp_path, [grades_row(r) for r in regraded], "course-grade a --out o --student cy")
    assert count == 1
    with open(record, newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [row["changes"] for row in table][:5] == ["first grades"] * 5
    assert table[-1]["student_id"] == "cy" and table[-1]["run"].endswith("--student cy")
    assert table[-1]["changes"] == "score 4 -> 6; raw_score 4 -> 6; pending_points 2 -> 0"


# ---------------------------------------------------------------- hidden-test marks and rename advice

ANSI_TRACEBACK = [
    "\x1b[31m---------------------------------------------------------------------------\x1b[39m",
    "\x1b[31mNotImplementedError\x1b[39m    Traceback (most recent call last)",
    "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[2]\x1b[39m\x1b[32m, line 4\x1b[39m, in \x1b[36mconv\x1b[39m(x)",
    "\x1b[32m----> 4\x1b[39m     raise NotImplementedError()",
    "During handling of the above exception, another exception occurred:",
    "\x1b[31mCheckFailed\x1b[39m    Traceback (most recent call last)",
    "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[7]\x1b[39m\x1b[32m, line 5\x1b[39m",
    "\x1b[32m----> 5\x1b[39m secret_check(conv, kernel_size=(3, 2))",
    "\x1b[31mCheckFailed\x1b[39m: conv raised NotImplementedError",
]


def test_the_failing_line_is_the_cells_own_in_a_chained_traceback():
    output = {"output_type": "error", "traceback": ANSI_TRACEBACK}
    assert failing_line(output) == 5  # not line 4 of the student's function in cell 2
    assert failing_line(output, execution_count=7) == 5
    assert failing_line({"traceback": ["CheckFailed: no frames"]}) is None


def test_feedback_marks_failures_from_hidden_tests():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    source = "\n".join(
        [
            "check(conv)",
            "check(conv, bias=False)",
            "### BEGIN HIDDEN TESTS",
            "secret_check(conv)",
            "secret_check(conv, kernel_size=(3, 2))",  # line 5, where the traceback says the error came from
            "### END HIDDEN TESTS",
        ]
    )
    hidden = new_code_cell(source, execution_count=7)
    hidden.metadata = {"nbgrader": {"grade": True, "grade_id": "t", "points": 2, "solution": False}}
    hidden.outputs = [new_output("error", ename="CheckFailed", evalue="conv raised", traceback=ANSI_TRACEBACK)]
    visible = copy.deepcopy(hidden)
    visible.id = "visible"
    visible.outputs[0].traceback = [line.replace("line 5", "line 1") for line in ANSI_TRACEBACK]
    notebook, _ = HideTestsInFeedback().preprocess(new_notebook(cells=[hidden, visible]), {})
    assert notebook.cells[0].outputs[-1].traceback == ["CheckFailed: conv raised", HideTestsInFeedback.FROM_HIDDEN]
    assert notebook.cells[1].outputs[-1].traceback == ["CheckFailed: conv raised"]  # a visible check: no mark
    assert "secret_check" not in notebook.cells[0].source


def notebook_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"cells": [], "nbformat": 4, "metadata": {}, "nbformat_minor": 5}))
    return path


def test_rename_advice_fits_the_layout_and_counts_each_file_once(tmp_path):
    notebook_file(tmp_path / "flat" / "dave_convolution-final.ipynb")
    notebook_file(tmp_path / "flat" / "dave_numpy.py")
    notebook_file(tmp_path / "lms" / "Dave Smith_dave_assignsubmission_conv (1).ipynb")
    notebook_file(tmp_path / "folders" / "dave" / "convolution (1).ipynb")
    notebook_file(tmp_path / "nbgrader" / "dave" / ASSIGNMENT / "conv.ipynb")
    for layout in ("folders", "nbgrader"):  # a class of one folder would be taken for a wrapping folder
        notebook_file(tmp_path / layout / "ada" / "convolution.ipynb")
    expected = {
        "flat": ("dave_convolution.ipynb", "{student}_{notebook}.ipynb"),
        "lms": ("Dave Smith_dave_assignsubmission_convolution.ipynb", "*_{student}_assignsubmission_{notebook}.ipynb"),
        "folders": ("dave/convolution.ipynb", "{student}_{notebook}.ipynb"),
        "nbgrader": (f"dave/{ASSIGNMENT}/convolution.ipynb", "{student}_{notebook}.ipynb"),
    }
    for layout, (name, pattern) in expected.items():
        problems = collect_submissions(tmp_path / layout, ASSIGNMENT, ["convolution"], pattern)["dave"].problems
        assert f"Name it {name} and grade again with --student dave" in problems[0], (layout, problems)
    flat = collect_submissions(tmp_path / "flat", ASSIGNMENT, ["convolution"])["dave"].problems
    assert flat[1:] == ["other files ignored: 1 (only the assignment's notebooks are graded)"]  # not the notebook


def test_deleted_test_cells_are_put_back_where_they_were():
    from course_lib.grading.notebooks import restore_test_cells

    released = release(ASSIGNMENT)
    submitted = copy.deepcopy(released)
    tests = [
        c for c in submitted["cells"] if c["metadata"].get("nbgrader", {}).get("grade") and c["cell_type"] == "code"
    ]
    deleted = {tests[1]["metadata"]["nbgrader"]["grade_id"], tests[-1]["metadata"]["nbgrader"]["grade_id"]}
    submitted["cells"] = [
        c for c in submitted["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") not in deleted
    ]
    restore_test_cells(submitted, released)
    assert submitted == released  # same cells, same order
    restore_test_cells(submitted, released)
    assert submitted == released  # nothing to put back twice


def test_nbgrader_timestamp_counts_and_a_students_own_does_not(tmp_path):
    notebook_file(tmp_path / "nb" / "ada" / ASSIGNMENT / "convolution.ipynb")
    (tmp_path / "nb" / "ada" / ASSIGNMENT / "timestamp.txt").write_text("2025-03-01 21:00:00.000000 UTC")
    notebook_file(tmp_path / "own" / "ben" / "convolution.ipynb")
    (tmp_path / "own" / "ben" / "timestamp.txt").write_text("2020-01-01 00:00:00 UTC")
    ada = collect_submissions(tmp_path / "nb", ASSIGNMENT, ["convolution"])["ada"]
    assert ada.submitted_at == datetime(2025, 3, 1, 21, tzinfo=UTC) and ada.others == []
    ben = collect_submissions(tmp_path / "own", ASSIGNMENT, ["convolution"])["ben"]
    assert ben.submitted_at is None and ben.others == ["timestamp.txt"]


def test_readme_options_are_the_commands():
    """One source for defaults: the README's options table is made from the parser's help."""
    readme = (PROJECT_ROOT / "grading" / "README.md").read_text()
    assert options_table() in readme, "regenerate the table in grading/README.md with options_table()"
    outside = readme.replace(options_table(), "")
    assert re.findall(r"`--[\w-]+`[^.|\n]{0,20}default", outside) == []  # defaults are quoted in the table only


# ---------------------------------------------------------------- one class, end to end

# Two ways of writing the answers that are not the solution's: independent work for the similarity check.
OWN_ANSWERS = {
    "conv_output_size": '''def conv_output_size(size, kernel_size, stride=1, padding=0):
    """How many windows of length kernel_size fit, every stride positions, in the padded input."""
    padded = size + padding * 2
    return 1 + (padded - kernel_size) // stride''',
    "conv2d_naive": '''def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    """2D convolution (cross-correlation) by its definition, one output value at a time."""
    n_images, channels, rows, cols = x.shape
    n_filters, _, kr, kc = weight.shape
    padded = torch.zeros(n_images, channels, rows + 2 * padding, cols + 2 * padding, dtype=x.dtype)
    padded[:, :, padding:padding + rows, padding:padding + cols] = x
    height = conv_output_size(rows, kr, stride, padding)
    width = conv_output_size(cols, kc, stride, padding)
    result = torch.empty(n_images, n_filters, height, width, dtype=x.dtype)
    for image in range(n_images):
        for f in range(n_filters):
            offset = 0.0 if bias is None else bias[f]
            for r in range(height):
                top = r * stride
                for c in range(width):
                    left = c * stride
                    patch = padded[image, :, top:top + kr, left:left + kc]
                    result[image, f, r, c] = torch.sum(patch * weight[f]) + offset
    return result''',
    "im2col": '''def im2col(x, kernel_size, stride=1, padding=0):
    """Every kH x kW window of the padded input as one column: (N, C*kH*kW, out_h*out_w)."""
    kr, kc = kernel_size
    n_images, channels, rows, cols = x.shape
    padded = F.pad(x, [padding] * 4)
    height = conv_output_size(rows, kr, stride, padding)
    width = conv_output_size(cols, kc, stride, padding)
    out = x.new_empty(n_images, channels * kr * kc, height * width)
    index = 0
    for r in range(0, height * stride, stride):
        for c in range(0, width * stride, stride):
            out[:, :, index] = padded[:, :, r:r + kr, c:c + kc].flatten(start_dim=1)
            index += 1
    return out''',
    "conv2d_im2col": '''def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    """2D convolution as one matrix product of the flattened kernels with im2col's columns."""
    n_filters, channels, kr, kc = weight.shape
    columns = im2col(x, (kr, kc), stride=stride, padding=padding)
    flat = weight.view(n_filters, channels * kr * kc)
    result = torch.matmul(flat, columns)
    if bias is not None:
        result += bias[None, :, None]
    height = conv_output_size(x.shape[2], kr, stride, padding)
    width = conv_output_size(x.shape[3], kc, stride, padding)
    return result.view(x.shape[0], n_filters, height, width)''',
    "answer_im2col": "Python runs one small operation per output value, so the overhead of each call dominates. "
    "The matrix product hands all the arithmetic to optimised library code at once. It pays in memory: "
    "each input value is copied up to nine times for a 3x3 kernel.",
}
# cy's bug shows only in hidden tests: kernels are taken to be square (the visible checks use 3x3 kernels).
SQUARE_ONLY = {
    **OWN_ANSWERS,
    "conv2d_naive": OWN_ANSWERS["conv2d_naive"].replace(
        "n_filters, _, kr, kc = weight.shape", "n_filters, _, kr, _ = weight.shape\n    kc = kr"
    ),
}
STUB = "def {0}(*args, **kwargs):\n    raise NotImplementedError()"


def released_answer(grade_id: str) -> str:
    """A cell as students receive it (an answer left as it was)."""
    cell = next(
        c for c in release(ASSIGNMENT)["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == grade_id
    )
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def renamed_copy(notebook: dict) -> dict:
    """ben's: ada's notebook with the variables renamed (what copydetect must see through)."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code" and cell.get("metadata", {}).get("nbgrader", {}).get("solution"):
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            cell["source"] = re.sub(r"\bout\b", "result", source).replace("window", "patch")
    return notebook


CLASS = {  # student -> (notebook, time in the zip: local time in Zurich)
    "ada": (lambda: student_notebook(ASSIGNMENT), (2025, 3, 1, 22, 0, 0)),
    "ben": (lambda: renamed_copy(student_notebook(ASSIGNMENT)), (2025, 3, 2, 1, 0, 0)),  # 61 min late
    "cy": (lambda: student_notebook(ASSIGNMENT, {"replace": SQUARE_ONLY}), (2025, 3, 3, 5, 0, 0)),  # extension
    "dave": (
        lambda: student_notebook(
            ASSIGNMENT,
            {
                "replace": {
                    **{name: STUB.format(name) for name in ("conv2d_naive", "im2col", "conv2d_im2col")},
                    "answer_im2col": released_answer("answer_im2col"),  # left blank: 0, nothing to grade
                }
            },
        ),
        (2025, 3, 1, 20, 0, 0),
    ),
    "eve": (lambda: release(ASSIGNMENT), (2025, 3, 1, 23, 59, 0)),  # the release, handed in on the minute
}
ROSTER = """id,first_name,last_name,email,section,canvas_id
ada,Ada,Lovelace,ada@example.org,A,101
ben,Ben,Ng,ben@example.org,A,102
cy,Cy,Young,cy@example.org,B,103
dave,Dave,Smith,dave@example.org,B,104
eve,Eve,Adams,eve@example.org,A,105
finn,Finn,Berg,finn@example.org,B,106
"""


def snapshot(out: Path, messages: list[str]) -> dict:
    """Every output of a run, as read back from --out."""
    pages = {p.parent.parent.name: p for p in (out / "feedback").glob(f"*/{ASSIGNMENT}/*.html")}
    return {
        "grades": rows(out / "grades.csv"),
        "questions": list(csv.DictReader(open(out / "questions.csv", newline=""))),
        "report": rows(out / "report.csv", "cell"),
        "canvas": list(csv.reader(open(out / "canvas.csv", newline=""))),
        "moodle": list(csv.reader(open(out / "moodle.csv", newline=""))),
        "report_html": (out / "report.html").read_text(),
        "similarity_html": (out / "similarity.html").read_text(),
        "changes": list(csv.DictReader(open(out / "grade-changes.csv", newline=""))),
        "feedback": {student: page.read_bytes() for student, page in pages.items()},
        "feedback_text": {student: page_text(page) for student, page in pages.items()},
        "messages": list(messages),
    }


@pytest.fixture(scope="module")
def cycle(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Grade the class, follow the rename advice for dave, grade two written answers by hand, update."""
    if shutil.which("bwrap") is None:
        pytest.skip("needs bubblewrap (.ci/run installs it)")
    root = tmp_path_factory.mktemp("cycle")
    archive = root / "export.zip"
    with zipfile.ZipFile(archive, "w") as zipped:
        for student, (make, when) in CLASS.items():
            name = f"{student}_convolution{'-final' if student == 'dave' else ''}.ipynb"
            zipped.writestr(zipfile.ZipInfo(f"export/{name}", when), json.dumps(make()))
    (root / "roster.csv").write_text(ROSTER)
    (root / "extensions.csv").write_text("student_id,extra_hours\ncy,48\n")
    out, messages, runs = root / "out", [], {}
    grade(
        GradeConfig(
            assignment=ASSIGNMENT,
            submissions=archive,
            out=out,
            students=root / "roster.csv",
            due=DUE,
            timezone=ZURICH,
            late_percent=10,
            late_cap=50,
            late_grace=15,
            extensions=root / "extensions.csv",
            lms_name="Convolution (4123)",
        ),
        progress=messages.append,
    )
    runs["graded"] = snapshot(out, messages)
    advice = re.search(
        r"Name it (\S+) and grade again with --student dave", runs["graded"]["grades"]["dave"]["problems"]
    )
    fixed = root / "fixed"
    fixed.mkdir()
    (fixed / advice[1]).write_bytes(zipfile.ZipFile(archive).read("export/dave_convolution-final.ipynb"))
    messages.clear()
    grade(GradeConfig(assignment=ASSIGNMENT, submissions=fixed, out=out, student="dave"), progress=messages.append)
    runs["regraded"] = snapshot(out, messages)
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{out / 'gradebook.db'}", course_id="course") as gradebook:  # what formgrader does
        for student in ("ada", "ben"):
            cell = gradebook.find_grade("answer_im2col", "convolution", ASSIGNMENT, student)
            cell.manual_score, cell.needs_manual_grade = 2.0, False
        comment = gradebook.find_comment("answer_im2col", "convolution", ASSIGNMENT, "ada")
        comment.manual_comment = "Clear: the copies cost memory."
        gradebook.db.commit()
    messages.clear()
    grade(GradeConfig(assignment=ASSIGNMENT, out=out), progress=messages.append)  # no options: all kept
    runs["updated"] = snapshot(out, messages)
    runs["out"] = out
    return runs


def test_grades_csv_states_lateness_and_pending_points(cycle):
    grades = cycle["graded"]["grades"]
    assert sorted(grades) == ["ada", "ben", "cy", "dave", "eve", "finn"]
    expected = {  # score, raw, penalty, pending, seconds late, due
        "ada": ("10", "10", "0", "2", "0", "2025-03-01T23:59:00+01:00"),
        "ben": ("9", "10", "1", "2", "3660", "2025-03-01T23:59:00+01:00"),
        "cy": ("6", "6", "0", "2", "0", "2025-03-03T23:59:00+01:00"),  # 48 h extension; 4 points lost to hidden tests
        "eve": ("0", "0", "0", "0", "0", "2025-03-01T23:59:00+01:00"),  # on the minute: on time
    }
    for student, values in expected.items():
        row = grades[student]
        columns = ("score", "raw_score", "late_penalty", "pending_points", "seconds_late", "due")
        assert tuple(row[c] for c in columns) == values, (student, row)
    assert grades["ben"]["submitted_at"] == "2025-03-02T01:00:00+01:00" and grades["ben"]["late_percent"] == "10"
    assert (grades["dave"]["status"], grades["finn"]["status"]) == ("not graded", "no submission")
    assert "other files ignored" not in grades["dave"]["problems"]  # the renamed notebook is counted once
    pending = [q for q in cycle["graded"]["questions"] if q["cell"] == "answer_im2col" and q["student_id"] == "ada"]
    assert pending[0]["score"] == "" and pending[0]["state"] == "pending"
    assert grades["ada"]["needs_manual_grade"] == "true"


def test_rename_advice_works_when_followed(cycle):
    before, after = cycle["graded"]["grades"], cycle["regraded"]["grades"]
    assert after["dave"]["status"] == "graded" and after["dave"]["raw_score"] == "2"  # conv_output_size only
    assert after["dave"]["submitted_at"] == before["dave"]["submitted_at"]  # the zip's time, kept and said so
    assert "kept from the earlier grading" in after["dave"]["problems"]
    for student in ("ada", "ben", "cy", "eve", "finn"):
        assert after[student] == before[student], student
    assert cycle["regraded"]["feedback"].keys() >= {"dave"}
    assert [m for m in cycle["regraded"]["messages"] if m.startswith("feedback written")] == [
        "feedback written for 1 student: dave"
    ]


def test_feedback_says_pending_then_shows_the_grade(cycle):
    first, last = cycle["graded"]["feedback_text"]["ada"], cycle["updated"]["feedback_text"]["ada"]
    assert "Written response (Score: pending" in first and "2.0 points pending: not graded yet" in first
    assert "Score: 0.0 / 2.0" not in first
    assert "convolution (Score: 12.0 / 12.0)" in last and "pending" not in last
    assert "Written response (Score: 2.0 / 2.0)" in last and "Clear: the copies cost memory." in last
    assert "on time" in first


def test_feedback_follows_the_late_penalty(cycle):
    first, last = cycle["graded"]["feedback_text"]["ben"], cycle["updated"]["feedback_text"]["ben"]
    assert "1 h 1 min late (1 started day); 10% of the score deducted" in first
    assert "Late submission penalty (Score: -1.0)" in first and "convolution (Score: 9.0 / 12.0" in first
    assert "Late submission penalty (Score: -1.2)" in last and "convolution (Score: 10.8 / 12.0)" in last
    assert cycle["updated"]["grades"]["ben"]["score"] == "10.8"  # the same number in every output
    assert "(your extension): on time" in cycle["graded"]["feedback_text"]["cy"]


def test_only_changed_feedback_is_written_again(cycle):
    assert "feedback written for 2 students: ada, ben" in cycle["updated"]["messages"]
    for student in ("cy", "dave", "eve"):
        assert cycle["updated"]["feedback"][student] == cycle["regraded"]["feedback"][student], student
    assert "finn" not in cycle["updated"]["feedback"]  # no submission, no page


def test_hidden_test_failures_are_marked_without_their_code(cycle):
    text = cycle["graded"]["feedback_text"]["cy"]
    assert text.count(HideTestsInFeedback.FROM_HIDDEN) == 2  # conv2d_naive's two cells, both in hidden checks
    hidden = [line for cell in graded_cells(PROJECT_ROOT / "solutions" / ASSIGNMENT) for line in cell.hidden_lines]
    for student, page in cycle["updated"]["feedback_text"].items():
        assert [line for line in hidden if line in page] == [], student
    assert HideTestsInFeedback.FROM_HIDDEN not in cycle["updated"]["feedback_text"]["dave"]  # visible checks failed


def test_report_numbers_match_questions_csv(cycle):
    report, questions = cycle["updated"]["report"], cycle["updated"]["questions"]
    for cell, row in report.items():
        if cell == "total":
            continue
        scores = [float(q["score"]) for q in questions if q["cell"] == cell and q["state"] == "graded"]
        assert int(row["scored"]) == len(scores), cell
        assert float(row["mean"]) == pytest.approx(sum(scores) / len(scores), abs=5e-5), cell
        assert float(row["zero_share"]) == pytest.approx(scores.count(0) / len(scores), abs=5e-5), cell
        pending = [q for q in questions if q["cell"] == cell and q["state"] == "pending"]
        assert int(row["pending"]) == len(pending), cell
    assert report["answer_im2col"]["pending"] == "1"  # cy's (dave left it blank: 0, as nbgrader scores it)
    totals = [
        float(r["score"])
        for r in cycle["updated"]["grades"].values()
        if r["pending_points"] == "0" and r["status"] != "no submission"
    ]
    assert float(report["total"]["mean"]) == pytest.approx(sum(totals) / len(totals), abs=5e-5)
    page = cycle["updated"]["report_html"]
    assert 'checks.check_conv2d(conv2d_naive, kernel_size=(3, 2))</code> <span class="hidden">(hidden test)' in page
    assert page.count("<svg") == 8 and "Grading time per student" in page
    assert not re.search(r"(src|href)=\"(https?:|//)|<script|<link", page)  # one file, offline


def test_lms_exports_agree_with_grades_csv(cycle):
    grades = cycle["updated"]["grades"]
    canvas = cycle["updated"]["canvas"]
    assert canvas[0][-1] == "Convolution (4123)" and canvas[1][-1] == "12"  # kept from the first run
    exported = {row[2]: row for row in canvas[2:]}
    assert sorted(exported) == ["ada", "ben", "dave", "eve", "finn"]  # cy's written answer is pending
    for student, row in exported.items():
        assert row[-1] == grades[student]["score"], student
    assert exported["ada"][:5] == ["Lovelace, Ada", "101", "ada", "", "A"]
    moodle = {row[2]: row for row in cycle["updated"]["moodle"][1:]}
    assert sorted(moodle) == sorted(exported)
    assert moodle["ben"][3:5] == ["ben@example.org", "10.8"] and "-1.2 points" in moodle["ben"][5]
    assert any("left out until their grade is final: cy" in m for m in cycle["updated"]["messages"])
    assert any("left out until their grade is final: ada, ben, cy, dave" in m for m in cycle["graded"]["messages"])


def test_every_change_of_a_grade_is_recorded(cycle):
    changes = cycle["updated"]["changes"]
    first = [row for row in changes if row["changes"] == "first grades"]
    assert sorted(row["student_id"] for row in first) == ["ada", "ben", "cy", "dave", "eve", "finn"]
    later = {row["student_id"]: row for row in changes if row["changes"] != "first grades"}
    assert sorted(later) == ["ada", "ben", "dave"]
    assert later["dave"]["run"].endswith("--student dave") and "status not graded -> graded" in later["dave"]["changes"]
    assert later["ada"]["changes"] == "score 10 -> 12; raw_score 10 -> 12; pending_points 2 -> 0"
    assert "late_penalty 1 -> 1.2" in later["ben"]["changes"] and later["ben"]["score"] == "10.8"
    assert later["ben"]["run"] == "course-grade 01-convolution --out " + str(cycle["out"])


def test_similarity_flags_the_copy_only(cycle):
    page = cycle["updated"]["similarity_html"]
    flagged = re.findall(r'<span class="flag">(\w+) and (\w+)</span>', page)
    assert flagged == [("ada", "ben")]  # renamed variables hide nothing; cy's own work is not flagged
    assert "<mark>" in page and not re.search(r"(src|href)=\"(https?:|//)|<script", page)
    grades = cycle["updated"]["grades"]
    assert grades["ada"]["score"] == "12" and grades["ben"]["raw_score"] == "12"  # flagged, never penalised
