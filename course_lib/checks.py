"""Checks for the assignment notebooks, with hints a student can act on.

Each ``check_*`` function takes what the student wrote (a function or a class), runs it
on fresh random inputs and compares the results with a reference computed here: by
PyTorch where PyTorch has the operation (``conv2d``, ``unfold``, torchvision's
``resnet18``), by the course library otherwise. A failure raises :class:`CheckFailed`
whose message says what differs and what to look at, e.g.::

    CheckFailed: output shape (1, 4, 6, 6), expected (1, 4, 7, 7): check the padding

The graded test cells call these checks, and a student can call them alone before
submitting. They never trust an object the student built: results must be real
``torch.Tensor`` objects (no subclass) of the right dtype, and numbers are recomputed
from the student's function instead of taken from the student's variables.
"""

from __future__ import annotations

import contextlib
import math
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "CheckFailed",
    "check_basic_block",
    "check_output_shape",
    "check_zeroed_residual",
    "check_conv2d",
    "check_conv2d_im2col",
    "check_conv_output_size",
    "check_history",
    "check_im2col",
    "check_prepare_model",
    "check_resnet18",
    "check_time_to_target",
]

RESNET18_PARAMETERS = 11_689_512


class CheckFailed(AssertionError):
    """A check found a mistake; the message says what differs and what to look at."""


def _fail(message: str) -> None:
    raise CheckFailed(message)


def _passed(message: str) -> None:
    print(f"passed: {message}")


def _generator(seed: int | None) -> torch.Generator:
    """Fresh inputs on every call unless a seed is given (to reproduce a failure)."""
    generator = torch.Generator()
    generator.manual_seed(random.SystemRandom().randrange(2**62) if seed is None else seed)
    return generator


def _randint(generator: torch.Generator, low: int, high: int) -> int:
    """A random int in [low, high]."""
    return int(torch.randint(low, high + 1, (1,), generator=generator))


def _call(function: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's code; its warnings are kept off stderr (the grader counts stderr as failure)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


@contextlib.contextmanager
def _forbidden(what: str, names: tuple[str, ...]) -> Iterator[None]:
    """Make library shortcuts raise while the student's function runs."""
    targets = {"conv2d": [(F, "conv2d"), (torch, "conv2d")], "unfold": [(F, "unfold")]}
    saved = []

    def refuse(name: str) -> Callable:
        def raiser(*args: Any, **kwargs: Any) -> None:
            _fail(f"{what} called torch's {name}: compute it yourself, that is the exercise.")

        return raiser

    for name in names:
        for module, attribute in targets[name]:
            saved.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, refuse(name))
    try:
        yield
    finally:
        for module, attribute, original in reversed(saved):
            setattr(module, attribute, original)


@contextlib.contextmanager
def _forbidden_method(cls: type, name: str, what: str) -> Iterator[None]:
    """Make a library method raise while the student's code runs (the exercise is to write it)."""
    original = getattr(cls, name)

    def raiser(*args: Any, **kwargs: Any) -> None:
        _fail(f"{what} called {cls.__name__}.{name}: write it yourself, that is the exercise.")

    setattr(cls, name, raiser)
    try:
        yield
    finally:
        setattr(cls, name, original)


def _require_tensor(value: Any, name: str, shape: tuple, dtype: torch.dtype, hints: dict | None = None) -> None:
    """A real torch.Tensor (no subclass) of the expected dtype and shape."""
    if type(value) is not torch.Tensor:
        _fail(f"{name} returned a {type(value).__name__}, expected a torch.Tensor.")
    if value.dtype != dtype:
        _fail(f"{name} returned dtype {value.dtype}, expected {dtype}.")
    if tuple(value.shape) != tuple(shape):
        hint = (hints or {}).get(tuple(value.shape), "")
        _fail(f"{name}: output shape {tuple(value.shape)}, expected {tuple(shape)}" + (f": {hint}" if hint else "."))


def _max_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    return float((actual.detach().double() - expected.detach().double()).abs().max())


def _close(actual: torch.Tensor, expected: torch.Tensor, atol: float = 1e-4, rtol: float = 1e-4) -> bool:
    return actual.shape == expected.shape and bool(
        torch.allclose(actual.detach().double(), expected.detach().double(), atol=atol, rtol=rtol)
    )


