"""The assignment notebooks: their structure, their releases, their reference solutions
(equal to the library's functions) and the checks' feedback on typical mistakes."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import PROJECT_ROOT, checks, conv, models, regimes
from course_lib.checks import CheckFailed
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


def test_regimes_solution_equals_library():
    ns = solution_namespace("04-regimes", ("setup", "freeze_backbone", "param_groups", "prepare_model"))
    assert ns["BACKBONE_LR_FACTOR"] == regimes.BACKBONE_LR_FACTOR
    checks.check_prepare_model(ns["prepare_model"], seed=0)


def test_experiment_time_to_target_equals_library():
    ns = solution_namespace("05-experiment", ("time_to_target",))
    checks.check_time_to_target(ns["time_to_target"], trials=50, seed=0)


# ---------------------------------------------------------------- actionable feedback


def failure(check, *args, **kwargs) -> str:
    with pytest.raises(CheckFailed) as error:
        check(*args, **kwargs)
    return str(error.value)


def test_output_size_hints():
    assert "check the padding" in failure(
        checks.check_conv_output_size, lambda s, k, stride=1, padding=0: (s - k) // stride + 1
    )
    assert "+ 1" in failure(
        checks.check_conv_output_size, lambda s, k, stride=1, padding=0: (s + 2 * padding - k) // stride
    )
    message = failure(
        checks.check_conv_output_size, lambda s, k, stride=1, padding=0: (s + 2 * padding - k) / stride + 1
    )
    assert "expected an int" in message and "//" in message


def test_conv2d_hints():
    def no_padding(x, w, b=None, stride=1, padding=0):
        return conv.conv2d_naive(x, w, b, stride=stride)

    message = failure(checks.check_conv2d, no_padding, padding=1)
    assert re.search(
        r"output shape \(\d+, \d+, \d+, \d+\), expected \(\d+, \d+, \d+, \d+\): check the padding", message
    )
    flipped = lambda x, w, b=None, stride=1, padding=0: conv.conv2d_naive(x, w.flip(-1, -2), b, stride, padding)
    assert "do not flip the kernel" in failure(checks.check_conv2d, flipped)
    no_bias = lambda x, w, b=None, stride=1, padding=0: conv.conv2d_naive(x, w, None, stride, padding)
    assert "add the bias" in failure(checks.check_conv2d, no_bias)
    assert "called torch's conv2d" in failure(
        checks.check_conv2d, lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride=stride, padding=padding)
    )
    checks.check_conv2d(conv.conv2d_naive, stride=2, padding=1)
    assert F.conv2d.__name__ == "conv2d"  # restored after the check


def test_checks_do_not_trust_student_objects():
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other):
            return True

    def subclass(x, w, b=None, stride=1, padding=0):
        return conv.conv2d_naive(x, w, b, stride, padding).as_subclass(AlwaysEqual)

    assert "expected a torch.Tensor" in failure(checks.check_conv2d, subclass)
    double = lambda x, w, b=None, stride=1, padding=0: conv.conv2d_naive(
        x.double(), w.double(), None if b is None else b.double(), stride, padding
    )
    assert "dtype torch.float64" in failure(checks.check_conv2d, double)

    class Number(int):
        def __eq__(self, other):
            return True

    assert "expected an int" in failure(checks.check_conv_output_size, lambda *a, **k: Number(0))


def test_block_and_network_hints():
    class NoShortcut(models.BasicBlock):
        def forward(self, x):
            return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))

    assert "add the shortcut" in failure(checks.check_basic_block, NoShortcut, seed=0)

    class Renamed(nn.Module):
        def __init__(self, in_channels, out_channels, stride=1):
            super().__init__()
            self.inner = models.BasicBlock(in_channels, out_channels, stride)

        def forward(self, x):
            return self.inner(x)

    assert "parameter names differ" in failure(checks.check_basic_block, Renamed, seed=0)

    class BiasedStem(models.ResNet18):
        def __init__(self, num_classes=1000):
            super().__init__(num_classes)
            self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)

    assert "64 too many" in failure(checks.check_resnet18, BiasedStem, seed=0)


def test_prepare_model_hints():
    def requires_grad_only(regime, num_classes, weights=None, lr=0.01):
        model, _ = regimes.prepare_model("finetune" if regime != "fresh" else "fresh", num_classes, weights, lr=lr)
        if regime == "feature_extraction":
            for name, parameter in model.named_parameters():
                parameter.requires_grad_(name.startswith("fc."))
        return model, regimes.param_groups(model, regime, lr)

    message = failure(checks.check_prepare_model, requires_grad_only, regimes=("feature_extraction",), seed=0)
    assert "BatchNorm running statistics" in message and "eval mode" in message

    def uses_library_freeze(regime, num_classes, weights=None, lr=0.01):
        model, _ = regimes.prepare_model("finetune", num_classes, weights, lr=lr)
        model.freeze_backbone()
        return model, regimes.param_groups(model, regime, lr)

    assert "write it yourself" in failure(
        checks.check_prepare_model, uses_library_freeze, regimes=("feature_extraction",), seed=0
    )


def test_time_to_target_hint():
    last_epoch = lambda accuracy, seconds, target: seconds[-1] if max(accuracy) >= target else None
    assert "first epoch" in failure(checks.check_time_to_target, last_epoch, seed=0)
