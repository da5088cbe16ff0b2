"""The assignment notebooks: their structure, their releases, their reference solutions (equal to
the library's functions and to the course's versions that the checks run students' code with) and
the timing cell. The checks' hints for typical mistakes are tested in test_checks.py."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

from course_lib import PROJECT_ROOT, checks, conv, models, regimes
from course_lib.grading.assignment import graded_cells
from course_lib.grading.releases import stale_releases

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if list(p.glob("*.ipynb")))


def notebook(folder, assignment):
    return json.loads(next((folder / assignment).glob("*.ipynb")).read_text())


def source(cell) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def solution_namespace(assignment: str, cells: tuple[str, ...]) -> dict:
    """Run the setup cell and the named solution cells of a solution notebook, in order."""
    namespace: dict = {}
    for cell in notebook(SOLUTIONS, assignment)["cells"]:
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if cell["cell_type"] == "code" and (grade_id in cells or grade_id == "setup" and "setup" in cells):
            exec(compile(source(cell), f"{assignment}:{grade_id}", "exec"), namespace)
    return namespace


def test_at_least_five_assignments():
    assert ASSIGNMENTS[:5] == ["01-convolution", "02-residual-block", "03-resnet18", "04-regimes", "05-experiment"]


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_source_structure(assignment):
    """Solution cells, autograded tests with points and hidden parts, and a written answer."""
    cells = graded_cells(SOLUTIONS / assignment)
    auto = [c for c in cells if c.kind == "auto"]
    manual = [c for c in cells if c.kind == "manual"]
    assert auto and manual and all(c.points > 0 for c in cells)
    assert all(c.hidden_lines for c in auto), [c.name for c in auto if not c.hidden_lines]
    text = json.dumps(notebook(SOLUTIONS, assignment))
    assert "### BEGIN SOLUTION" in text and "checks." in text


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_release_has_no_solutions_or_hidden_tests(assignment):
    text = json.dumps(notebook(EXERCISES, assignment))
    for secret in ("BEGIN SOLUTION", "END SOLUTION", "HIDDEN TESTS"):
        assert secret not in text
    assert "raise NotImplementedError()" in text and "YOUR ANSWER HERE" in text


def test_releases_up_to_date():
    """exercises/ is what `python scripts/release_exercises.py` makes from solutions/ now."""
    assert stale_releases(ASSIGNMENTS, EXERCISES) == {}


# ---------------------------------------------------------------- solutions equal the library


def test_convolution_solution_equals_library():
    ns = solution_namespace("01-convolution", ("setup", "conv_output_size", "conv2d_naive", "im2col", "conv2d_im2col"))
    generator = torch.Generator().manual_seed(0)
    for size, kernel, stride, padding in [(7, 3, 1, 0), (8, 3, 2, 1), (9, 2, 3, 2), (5, 5, 1, 0)]:
        assert ns["conv_output_size"](size, kernel, stride, padding) == conv.conv_output_size(
            size, kernel, stride, padding
        )
    for stride, padding in [(1, 0), (2, 1), (3, 2)]:
        x = torch.randn(2, 3, 7, 8, generator=generator)
        weight = torch.randn(4, 3, 3, 2, generator=generator)
        bias = torch.randn(4, generator=generator)
        for mine, theirs in [("conv2d_naive", conv.conv2d_naive), ("conv2d_im2col", conv.conv2d_im2col)]:
            torch.testing.assert_close(
                ns[mine](x, weight, bias, stride, padding),
                theirs(x, weight, bias, stride=stride, padding=padding),
                atol=1e-5,
                rtol=1e-5,
            )
        torch.testing.assert_close(
            ns["im2col"](x, (3, 2), stride, padding), F.unfold(x, (3, 2), stride=stride, padding=padding)
        )
        # the im2col that checks.check_conv2d_im2col runs the student's conv2d_im2col with
        torch.testing.assert_close(
            ns["im2col"](x, (3, 2), stride, padding), checks._course_im2col(x, (3, 2), stride, padding)
        )


def test_residual_block_solution_equals_library():
    ns = solution_namespace("02-residual-block", ("setup", "basic_block"))
    for args in [(8, 8, 1), (8, 16, 2)]:
        mine, reference = ns["BasicBlock"](*args), models.BasicBlock(*args)
        mine.load_state_dict(reference.state_dict(), strict=True)
        x = torch.randn(2, args[0], 6, 6)
        torch.testing.assert_close(mine.eval()(x), reference.eval()(x))
    checks.check_basic_block(ns["BasicBlock"], seed=0)


def test_resnet18_solution_equals_library():
    ns = solution_namespace("03-resnet18", ("setup", "make_stage", "resnet18"))
    mine, reference = ns["ResNet18"](num_classes=5), models.ResNet18(num_classes=5)
    mine.load_state_dict(reference.state_dict(), strict=True)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(mine.eval()(x), reference.eval()(x))


def test_course_make_stage_equals_solution_and_library_stages():
    """The make_stage that the checks build the student's ResNet18 with is the solution's, and the library's stages."""
    ns = solution_namespace("03-resnet18", ("setup", "make_stage"))
    library = models.ResNet18()
    in_channels = 64
    for index, (channels, stride) in enumerate(models.STAGES, start=1):
        course, solution = (
            checks._course_make_stage(in_channels, channels, stride),
            ns["make_stage"](in_channels, channels, stride),
        )
        for stage in (solution, getattr(library, f"layer{index}")):
            assert repr(stage) == repr(course)
            assert {k: v.shape for k, v in stage.state_dict().items()} == {
                k: v.shape for k, v in course.state_dict().items()
            }
        in_channels = channels