# ---------------------------------------------------------------- convolution


def _output_size(size: int, kernel_size: int, stride: int, padding: int) -> int:
    """The reference: the length of torch's conv1d output on that input."""
    signal = torch.zeros(1, 1, size)
    return F.conv1d(signal, torch.zeros(1, 1, kernel_size), stride=stride, padding=padding).shape[-1]


def check_conv_output_size(conv_output_size: Callable, trials: int = 30, seed: int | None = None) -> None:
    """``conv_output_size(size, kernel_size, stride, padding)`` against PyTorch on random cases."""
    generator = _generator(seed)
    for _ in range(trials):
        kernel_size = _randint(generator, 1, 7)
        stride = _randint(generator, 1, 4)
        padding = _randint(generator, 0, 3)
        size = _randint(generator, max(1, kernel_size - 2 * padding), 40)
        expected = _output_size(size, kernel_size, stride, padding)
        call = f"conv_output_size({size}, {kernel_size}, stride={stride}, padding={padding})"
        result = _call(conv_output_size, size, kernel_size, stride=stride, padding=padding)
        if type(result) is not int:
            hint = " (use integer division //)" if isinstance(result, float) else ""
            _fail(f"{call} returned {result!r} of type {type(result).__name__}, expected an int{hint}.")
        if result != expected:
            _fail(
                f"{call} returned {result}, expected {expected}: "
                f"{_size_hint(conv_output_size, (size, kernel_size, stride, padding))}"
            )
    _passed(f"conv_output_size agrees with PyTorch on {trials} random cases")


