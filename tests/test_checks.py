"""The student-facing checks: each typical mistake reaches the hint that names it, and a test of one
function runs with the course's versions of the functions it builds on, so one mistake fails one test."""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib import PROJECT_ROOT, checks, conv, models, regimes
from course_lib.checks import CheckFailed
from course_lib.history import EpochRecord, History

SOLUTIONS = PROJECT_ROOT / "solutions"


def failure(check: Callable, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(CheckFailed) as error:
        check(*args, **kwargs)
    return str(error.value)


def notebook_namespace(assignment: str, *cells: str) -> dict:
    """The setup cell and the named solution cells of an assignment, run in one namespace as in a kernel."""
    notebook = json.loads(next((SOLUTIONS / assignment).glob("*.ipynb")).read_text())
    namespace: dict = {}
    for cell in notebook["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in ("setup", *cells):
            source = re.sub(r"[ ]*### (BEGIN|END) SOLUTION\n", "", "".join(cell["source"]))
            exec(compile(source, f"{assignment}:{grade_id}", "exec"), namespace)
    return namespace


def ids(table: list[tuple]) -> list[str]:
    return [row[0] for row in table]


# ---------------------------------------------------------------- the output size


SIZE_MISTAKES = [
    ("no padding", lambda s, k, stride=1, padding=0: (s - k) // stride + 1, "check the padding"),
    ("padding once", lambda s, k, stride=1, padding=0: (s + padding - k) // stride + 1, "2 * padding"),
    ("no + 1", lambda s, k, stride=1, padding=0: (s + 2 * padding - k) // stride, "count the first window too (+ 1)"),
    ("no stride", lambda s, k, stride=1, padding=0: s + 2 * padding - k + 1, "check the stride"),
    ("rounds up", lambda s, k, stride=1, padding=0: -(-(s + 2 * padding - k) // stride) + 1, "round down (floor)"),
    (
        "true division",
        lambda s, k, stride=1, padding=0: (s + 2 * padding - k) / stride + 1,
        "expected an int (use integer division //)",
    ),
    ("not written yet", lambda s, k, stride=1, padding=0: int("not written"), "raised ValueError"),
]


@pytest.mark.parametrize(("mistake", "size", "hint"), SIZE_MISTAKES, ids=ids(SIZE_MISTAKES))
def test_output_size_mistakes_reach_their_hint(mistake: str, size: Callable, hint: str) -> None:
    assert hint in failure(checks.check_conv_output_size, size, seed=0)


# ---------------------------------------------------------------- conv2d_naive


def loops(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride: int, out: tuple) -> torch.Tensor:
    """The loops of conv2d_naive over an input that is already padded, for an output of size ``out``."""
    k_h, k_w = weight.shape[2:]
    result = torch.zeros(x.shape[0], weight.shape[0], *out)
    for i in range(out[0]):
        for j in range(out[1]):
            window = x[:, None, :, i * stride : i * stride + k_h, j * stride : j * stride + k_w]
            result[:, :, i, j] = (window * weight).sum(dim=(2, 3, 4))
    return result if bias is None else result + bias.reshape(1, -1, 1, 1)


def padded_with(pad: Callable[[torch.Tensor, int], torch.Tensor]) -> Callable:
    """A conv2d_naive that pads its input with ``pad(x, padding)`` and is otherwise right."""

    def conv2d(
        x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
    ) -> torch.Tensor:
        out = [conv.conv_output_size(x.shape[2 + a], weight.shape[2 + a], stride, padding) for a in range(2)]
        return loops(pad(x, padding), weight, bias, stride, tuple(out))

    return conv2d


def in_corner(x: torch.Tensor, padding: int) -> torch.Tensor:
    """Zero-padding by hand that puts the input in the top left corner."""
    padded = torch.zeros(*x.shape[:2], x.shape[2] + 2 * padding, x.shape[3] + 2 * padding)
    padded[:, :, : x.shape[2], : x.shape[3]] = x
    return padded


right = padded_with(lambda x, p: F.pad(x, (p, p, p, p)))


def forgets_stride(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """The output has the strided size, but window (i, j) starts at (i, j): the window does not move by the stride."""
    out = [conv.conv_output_size(x.shape[2 + a], weight.shape[2 + a], stride, padding) for a in range(2)]
    return loops(F.pad(x, (padding,) * 4), weight, bias, 1, tuple(out))


CONV2D_MISTAKES = [
    (
        "no padding",
        {"padding": 1},
        lambda x, w, b=None, stride=1, padding=0: right(x, w, b, stride),
        "check the padding",
    ),
    (
        "no stride",
        {"stride": 2},
        lambda x, w, b=None, stride=1, padding=0: right(x, w, b, 1, padding),
        "check the stride",
    ),
    (
        "height and width swapped",
        {},
        lambda x, w, b=None, stride=1, padding=0: right(x, w, b, stride, padding).transpose(2, 3),
        "height and width are swapped",
    ),
    (
        "kernel flipped",
        {},
        lambda x, w, b=None, stride=1, padding=0: right(x, w.flip(-1, -2), b, stride, padding),
        "do not flip the kernel",
    ),
    ("bias left out", {}, lambda x, w, b=None, stride=1, padding=0: right(x, w, None, stride, padding), "add the bias"),
    (
        "calls torch",
        {},
        lambda x, w, b=None, stride=1, padding=0: F.conv2d(x, w, b, stride=stride, padding=padding),
        "called torch's conv2d",
    ),
    (
        "padding on one side only",
        {"padding": 1},
        padded_with(lambda x, p: F.pad(x, (p, 0, p, 0))),
        "F.pad(x, (1, 0, 1, 0)) pads the left and top only",
    ),
    (
        "F.pad with two amounts",
        {"padding": 2},
        padded_with(lambda x, p: F.pad(x, (p, p))),
        "F.pad(x, (2, 2)) pads the width only",
    ),
    ("zeros by hand, input in a corner", {"padding": 1}, padded_with(in_corner), "the input sits in one corner"),
    ("window does not move by the stride", {"stride": 2}, forgets_stride, "the window moves by stride positions"),
    (
        "float64 result",
        {},
        lambda x, w, b=None, stride=1, padding=0: right(x, w, b, stride, padding).double(),
        "dtype torch.float64",
    ),
    (
        "one input channel only",
        {},
        lambda x, w, b=None, stride=1, padding=0: right(x[:, :1].expand_as(x), w, b, stride, padding),
        "check which input window each output value sums over",
    ),
    (
        "not written yet",
        {},
        lambda x, w, b=None, stride=1, padding=0: right(x, w, b, stride, padding=None),
        "raised TypeError",
    ),
]


@pytest.mark.parametrize(("mistake", "settings", "conv2d", "hint"), CONV2D_MISTAKES, ids=ids(CONV2D_MISTAKES))
def test_conv2d_mistakes_reach_their_hint(mistake: str, settings: dict, conv2d: Callable, hint: str) -> None:
    assert hint in failure(checks.check_conv2d, conv2d, seed=0, **settings)


def test_conv2d_passes_the_right_loops_and_restores_torch(capsys: pytest.CaptureFixture) -> None:
    checks.check_conv2d(right, stride=2, padding=1, seed=0)
    checks.check_conv2d(right, seed=0)
    checks.check_conv2d(right, bias=False, seed=0)
    assert (F.conv2d.__name__, torch.conv2d.__name__, F.unfold.__name__, F.pad.__name__) == (
        "conv2d",
        "conv2d",
        "unfold",
        "pad",
    )
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(set(lines)) == 3  # distinct checks print distinct lines


def test_checks_do_not_trust_student_objects() -> None:
    class AlwaysEqual(torch.Tensor):
        def __eq__(self, other: object) -> bool:
            return True

    subclass = lambda x, w, b=None, stride=1, padding=0: right(x, w, b, stride, padding).as_subclass(AlwaysEqual)
    assert "expected a torch.Tensor" in failure(checks.check_conv2d, subclass, seed=0)

    class Number(int):
        def __eq__(self, other: object) -> bool:
            return True

    assert "expected an int" in failure(checks.check_conv_output_size, lambda *a, **k: Number(0), seed=0)


# ---------------------------------------------------------------- im2col and conv2d_im2col


def windows(padded: torch.Tensor, kernel_size: tuple, stride: int, order: str = "rows") -> torch.Tensor:
    """im2col by loops over an input that is already padded.

    ``order``: "rows" is right (windows row-major, each listed channel by channel); "columns" lists
    the windows column-major; "channels last" lists each window position by position, channels innermost.
    """
    k_h, k_w = kernel_size
    out_h, out_w = (padded.shape[2] - k_h) // stride + 1, (padded.shape[3] - k_w) // stride + 1
    spots = [(i, j) for i in range(out_h) for j in range(out_w)]
    if order == "columns":
        spots = [(i, j) for j in range(out_w) for i in range(out_h)]
    columns = []
    for i, j in spots:
        window = padded[:, :, i * stride : i * stride + k_h, j * stride : j * stride + k_w]
        columns.append((window.permute(0, 2, 3, 1) if order == "channels last" else window).flatten(1))
    return torch.stack(columns, dim=2)


def im2col_forgets_stride(x: torch.Tensor, kernel_size: tuple, stride: int = 1, padding: int = 0) -> torch.Tensor:
    """As many columns as the stride gives, but column (i, j) holds the window at (i, j)."""
    out_h, out_w = (conv.conv_output_size(x.shape[2 + a], kernel_size[a], stride, padding) for a in range(2))
    padded, (k_h, k_w) = F.pad(x, (padding,) * 4), kernel_size
    columns = [padded[:, :, i : i + k_h, j : j + k_w].flatten(1) for i in range(out_h) for j in range(out_w)]
    return torch.stack(columns, dim=2)


IM2COL_MISTAKES = [
    (
        "window does not move by the stride",
        {"stride": 2},
        im2col_forgets_stride,
        "the window moves by stride positions",
    ),
    (
        "channels last in each column",
        {"trials": 10},
        lambda x, k, stride=1, padding=0: windows(F.pad(x, (padding,) * 4), k, stride, "channels last"),
        "right numbers in the wrong order",
    ),
    (
        "windows column-major",
        {"kernel_size": (2, 2)},
        lambda x, k, stride=1, padding=0: windows(F.pad(x, (padding,) * 4), k, stride, "columns"),
        "column l must hold the input window of output position l",
    ),
    (
        "transposed",
        {},
        lambda x, k, stride=1, padding=0: windows(F.pad(x, (padding,) * 4), k, stride).transpose(1, 2),
        "rows are kernel entries, columns are windows: transpose",
    ),
    ("no padding", {"padding": 1}, lambda x, k, stride=1, padding=0: windows(x, k, stride), "check the padding"),
    (
        "padding on one side only",
        {"padding": 1},
        lambda x, k, stride=1, padding=0: windows(F.pad(x, (0, padding, 0, padding)), k, stride),
        "F.pad(x, (0, 1, 0, 1)) pads the right and bottom only",
    ),
    (
        "calls torch",
        {},
        lambda x, k, stride=1, padding=0: F.unfold(x, k, stride=stride, padding=padding),
        "called torch's unfold",
    ),
]


@pytest.mark.parametrize(("mistake", "settings", "im2col", "hint"), IM2COL_MISTAKES, ids=ids(IM2COL_MISTAKES))
def test_im2col_mistakes_reach_their_hint(mistake: str, settings: dict, im2col: Callable, hint: str) -> None:
    assert hint in failure(checks.check_im2col, im2col, seed=0, **settings)


def test_im2col_check_prints_its_settings(capsys: pytest.CaptureFixture) -> None:
    right_im2col = lambda x, k, stride=1, padding=0: windows(F.pad(x, (padding,) * 4), k, stride)
    checks.check_im2col(right_im2col, seed=0)
    checks.check_im2col(right_im2col, kernel_size=(2, 3), stride=2, padding=1, seed=0)
    first, second = capsys.readouterr().out.splitlines()
    assert first != second and "stride=2, padding=1, kernel 2x3" in second


CONV2D_IM2COL_MISTAKES = [
    (
        "bias left out",
        "out = weight.reshape(weight.shape[0], -1) @ im2col(x, weight.shape[2:], stride, padding)",
        "add the bias",
    ),
    ("calls torch", "out = F.conv2d(x, weight, bias, stride=stride, padding=padding)", "called torch's conv2d"),
]


@pytest.mark.parametrize(("mistake", "line", "hint"), CONV2D_IM2COL_MISTAKES, ids=ids(CONV2D_IM2COL_MISTAKES))
def test_conv2d_im2col_mistakes_reach_their_hint(mistake: str, line: str, hint: str) -> None:
    ns = notebook_namespace("01-convolution", "conv_output_size", "im2col")
    exec(
        "def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):\n"
        f"    {line}\n"
        "    out_h = conv_output_size(x.shape[2], weight.shape[2], stride, padding)\n"
        "    out_w = conv_output_size(x.shape[3], weight.shape[3], stride, padding)\n"
        "    return out.reshape(x.shape[0], weight.shape[0], out_h, out_w)\n",
        ns,
    )
    assert hint in failure(checks.check_conv2d_im2col, ns["conv2d_im2col"], seed=0)


def test_convolution_checks_use_the_course_helpers_not_the_students() -> None:
    """A wrong conv_output_size and a blank im2col fail their own checks only; the notebook keeps them."""
    ns = notebook_namespace("01-convolution", "conv_output_size", "conv2d_naive", "im2col", "conv2d_im2col")
    exec(
        "def conv_output_size(size, kernel_size, stride=1, padding=0):\n"
        "    return (size + 2 * padding - kernel_size) // stride",
        ns,
    )
    exec("def im2col(x, kernel_size, stride=1, padding=0):\n    raise NotImplementedError()", ns)
    wrong_size, blank_im2col = ns["conv_output_size"], ns["im2col"]
    checks.check_conv2d(ns["conv2d_naive"], stride=2, padding=1, seed=0)
    checks.check_conv2d_im2col(ns["conv2d_im2col"], stride=2, padding=1, seed=0)
    assert "count the first window too (+ 1)" in failure(checks.check_conv_output_size, wrong_size, seed=0)
    assert "raised NotImplementedError" in failure(checks.check_im2col, blank_im2col, seed=0)
    assert ns["conv_output_size"] is wrong_size and ns["im2col"] is blank_im2col


def test_a_crash_with_a_course_helper_says_so() -> None:
    """A function that calls its helper otherwise than the assignment says learns that the helper was the course's."""
    ns = {"torch": torch, "F": F}
    exec(
        "def conv_output_size(size, kernel, s, p):\n    return (size + 2 * p - kernel) // s + 1\n"
        "def conv2d_naive(x, weight, bias=None, stride=1, padding=0):\n"
        "    conv_output_size(size=x.shape[2], kernel=weight.shape[2], s=stride, p=padding)\n",
        ns,
    )
    message = failure(checks.check_conv2d, ns["conv2d_naive"], seed=0)
    assert "raised TypeError" in message and "course's conv_output_size" in message


# ---------------------------------------------------------------- the residual block


class Block(nn.Module):
    """A basic block with switches for the typical mistakes; with none switched on it is the reference block."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        stride: int = 1,
        *,
        bias: bool = False,
        project_on_channels: bool = True,
        projection_stride: bool = True,
        conv1_stride: bool = True,
        conv2_stride: bool = False,
        always_project: bool = False,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride if conv1_stride else 1, 1, bias=bias)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride if conv2_stride else 1, 1, bias=bias)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if always_project or stride != 1 or (project_on_channels and in_channels != out_channels):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride if projection_stride else 1, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branch = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.combine(branch, x if self.downsample is None else self.downsample(x))

    def combine(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.relu(branch + shortcut)


class NoFinalRelu(Block):
    def combine(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return branch + shortcut


class ReluBeforeAdd(Block):
    def combine(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.relu(branch) + shortcut


class NoShortcut(Block):
    def combine(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.relu(branch)


class ShortcutTwice(Block):
    def combine(self, branch: torch.Tensor, shortcut: torch.Tensor) -> torch.Tensor:
        return self.relu(branch + 2 * shortcut)


class BatchNormFirst(Block):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.conv1(x))
        out = self.bn2(self.conv2(self.bn1(out)))
        return self.relu(out + (x if self.downsample is None else self.downsample(x)))


class Renamed(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.inner = models.BasicBlock(in_channels, out_channels, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x)


NO_STRIDE1_PROJECTION = functools.partial(Block, project_on_channels=False)
PROJECTION_WITHOUT_STRIDE = functools.partial(Block, projection_stride=False)

BLOCK_SHAPE_MISTAKES = [
    (
        "no projection when only the channels change",
        NO_STRIDE1_PROJECTION,
        "the shortcut needs a projection",
    ),
    (
        "projection without the stride",
        PROJECTION_WITHOUT_STRIDE,
        "the projection's 1x1 convolution has stride 1, expected 2: the projection takes the block's stride",
    ),
    (
        "conv1 without the stride",
        functools.partial(Block, conv1_stride=False),
        "conv1 has stride 1, expected 2: the first convolution takes the block's stride",
    ),
    (
        "conv2 with the stride",
        functools.partial(Block, conv2_stride=True),
        "conv2 has stride 2, expected 1: the second convolution keeps the size",
    ),
    (
        "a projection on the identity shortcut",
        functools.partial(Block, always_project=True),
        "the block keeps the shape, so the shortcut is the identity: downsample = None",
    ),
]


@pytest.mark.parametrize(("mistake", "block", "hint"), BLOCK_SHAPE_MISTAKES, ids=ids(BLOCK_SHAPE_MISTAKES))
def test_block_shape_mistakes_reach_their_hint(mistake: str, block: Callable, hint: str) -> None:
    assert hint in failure(checks.check_block_shapes, block, seed=0)


BLOCK_MISTAKES = [
    *BLOCK_SHAPE_MISTAKES[:2],
    (
        "convolutions with a bias",
        functools.partial(Block, bias=True),
        "conv1 has a bias: a convolution followed by BatchNorm has none (bias=False)",
    ),
    ("renamed layers", Renamed, "parameter names differ from the reference"),
    ("no shortcut", NoShortcut, "add the shortcut (x, or its projection) before the final ReLU"),
    ("no final ReLU", NoFinalRelu, "apply the final ReLU after adding the shortcut"),
    ("ReLU before the addition", ReluBeforeAdd, "add the shortcut before the final ReLU, not after it"),
    ("BatchNorm in the wrong place", BatchNormFirst, "the order is conv1, bn1, relu, conv2, bn2, + shortcut, relu"),
]


@pytest.mark.parametrize(("mistake", "block", "hint"), BLOCK_MISTAKES, ids=ids(BLOCK_MISTAKES))
def test_block_mistakes_reach_their_hint(mistake: str, block: Callable, hint: str) -> None:
    assert hint in failure(checks.check_basic_block, block, seed=0)


ZEROED_RESIDUAL_MISTAKES = [
    ("no final ReLU", NoFinalRelu, "it returns F(x) + x: the final ReLU is missing"),
    ("ReLU before the addition", ReluBeforeAdd, "the ReLU comes before the addition (relu(F(x)) + x)"),
    ("no shortcut", NoShortcut, "the shortcut is missing"),
    ("shortcut added twice", ShortcutTwice, "the identity shortcut must add x itself, unchanged"),
    ("a projection on the identity shortcut", functools.partial(Block, always_project=True), "downsample = None"),
]


@pytest.mark.parametrize(("mistake", "block", "hint"), ZEROED_RESIDUAL_MISTAKES, ids=ids(ZEROED_RESIDUAL_MISTAKES))
def test_zeroed_residual_mistakes_reach_their_hint(mistake: str, block: Callable, hint: str) -> None:
    assert hint in failure(checks.check_zeroed_residual, block, seed=0)


def test_the_reference_test_leaves_the_shortcut_rule_to_the_shape_test() -> None:
    """The cases of 02's test cells: a block without the stride-1 projection fails the shape test only."""
    checks.check_basic_block(NO_STRIDE1_PROJECTION, cases=((8, 8, 1), (8, 16, 2)), seed=0)
    checks.check_basic_block(NO_STRIDE1_PROJECTION, cases=((3, 8, 2), (16, 16, 1)), seed=0)
    checks.check_zeroed_residual(NO_STRIDE1_PROJECTION, seed=0)
    assert "the shortcut needs a projection" in failure(
        checks.check_block_shapes, NO_STRIDE1_PROJECTION, cases=((16, 32, 1), (16, 16, 2)), seed=0
    )
    checks.check_basic_block(Block, seed=0)


def test_output_shape_check() -> None:
    assert "output shape (1, 4, 3, 3), expected (1, 4, 5, 5)" in failure(
        checks.check_output_shape, nn.Conv2d(2, 4, 3), torch.randn(1, 2, 5, 5), (1, 4, 5, 5)
    )
    assert "raised RuntimeError" in failure(checks.check_output_shape, nn.Conv2d(3, 4, 3), torch.randn(1, 2, 5, 5), ())


# ---------------------------------------------------------------- ResNet-18


def stage(first: tuple[int, int, int], second: tuple[int, int, int]) -> nn.Sequential:
    return nn.Sequential(models.BasicBlock(*first), models.BasicBlock(*second))


STAGE_MISTAKES = [
    (
        "the second block strides too",
        lambda i, o, s: stage((i, o, s), (o, o, s)),
        "the second block strides too (stride 2), so the stage downsamples twice",
    ),
    (
        "the first block without the stride",
        lambda i, o, s: stage((i, o, 1), (o, o, 1)),
        "the first block has stride 1, expected 2",
    ),
    (
        "the second block takes in_channels",
        lambda i, o, s: stage((i, o, s), (i, o, 1)),
        "the second block maps 64 to 128 channels, expected 128 to 128",
    ),
    ("a list", lambda i, o, s: [models.BasicBlock(i, o, s), models.BasicBlock(o, o)], "an nn.Sequential of two blocks"),
    ("one block", lambda i, o, s: nn.Sequential(models.BasicBlock(i, o, s)), "an nn.Sequential of two blocks"),
]


@pytest.mark.parametrize(("mistake", "make_stage", "hint"), STAGE_MISTAKES, ids=ids(STAGE_MISTAKES))
def test_stage_mistakes_reach_their_hint(mistake: str, make_stage: Callable, hint: str) -> None:
    assert hint in failure(checks.check_make_stage, make_stage, 64, 128, 2, seed=0)


class StemBias(models.ResNet18):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(num_classes)
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=True)


class StagesStrideTwice(models.ResNet18):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(num_classes)
        for name, (channels, stride) in zip(("layer2", "layer3", "layer4"), models.STAGES[1:], strict=True):
            setattr(self, name, stage((channels // 2, channels, stride), (channels, channels, stride)))


class OneBlockPerStage(models.ResNet18):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(num_classes)
        for index in range(1, 5):
            setattr(self, f"layer{index}", getattr(self, f"layer{index}")[:1])


class Network(models.ResNet18):
    """ResNet-18 written out as a student writes it: stem, stages, pooling and head, each step replaceable."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.head(torch.flatten(self.pool(x), 1))

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.relu(self.bn1(self.conv1(x))))

    def stages(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return self.avgpool(x)

    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class NoMaxPool(Network):
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn1(self.conv1(x)))


class ReluBeforeBatchNorm(Network):
    def stem(self, x: torch.Tensor) -> torch.Tensor:
        return self.maxpool(self.bn1(self.relu(self.conv1(x))))


class SkipsLayer3(Network):
    def stages(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer4(self.layer2(self.layer1(x)))


class MaxPoolHead(Network):
    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_max_pool2d(x, 1)


class Softmax(Network):
    def head(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x).softmax(dim=1)


class StagesInAList(Network):
    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__(num_classes)
        self.blocks = nn.ModuleList([self.layer1, self.layer2, self.layer3, self.layer4])
        del self.layer1, self.layer2, self.layer3, self.layer4

    def stages(self, x: torch.Tensor) -> torch.Tensor:
        for part in self.blocks:
            x = part(x)
        return x


COUNT_MISTAKES = [
    ("stem convolution with a bias", StemBias, "64 too many: the stem convolution has a bias"),
    ("stages that stride twice", StagesStrideTwice, "345,856 too many: the second block of layer2, layer3 and layer4"),
    ("one block per stage", OneBlockPerStage, "too few: one block per stage: each stage has two"),
]


@pytest.mark.parametrize(("mistake", "network", "hint"), COUNT_MISTAKES, ids=ids(COUNT_MISTAKES))
def test_parameter_count_mistakes_reach_their_hint(mistake: str, network: type, hint: str) -> None:
    assert hint in failure(checks.check_parameter_count, network)


RESNET_MISTAKES = [
    *COUNT_MISTAKES[:1],
    ("no max pooling", NoMaxPool, "layer1 receives (2, 64, 32, 32), expected (2, 64, 16, 16) (the max pooling is"),
    ("ReLU before BatchNorm in the stem", ReluBeforeBatchNorm, "the stem is conv1 (7x7, stride 2, padding 3), bn1"),
    ("layer3 skipped", SkipsLayer3, "forward never runs layer3"),
    ("max pooling before the head", MaxPoolHead, "pool with avgpool (adaptive average pooling to 1x1)"),
    ("softmax on the output", Softmax, "fc's output is changed afterwards"),
    ("stages in a list", StagesInAList, "state_dict does not load"),
]


@pytest.mark.parametrize(("mistake", "network", "hint"), RESNET_MISTAKES, ids=ids(RESNET_MISTAKES))
def test_resnet_mistakes_reach_their_hint(mistake: str, network: type, hint: str) -> None:
    assert hint in failure(checks.check_resnet18, network, seed=0)


def test_resnet_checks_use_the_course_make_stage_not_the_students() -> None:
    ns = notebook_namespace("03-resnet18", "make_stage", "resnet18")
    exec(
        "def make_stage(in_channels, out_channels, stride):\n"
        "    return nn.Sequential(BasicBlock(in_channels, out_channels, stride),"
        " BasicBlock(out_channels, out_channels, stride))",
        ns,
    )
    wrong = ns["make_stage"]
    checks.check_parameter_count(ns["ResNet18"], num_classes=3)
    checks.check_resnet18(ns["ResNet18"], num_classes=3, image_size=32, seed=0)
    assert "the stage downsamples twice" in failure(checks.check_make_stage, wrong, seed=0)
    assert ns["make_stage"] is wrong


# ---------------------------------------------------------------- regimes


def requires_grad_only(model: nn.Module) -> None:
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(name.startswith("fc."))


def batchnorm_eval_once(model: nn.Module) -> None:
    """Frozen parameters and BatchNorm layers in eval mode, which the next model.train() undoes."""
    requires_grad_only(model)
    for name, module in model.named_modules():
        if isinstance(module, nn.BatchNorm2d) and not name.startswith("fc"):
            module.eval()


def head_frozen_too(model: nn.Module) -> None:
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    model.backbone_frozen = True
    model.train(model.training)


def convolutions_only(model: nn.Module) -> None:
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(not ("conv" in name or "downsample.0" in name))
    model.backbone_frozen = True
    model.train(model.training)


def train_disabled(model: nn.Module) -> None:
    """Frozen parameters, eval mode, and a model.train() that does nothing."""
    requires_grad_only(model)
    model.eval()
    model.train = lambda mode=True: model


FREEZE_MISTAKES = [
    ("requires_grad only", requires_grad_only, "requires_grad=False does not stop BatchNorm"),
    (
        "BatchNorm in eval mode until model.train()",
        batchnorm_eval_once,
        "were in eval mode, but model.train() switches every layer back to train mode",
    ),
    ("the head frozen too", head_frozen_too, "the head is frozen too"),
    ("BatchNorm weights still train", convolutions_only, "(bn1.weight still trains)"),
    ("calls ResNet18.freeze_backbone", lambda model: model.freeze_backbone(), "write it yourself"),
    ("replaces model.train", train_disabled, "the model's methods ['train'] were replaced"),
]


@pytest.mark.parametrize(("mistake", "freeze", "hint"), FREEZE_MISTAKES, ids=ids(FREEZE_MISTAKES))
def test_freeze_mistakes_reach_their_hint(mistake: str, freeze: Callable, hint: str) -> None:
    assert hint in failure(checks.check_freeze_backbone, freeze, seed=0)


def groups_with(change: Callable[[list[dict], str], list[dict]]) -> Callable:
    """A param_groups that makes the library's groups and then ``change(groups, regime)``."""
    return lambda model, regime, lr: change(regimes.param_groups(model, regime, lr), regime)


def with_frozen(groups: list[dict], regime: str, model: nn.Module) -> list[dict]:
    """The library's groups, with a backbone group of every backbone parameter where the library has none."""
    if len(groups) == 2:
        return groups
    backbone = [p for n, p in model.named_parameters() if not n.startswith("fc.")]
    return [{"name": "backbone", "params": backbone, "lr": groups[0]["lr"]}, *groups]


def head_twice(groups: list[dict], regime: str) -> list[dict]:
    """The head's parameters in the backbone group too."""
    if len(groups) == 1:
        return groups
    return [{**groups[0], "params": groups[0]["params"] + groups[1]["params"]}, groups[1]]


GROUP_MISTAKES = [
    (
        "no smaller backbone lr",
        groups_with(lambda groups, regime: [{**g, "lr": groups[-1]["lr"]} for g in groups]),
        "the backbone group has lr 0.01, expected 0.001 (lr * BACKBONE_LR_FACTOR under finetune)",
    ),
    (
        "frozen parameters listed",
        lambda model, regime, lr: with_frozen(regimes.param_groups(model, regime, lr), regime, model),
        "frozen parameters (requires_grad False): leave them out",
    ),
    ("the head in both groups", groups_with(head_twice), "a parameter is in two groups"),
    ("the head only", groups_with(lambda groups, regime: groups[-1:]), "some trainable parameters are in no group"),
    ("head first", groups_with(lambda groups, regime: groups[::-1]), "expected ['backbone', 'head']"),
    ("a dict", groups_with(lambda groups, regime: {g["name"]: g for g in groups}), "must be a list of dicts"),
]


@pytest.mark.parametrize(("mistake", "param_groups", "hint"), GROUP_MISTAKES, ids=ids(GROUP_MISTAKES))
def test_param_group_mistakes_reach_their_hint(mistake: str, param_groups: Callable, hint: str) -> None:
    assert hint in failure(checks.check_param_groups, param_groups, seed=0)


def test_param_groups_accepts_lr_divided_by_ten() -> None:
    """lr / 10 and lr * 0.1 differ in the last bit: both are right."""

    def param_groups(model: nn.Module, regime: str, lr: float) -> list[dict]:
        groups = regimes.param_groups(model, regime, lr)
        return [{**g, "lr": lr / 10} if regime == "finetune" and g["name"] == "backbone" else g for g in groups]

    assert 0.2 / 10 != 0.2 * regimes.BACKBONE_LR_FACTOR
    checks.check_param_groups(param_groups, lr=0.2, seed=0)


def prepared_with(
    freeze: Callable | None = None, load: bool = True, new_head: bool = True
) -> Callable[[str, int, dict | None, float], tuple]:
    """A prepare_model with its own freezing (``freeze``), loading and head, each of which can be wrong."""

    def prepare_model(regime: str, num_classes: int, weights: dict | None = None, lr: float = 0.01) -> tuple:
        model = models.ResNet18(num_classes=num_classes if new_head else 10)
        if regime != "fresh" and load:
            keep = {k: v for k, v in weights.items() if new_head is False or not k.startswith("fc.")}
            model.load_state_dict(keep, strict=not new_head)
        if regime == "feature_extraction" and freeze is not None:
            freeze(model)
        return model.train(), regimes.param_groups(model, regime, lr)

    return prepare_model


PREPARE_MISTAKES = [
    ("requires_grad only", "feature_extraction", prepared_with(requires_grad_only), "BatchNorm running statistics"),
    (
        "calls ResNet18.freeze_backbone",
        "feature_extraction",
        prepared_with(lambda model: model.freeze_backbone()),
        "write it yourself",
    ),
    ("no freezing", "feature_extraction", prepared_with(None), "freeze everything but the head fc"),
    ("weights not loaded", "finetune", prepared_with(load=False), "does not hold the pretrained weights"),
    ("the pretrained head kept", "finetune", prepared_with(new_head=False), "the head has shape (10, 512)"),
    (
        "the model alone",
        "fresh",
        lambda regime, num_classes, weights=None, lr=0.01: models.ResNet18(),
        "must return (model, param_groups)",
    ),
]


@pytest.mark.parametrize(("mistake", "regime", "prepare_model", "hint"), PREPARE_MISTAKES, ids=ids(PREPARE_MISTAKES))
def test_prepare_model_mistakes_reach_their_hint(mistake: str, regime: str, prepare_model: Callable, hint: str) -> None:
    assert hint in failure(checks.check_prepare_model, prepare_model, regimes=(regime,), seed=0)


def test_prepare_model_check_uses_the_course_helpers_not_the_students() -> None:
    ns = notebook_namespace("04-regimes", "freeze_backbone", "param_groups", "prepare_model")
    ns["freeze_backbone"], ns["param_groups"] = requires_grad_only, groups_with(lambda groups, regime: groups[-1:])
    checks.check_prepare_model(ns["prepare_model"], regimes=("finetune", "feature_extraction"), seed=0)
    assert "requires_grad=False does not stop BatchNorm" in failure(checks.check_freeze_backbone, requires_grad_only)
    assert ns["freeze_backbone"] is requires_grad_only


def test_stand_in_pretrained_weights_keep_a_trained_networks_scale() -> None:
    """With random BatchNorm statistics, frozen features reached ~1e12, the softmax saturated, the head got
    no gradient, and a correct prepare_model failed its training step in 1.4 % of feature-extraction checks."""
    for seed in range(20):
        generator = checks._generator(seed)
        model, _ = regimes.prepare_model("feature_extraction", 3, checks._pretrained_state(generator))
        logits = model.train()(torch.randn(8, 3, 32, 32, generator=generator))
        assert logits.abs().max() < 100, (seed, logits.abs().max())


# ---------------------------------------------------------------- the experiment


def test_time_to_target_mistakes_reach_their_hint() -> None:
    last_epoch = lambda accuracy, seconds, target: seconds[-1] if max(accuracy) >= target else None
    assert "the time of the first epoch at or above the target" in failure(
        checks.check_time_to_target, last_epoch, seed=0
    )
    never_none = lambda accuracy, seconds, target: next(
        (s for a, s in zip(accuracy, seconds, strict=True) if a >= target), 0.0
    )
    assert "expected None: the target was never reached" in failure(checks.check_time_to_target, never_none, seed=0)


def history(accuracies: list[float], seconds: list[float]) -> History:
    fields = {f: 0.5 for f in EpochRecord.__dataclass_fields__}
    return History(
        records=[
            EpochRecord(**{**fields, "epoch": e + 1, "val_accuracy": a, "cumulative_seconds": s})
            for e, (a, s) in enumerate(zip(accuracies, seconds, strict=True))
        ]
    )


HISTORY_MISTAKES = [
    ("a list of accuracies", [0.5, 0.6], "keep the History that train.fit returned"),
    ("one epoch of two", history([0.5], [1.0]), "has 1 epochs, expected 2"),
    ("time going back", history([0.5, 0.6], [2.0, 1.0]), "must be positive and increasing"),
    ("percentages", history([50.0, 60.0], [1.0, 2.0]), "must be fractions between 0 and 1"),
]


@pytest.mark.parametrize(("mistake", "value", "hint"), HISTORY_MISTAKES, ids=ids(HISTORY_MISTAKES))
def test_history_mistakes_reach_their_hint(mistake: str, value: Any, hint: str) -> None:
    assert hint in failure(checks.check_history, value, epochs=2)