def test_regimes_solution_equals_library():
    ns = solution_namespace("04-regimes", ("setup", "freeze_backbone", "param_groups", "prepare_model"))
    assert ns["BACKBONE_LR_FACTOR"] == regimes.BACKBONE_LR_FACTOR
    checks.check_freeze_backbone(ns["freeze_backbone"], seed=0)
    checks.check_param_groups(ns["param_groups"], seed=0)
    checks.check_prepare_model(ns["prepare_model"], seed=0)


def test_course_freeze_backbone_equals_solution():
    """check_prepare_model runs the student's prepare_model with ResNet18.freeze_backbone: the solution's twin."""
    ns = solution_namespace("04-regimes", ("setup", "freeze_backbone"))
    mine, course = models.ResNet18(num_classes=3), models.ResNet18(num_classes=3)
    ns["freeze_backbone"](mine)
    course.freeze_backbone()
    for model in (mine, course):
        model.train()
    assert [(n, p.requires_grad) for n, p in mine.named_parameters()] == [
        (n, p.requires_grad) for n, p in course.named_parameters()
    ]
    assert [(n, m.training) for n, m in mine.named_modules()] == [(n, m.training) for n, m in course.named_modules()]


def test_experiment_time_to_target_equals_library():
    ns = solution_namespace("05-experiment", ("time_to_target",))
    checks.check_time_to_target(ns["time_to_target"], trials=50, seed=0)


def test_timing_cell_says_what_it_measured(capsys):
    """01's timing cell: a warm-up call, rounds in turn, medians, and a ratio inside the range it prints."""
    ns = solution_namespace("01-convolution", ("setup", "conv_output_size", "conv2d_naive", "im2col", "conv2d_im2col"))
    threads = torch.get_num_threads()
    cell = next(
        c for c in notebook(SOLUTIONS, "01-convolution")["cells"] if c["metadata"]["nbgrader"]["grade_id"] == "timing"
    )
    text = source(cell)
    assert "warm-up" in text and text.index("matrix_product()  # warm-up") < text.index("rounds = ")
    exec(compile(text, "01-convolution:timing", "exec"), ns)
    out = capsys.readouterr().out
    assert torch.get_num_threads() == threads
    assert "x of shape (2, 8, 16, 16), weight (16, 8, 3, 3), padding 1, one thread, 7 rounds" in out
    assert out.count("median") == 3
    ratio, low, high = map(float, re.search(r"took ([\d.]+) times as long .*from ([\d.]+) to ([\d.]+)", out).groups())
    assert low <= ratio <= high
    assert ratio == pytest.approx(sorted(a / b for a, b in ns["rounds"])[3], abs=0.05)