# Common mistakes in the output-size formula, the likeliest first, each with its hint.
SIZE_MISTAKES = (
    (lambda n, k, s, p: (n - k) // s + 1, "check the padding: it adds to both sides of the input"),
    (lambda n, k, s, p: (n + p - k) // s + 1, "padding adds to both sides: 2 * padding"),
    (lambda n, k, s, p: (n + 2 * p - k) // s, "count the first window too (+ 1)"),
    (lambda n, k, s, p: n + 2 * p - k + 1, "check the stride: the window moves by stride positions"),
    (
        lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1,
        "round down (floor): a window that does not fit is dropped",
    ),
)
# Cases on which the mistakes above give different answers, so that one case that two
# mistakes explain alike does not pick the wrong hint.
SIZE_PROBES = ((11, 3, 2, 1), (32, 5, 3, 2), (9, 4, 1, 3))


def _size_hint(conv_output_size: Callable, case: tuple[int, int, int, int]) -> str:
    """The hint for the mistake that explains the student's answers on ``case`` and the probes."""
    answers = {}
    for n, k, s, p in (case, *SIZE_PROBES):
        try:
            answers[(n, k, s, p)] = conv_output_size(n, k, stride=s, padding=p)
        except Exception:  # noqa: BLE001 - a crash on a probe only rules the probe out
            pass
    for formula, hint in SIZE_MISTAKES:
        if all(formula(*inputs) == answer for inputs, answer in answers.items()):
            return hint
    return "output = floor((size + 2 * padding - kernel_size) / stride) + 1."


def _conv_inputs(
    generator: torch.Generator, kernel_size: tuple[int, int], bias: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    batch, channels, out_channels = _randint(generator, 1, 2), _randint(generator, 1, 3), _randint(generator, 1, 4)
    height, width = _randint(generator, 5, 8), _randint(generator, 5, 8)
    x = torch.randn(batch, channels, height, width, generator=generator)
    weight = torch.randn(out_channels, channels, *kernel_size, generator=generator)
    b = torch.randn(out_channels, generator=generator) if bias else None
    return x, weight, b


def _check_convolution(
    function: Callable,
    name: str,
    forbid: tuple[str, ...],
    stride: int,
    padding: int,
    kernel_size: tuple[int, int],
    bias: bool,
    trials: int,
    seed: int | None,
) -> None:
    generator = _generator(seed)
    for _ in range(trials):
        x, weight, b = _conv_inputs(generator, kernel_size, bias)
        expected = F.conv2d(x, weight, b, stride=stride, padding=padding)
        args = (x.clone(), weight.clone(), None if b is None else b.clone())
        with _forbidden(name, forbid):
            out = _call(function, *args, stride=stride, padding=padding)
        hints = {
            tuple(F.conv2d(x, weight, stride=stride).shape): "check the padding",
            tuple(F.conv2d(x, weight, padding=padding).shape): "check the stride",
            tuple(expected.shape[:2]) + tuple(expected.shape[:1:-1]): "height and width are swapped",
        }
        hints.pop(tuple(expected.shape), None)
        _require_tensor(out, name, expected.shape, torch.float32, hints)
        if not _close(out, expected):
            _fail(
                f"{name}: values differ from torch.nn.functional.conv2d by up to "
                f"{_max_error(out, expected):.3g}: {_conv_value_hint(out, x, weight, b, stride, padding)}"
            )
    settings = f"stride={stride}, padding={padding}, kernel {kernel_size[0]}x{kernel_size[1]}"
    _passed(f"{name} agrees with torch.nn.functional.conv2d on {trials} random inputs ({settings})")


def _conv_value_hint(
    out: torch.Tensor, x: torch.Tensor, weight: torch.Tensor, b: torch.Tensor | None, stride: int, padding: int
) -> str:
    if b is not None and _close(out, F.conv2d(x, weight, None, stride=stride, padding=padding)):
        return "add the bias of each output channel"
    if _close(out, F.conv2d(x, weight.flip(-1, -2), b, stride=stride, padding=padding)):
        return "do not flip the kernel: conv2d in deep learning is a cross-correlation"
    return "check which input window each output value sums over, and that you sum over all input channels."


def check_conv2d(
    conv2d: Callable,
    stride: int = 1,
    padding: int = 0,
    kernel_size: tuple[int, int] = (3, 3),
    bias: bool = True,
    trials: int = 3,
    seed: int | None = None,
) -> None:
    """``conv2d(x, weight, bias, stride=, padding=)`` against ``torch.nn.functional.conv2d``.

    The function must compute the convolution itself: calling torch's conv2d or unfold fails.
    """
    _check_convolution(conv2d, "conv2d_naive", ("conv2d", "unfold"), stride, padding, kernel_size, bias, trials, seed)


def check_conv2d_im2col(
    conv2d: Callable,
    stride: int = 1,
    padding: int = 0,
    kernel_size: tuple[int, int] = (3, 3),
    bias: bool = True,
    trials: int = 5,
    seed: int | None = None,
) -> None:
    """Like :func:`check_conv2d`, for the version built on the student's own ``im2col``."""
    _check_convolution(conv2d, "conv2d_im2col", ("conv2d", "unfold"), stride, padding, kernel_size, bias, trials, seed)


def check_im2col(
    im2col: Callable,
    kernel_size: tuple[int, int] = (3, 3),
    stride: int = 1,
    padding: int = 0,
    trials: int = 5,
    seed: int | None = None,
) -> None:
    """``im2col(x, kernel_size, stride=, padding=)`` against ``torch.nn.functional.unfold``.

    Columns are the windows in row-major order; each column lists channel by channel,
    then kernel row by kernel row, as ``F.unfold`` does: shape (N, C*kH*kW, L).
    """
    generator = _generator(seed)
    for _ in range(trials):
        x, _, _ = _conv_inputs(generator, kernel_size, bias=False)
        expected = F.unfold(x, kernel_size, stride=stride, padding=padding)
        with _forbidden("im2col", ("conv2d", "unfold")):
            out = _call(im2col, x.clone(), kernel_size, stride=stride, padding=padding)
        hints = {
            tuple(F.unfold(x, kernel_size, stride=stride).shape): "check the padding",
            tuple(F.unfold(x, kernel_size, padding=padding).shape): "check the stride",
            tuple(expected.shape[:1])
            + tuple(expected.shape[:0:-1]): "rows are kernel entries, columns are windows: transpose",
        }
        hints.pop(tuple(expected.shape), None)
        _require_tensor(out, "im2col", expected.shape, torch.float32, hints)
        if not _close(out, expected, atol=0, rtol=0):
            same_values = _close(out.sort(dim=1).values, expected.sort(dim=1).values, atol=0, rtol=0)
            hint = (
                "each column holds the right numbers in the wrong order: list channel by channel, "
                "then kernel row by kernel row"
                if same_values
                else "column l must hold the input window of output position l (row-major over the output)"
            )
            _fail(f"im2col: values differ from torch.nn.functional.unfold: {hint}.")
    _passed(f"im2col agrees with torch.nn.functional.unfold on {trials} random inputs")


# ---------------------------------------------------------------- residual networks


def _randomise(module: nn.Module, generator: torch.Generator) -> None:
    """Random weights and BatchNorm statistics, so that equal outputs mean equal computations."""
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                if name.endswith("running_var"):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
                else:
                    tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.5)


def _construct(cls: type, name: str, *args: Any) -> nn.Module:
    try:
        module = _call(cls, *args)
    except Exception as error:  # the student's constructor: report, do not crash the check
        _fail(f"{name}{args} raised {type(error).__name__}: {error}")
    if not isinstance(module, nn.Module):
        _fail(f"{name}{args} built a {type(module).__name__}, expected a torch.nn.Module.")
    return module


def _load_same_weights(student: nn.Module, reference: nn.Module, name: str) -> None:
    expected, actual = reference.state_dict(), student.state_dict()
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    if missing or unexpected:
        _fail(
            f"{name}: parameter names differ from the reference: missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}; name the layers as torchvision does (conv1, bn1, conv2, bn2, downsample)."
        )
    for key, value in expected.items():
        if tuple(actual[key].shape) != tuple(value.shape):
            _fail(f"{name}: {key} has shape {tuple(actual[key].shape)}, expected {tuple(value.shape)}.")
    student.load_state_dict(expected, strict=True)


def _forward(module: nn.Module, x: torch.Tensor, name: str) -> torch.Tensor:
    try:
        return _call(module, x.clone())
    except Exception as error:
        _fail(f"{name} forward on input of shape {tuple(x.shape)} raised {type(error).__name__}: {error}")


def check_basic_block(block_class: type, seed: int | None = None) -> None:
    """``BasicBlock(in_channels, out_channels, stride)``: shapes, identity shortcut, equality with the reference."""
    from course_lib.models import BasicBlock

    generator = _generator(seed)
    cases = [(8, 8, 1), (8, 16, 2), (8, 16, 1), (8, 8, 2)]
    for in_channels, out_channels, stride in cases:
        name = f"BasicBlock({in_channels}, {out_channels}, stride={stride})"
        student = _construct(block_class, "BasicBlock", in_channels, out_channels, stride)
        reference = BasicBlock(in_channels, out_channels, stride)
        size = _randint(generator, 6, 9)
        x = torch.randn(2, in_channels, size, size, generator=generator)
        expected_shape = (2, out_channels, (size - 1) // stride + 1, (size - 1) // stride + 1)
        hints = {
            (2, out_channels, size, size): "the first convolution (and the projection) must use the stride",
            (2, in_channels) + expected_shape[2:]: "the block must output out_channels channels",
        }
        hints.pop(expected_shape, None)
        _require_tensor(_forward(student, x, name), name, expected_shape, torch.float32, hints)

        _load_same_weights(student, reference, name)
        projection = stride != 1 or in_channels != out_channels
        if projection and getattr(student, "downsample", None) is None:
            _fail(
                f"{name}: the shape changes, so the shortcut needs a projection (1x1 convolution with the "
                "stride, then BatchNorm)."
            )
        if not projection and getattr(student, "downsample", None) is not None:
            _fail(f"{name}: the shape is kept, so the shortcut must be the identity (downsample = None).")

        _randomise(reference, generator)
        student.load_state_dict(reference.state_dict(), strict=True)
        for mode in ("eval", "train"):
            student.train(mode == "train")
            reference.train(mode == "train")
            out, expected = _forward(student, x, name), reference(x.clone())
            if not _close(out, expected):
                hint = _block_hint(student, reference, x, name)
                _fail(
                    f"{name} in {mode} mode: output differs from the reference block with the same weights "
                    f"by up to {_max_error(out, expected):.3g}: {hint}"
                )
        if sum(p.numel() for p in student.parameters()) != sum(p.numel() for p in reference.parameters()):
            _fail(f"{name}: the block has extra parameters; use bias=False in convolutions followed by BatchNorm.")
    _check_zeroed_residual(block_class, generator)
    _passed("BasicBlock matches the reference block (identity and projection shortcuts, eval and train mode)")


def _block_hint(student: nn.Module, reference: nn.Module, x: torch.Tensor, name: str) -> str:
    reference.eval()
    student.eval()
    with torch.no_grad():
        branch = reference.bn2(reference.conv2(reference.relu(reference.bn1(reference.conv1(x)))))
        shortcut = x if reference.downsample is None else reference.downsample(x)
        out = _forward(student, x, name)
    if _close(out, branch + shortcut):
        return "apply the final ReLU after adding the shortcut."
    if _close(out, torch.relu(branch)):
        return "add the shortcut (x, or its projection) before the final ReLU."
    if _close(out, torch.relu(branch) + shortcut):
        return "add the shortcut before the final ReLU, not after it."
    return "the order is conv1, bn1, relu, conv2, bn2, + shortcut, relu."


def check_output_shape(module: nn.Module, x: torch.Tensor, shape: tuple, name: str = "the module") -> None:
    """Run ``module`` on a copy of ``x``: the output must be a float32 torch.Tensor of ``shape``."""
    _require_tensor(_forward(module, x, name), name, tuple(shape), torch.float32)


def check_zeroed_residual(block_class: type, channels: int = 8, seed: int | None = None) -> None:
    """``BasicBlock(c, c)`` with its residual branch zeroed (bn2 weight and bias 0) computes relu(x)."""
    _check_zeroed_residual(block_class, _generator(seed), channels)
    _passed(f"BasicBlock({channels}, {channels}) with a zeroed residual branch is relu(x)")


def _check_zeroed_residual(block_class: type, generator: torch.Generator, channels: int = 8) -> None:
    """With bn2's scale and shift at zero the residual branch is zero and the block is relu(x)."""
    student = _construct(block_class, "BasicBlock", channels, channels, 1)
    with torch.no_grad():
        student.bn2.weight.zero_()
        student.bn2.bias.zero_()
    student.eval()
    x = torch.randn(2, channels, 6, 6, generator=generator)
    name = f"BasicBlock({channels}, {channels})"
    out = _forward(student, x, name)
    _require_tensor(out, name, tuple(x.shape), torch.float32)
    if not _close(out, torch.relu(x), atol=1e-6, rtol=0):
        _fail(
            f"{name} with its residual branch zeroed (bn2 weight and bias = 0) is not relu(x): "
            "the identity shortcut must add x itself, unchanged."
        )


def check_resnet18(resnet_class: type, seed: int | None = None) -> None:
    """``ResNet18(num_classes)``: 11,689,512 parameters, torchvision's state_dict loads strictly, equal outputs."""
    import torchvision

    generator = _generator(seed)
    student = _construct(resnet_class, "ResNet18", 1000)
    count = sum(p.numel() for p in student.parameters())
    if count != RESNET18_PARAMETERS:
        _fail(f"ResNet18(1000) has {count:,} parameters, expected {RESNET18_PARAMETERS:,}: {_count_hint(count)}")
    reference = torchvision.models.resnet18(weights=None, num_classes=1000)
    _randomise(reference, generator)
    expected_keys, actual_keys = set(reference.state_dict()), set(student.state_dict())
    missing, unexpected = sorted(expected_keys - actual_keys), sorted(actual_keys - expected_keys)
    if missing or unexpected:
        _fail(
            f"torchvision's resnet18 state_dict does not load: missing {missing[:4]}, unexpected "
            f"{unexpected[:4]}; name the stages layer1..layer4 and the head fc."
        )
    try:
        student.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as error:
        _fail(f"torchvision's resnet18 state_dict does not load in strict mode: {str(error)[:300]}")
    student.eval()
    reference.eval()
    x = torch.randn(2, 3, 64, 64, generator=generator)
    out = _forward(student, x, "ResNet18")
    _require_tensor(out, "ResNet18", (2, 1000), torch.float32)
    with torch.no_grad():
        expected = reference(x)
    if not _close(out, expected, atol=1e-3, rtol=1e-3):
        _fail(
            f"ResNet18 output differs from torchvision's resnet18 with the same weights by up to "
            f"{_max_error(out, expected):.3g}: check the stem (7x7 stride-2 convolution, BatchNorm, ReLU, "
            f"3x3 stride-2 max pooling), the stride of each stage, and the average pooling before fc."
        )
    small = _construct(resnet_class, "ResNet18", 3)
    _require_tensor(
        _forward(small.eval(), x[:, :, :32, :32], "ResNet18(3)"), "ResNet18(3) on 32x32 images", (2, 3), torch.float32
    )
    _passed("ResNet18 has 11,689,512 parameters and matches torchvision's resnet18")


def _count_hint(count: int) -> str:
    difference = count - RESNET18_PARAMETERS
    if difference in (-4 * 64 * 64, 512 * 1000 - 512 * 1000):
        return "check the stages."
    if difference < 0:
        return f"{-difference:,} missing: two blocks per stage, and a projection where the shape changes."
    return (
        f"{difference:,} too many: convolutions followed by BatchNorm have no bias; one projection per stage at most."
    )


# ---------------------------------------------------------------- regimes and experiment


def _pretrained_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    from course_lib.models import ResNet18

    source = ResNet18(num_classes=10)
    _randomise(source, generator)
    return source.state_dict()


def _group_summary(groups: list) -> list[tuple[str, float, int]]:
    return [
        (group.get("name"), float(group.get("lr", math.nan)), sum(p.numel() for p in group["params"]))
        for group in groups
    ]


def _backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}


def _train_step(model: nn.Module, groups: list, generator: torch.Generator, num_classes: int) -> None:
    model.train()
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    images = torch.randn(4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, num_classes, (4,), generator=generator)
    loss = F.cross_entropy(_forward(model, images, "the model"), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def check_prepare_model(
    prepare_model: Callable, regimes: tuple[str, ...] | None = None, lr: float = 0.01, seed: int | None = None
) -> None:
    """``prepare_model(regime, num_classes, weights, lr)`` against ``course_lib.regimes.prepare_model``.

    Compares the trainable parameters, the parameter groups (names, learning rates, sizes),
    the loaded weights, and what one training step changes: a frozen backbone, BatchNorm
    running statistics included, must stay exactly as loaded.
    """
    from course_lib import REGIMES
    from course_lib import regimes as library
    from course_lib.models import ResNet18

    generator = _generator(seed)
    state = _pretrained_state(generator)
    num_classes = _randint(generator, 2, 6)
    for regime in regimes or REGIMES:
        weights = None if regime == "fresh" else state
        call = f"prepare_model({regime!r}, {num_classes}, lr={lr})"
        with _forbidden_method(ResNet18, "freeze_backbone", call):
            result = _call(prepare_model, regime, num_classes, weights, lr=lr)
        if not (isinstance(result, tuple) and len(result) == 2):
            _fail(f"{call} must return (model, param_groups), got {type(result).__name__}.")
        model, groups = result
        if type(model) is not ResNet18:
            _fail(f"{call} returned a {type(model).__name__}; build a course_lib.models.ResNet18.")
        overridden = {"forward", "train", "state_dict", "parameters", "named_parameters"} & set(vars(model))
        if overridden:
            _fail(f"{call}: the model's methods {sorted(overridden)} were replaced; use ResNet18 as it is.")
        if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g for g in groups):
            _fail(f"{call}: param_groups must be a list of dicts with 'params', 'lr' and 'name'.")
        expected_model, expected_groups = library.prepare_model(regime, num_classes, weights, lr=lr)
        if tuple(model.fc.weight.shape) != (num_classes, 512):
            _fail(
                f"{call}: the head has shape {tuple(model.fc.weight.shape)}, expected ({num_classes}, 512): replace fc."
            )
        trainable = library.count_trainable(model)
        expected_trainable = library.count_trainable(expected_model)
        if trainable != expected_trainable:
            what = "freeze everything but the head fc" if regime == "feature_extraction" else "every parameter trains"
            _fail(f"{call}: {trainable:,} trainable parameters, expected {expected_trainable:,}: {what}.")
        own = {id(p) for p in model.parameters()}
        listed = [p for g in groups for p in g["params"]]
        if any(id(p) not in own for p in listed):
            _fail(f"{call}: the parameter groups hold tensors that are not the model's parameters.")
        if {id(p) for p in listed} != {id(p) for p in model.parameters() if p.requires_grad} or len(listed) != len(
            set(map(id, listed))
        ):
            _fail(f"{call}: the parameter groups must hold each trainable parameter exactly once, and no frozen one.")
        if _group_summary(groups) != _group_summary(expected_groups):
            _fail(
                f"{call}: parameter groups (name, lr, size) are {_group_summary(groups)}, expected "
                f"{_group_summary(expected_groups)}."
            )
        if weights is not None:
            loaded = model.state_dict()
            wrong = [k for k in state if not k.startswith("fc.") and not torch.equal(loaded[k], state[k])]
            if wrong:
                _fail(f"{call}: the backbone does not hold the pretrained weights ({wrong[0]} differs): load them.")
        _check_training_step(model, groups, regime, call, generator, num_classes)
    _passed(f"prepare_model agrees with course_lib.regimes for {', '.join(regimes or REGIMES)}")


def _check_training_step(
    model: nn.Module, groups: list, regime: str, call: str, generator: torch.Generator, num_classes: int
) -> None:
    before = _backbone_state(model)
    head_before = model.fc.weight.detach().clone()
    _train_step(model, groups, generator, num_classes)
    after = _backbone_state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if torch.equal(head_before, model.fc.weight):
        _fail(f"{call}: the head did not change after a training step: it must be trainable.")
    if regime == "feature_extraction" and changed:
        stats = [k for k in changed if "running_" in k or "num_batches" in k]
        if stats and len(stats) == len(changed):
            _fail(
                f"{call}: a training step changed BatchNorm running statistics ({stats[0]}): requires_grad=False "
                f"does not stop them; the frozen backbone must stay in eval mode, also after model.train()."
            )
        _fail(f"{call}: a training step changed the frozen backbone ({changed[0]}).")
    if regime != "feature_extraction" and not any(k.endswith("weight") for k in changed):
        _fail(f"{call}: a training step left the backbone unchanged: under {regime} it trains.")


def check_time_to_target(time_to_target: Callable, trials: int = 20, seed: int | None = None) -> None:
    """``time_to_target(val_accuracy, cumulative_seconds, target)`` against ``History.time_to``."""
    from course_lib.history import EpochRecord, History

    generator = _generator(seed)
    for _ in range(trials):
        epochs = _randint(generator, 1, 8)
        accuracies = [round(float(a), 2) for a in torch.rand(epochs, generator=generator)]
        seconds = [round(float(s), 3) for s in torch.rand(epochs, generator=generator).cumsum(0) * 10]
        target = accuracies[_randint(generator, 0, epochs - 1)] if _randint(generator, 0, 3) else 1.5
        history = History(records=[_record(EpochRecord, a, s) for a, s in zip(accuracies, seconds, strict=True)])
        expected = history.time_to(target)
        result = _call(time_to_target, list(accuracies), list(seconds), target)
        call = f"time_to_target({accuracies}, {seconds}, {target})"
        if expected is None and result is not None:
            _fail(f"{call} returned {result!r}, expected None: the target was never reached.")
        if expected is not None and (type(result) is not float or result != expected):
            _fail(
                f"{call} returned {result!r}, expected {expected!r}: the time of the first epoch at or above "
                "the target."
            )
    _passed(f"time_to_target agrees with History.time_to on {trials} random histories")


def _record(record_class: type, accuracy: float, seconds: float) -> Any:
    """An EpochRecord with the two fields that matter here; the others are placeholders."""
    import dataclasses

    values = {f.name: 0.0 for f in dataclasses.fields(record_class)}
    values.update(epoch=1, val_accuracy=accuracy, cumulative_seconds=seconds)
    return record_class(**values)


def check_history(history: Any, epochs: int, name: str = "history") -> None:
    """A History returned by ``course_lib.train.fit``: one record per epoch, sane values."""
    from course_lib.history import History

    if type(history) is not History:
        _fail(f"{name} is a {type(history).__name__}; keep the History that train.fit returned.")
    if len(history.records) != epochs:
        _fail(f"{name} has {len(history.records)} epochs, expected {epochs}.")
    seconds = history.column("cumulative_seconds")
    if any(not math.isfinite(s) or s <= 0 for s in seconds) or seconds != sorted(seconds):
        _fail(f"{name}: cumulative_seconds {seconds} must be positive and increasing.")
    for column in ("train_accuracy", "val_accuracy"):
        values = history.column(column)
        if any(not 0.0 <= v <= 1.0 for v in values):
            _fail(f"{name}: {column} {values} must be fractions between 0 and 1.")
    _passed(f"{name} is a History of {epochs} epochs with consistent values")
