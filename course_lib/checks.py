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
from the student's function instead of taken from the student's variables. An exception
raised by the student's code becomes a ``CheckFailed`` that names the call and, where the
check can tell, the mistake behind it.

Each check tests one function. While it runs, the functions that function builds on
(``conv_output_size`` inside ``conv2d_naive``, ``im2col`` inside ``conv2d_im2col``,
``make_stage`` inside ``ResNet18``, ``freeze_backbone`` and ``param_groups`` inside
``prepare_model``) are the course's versions, put in place of the student's in the
notebook's namespace and restored afterwards: one mistake then fails its own test only,
instead of every test that builds on it.

Every message a student reads (each failure's hint and each "passed" line) is an English
template put through :func:`course_lib.i18n.translate` in the language of the kernel, chosen
once with :func:`set_language`: English by default, Spanish in the Spanish release of the
assignments, whose locked cell after the setup cell calls ``checks.set_language("es")``.
"""

from __future__ import annotations

import contextlib
import functools
import math
import random
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from course_lib import i18n
from course_lib.conv import conv_output_size as _course_conv_output_size
from course_lib.models import STAGE_NAMES

__all__ = [
    "CheckFailed",
    "check_basic_block",
    "check_block_shapes",
    "check_conv2d",
    "check_conv2d_im2col",
    "check_conv_output_size",
    "check_freeze_backbone",
    "check_history",
    "check_im2col",
    "check_make_stage",
    "check_output_shape",
    "check_param_groups",
    "check_parameter_count",
    "check_prepare_model",
    "check_resnet18",
    "check_time_to_target",
    "check_zeroed_residual",
    "set_language",
]

RESNET18_PARAMETERS = 11_689_512
# Saved at import, before any check forbids it: the course's im2col is built on it.
_UNFOLD = F.unfold


class CheckFailed(AssertionError):
    """A check found a mistake; the message says what differs and what to look at."""


# The language of every message, for the whole kernel: set once, by the Spanish release's language cell.
_language = i18n.LANGUAGES[0]


def set_language(language: str) -> None:
    """Give the checks' messages in ``language`` ("en" or "es") from now on in this kernel.

    The Spanish release calls it in a locked cell right after the setup cell, so that a student
    running it in Jupyter and the grader running the same notebook see the same language (see
    course_lib.grading.translations).
    """
    global _language
    _language = i18n.check_language(language)


def _t(message: str, /, **values: Any) -> str:
    """``message`` (an English ``str.format`` template) in the kernel's language, ``values`` filled in."""
    return i18n.translate(message, _language, **values)


def _number(value: int) -> str:
    """A whole number as the kernel's language writes it (11,689,512 in English, 11 689 512 in Spanish)."""
    return i18n.number(value, _language)


def N_(message: str) -> str:  # gettext's name for "a message, translated where it is shown"
    """Mark a constant as a message: it is translated by ``_t`` where it is shown, not where it is defined."""
    return message


def _fail(message: str, /, **values: Any) -> None:
    """Fail with ``message`` (an English template) in the kernel's language."""
    raise CheckFailed(_t(message, **values))


def _passed(message: str, /, **values: Any) -> None:
    print(_t("passed: {message}", message=_t(message, **values)))


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


def _short(error: BaseException, limit: int = 300) -> str:
    text = str(error).strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + " ..."


def _run(function: Callable, call: str, *args: Any, hint: Callable[[], str | None] | None = None, **kwargs: Any) -> Any:
    """Call the student's code; an exception it raises becomes a CheckFailed naming the call and a hint.

    The hint is worked out only after a failure (``hint`` is called then), so a passing check pays nothing;
    not after a MemoryError, since working it out may run the student's code again.
    """
    try:
        return _call(function, *args, **kwargs)
    except CheckFailed:
        raise
    except Exception as error:  # the student's code: report it with the call, not as a bare traceback
        found = hint() if hint is not None and not isinstance(error, MemoryError) else None
        _fail(
            "{call} raised {error}: {text}{hint}",
            call=call,
            error=type(error).__name__,
            text=_short(error),
            hint=f": {found}" if found else "",
        )


@contextlib.contextmanager
def _forbidden(what: str, names: tuple[str, ...]) -> Iterator[None]:
    """Make library shortcuts raise while the student's function runs."""
    targets = {"conv2d": [(F, "conv2d"), (torch, "conv2d")], "unfold": [(F, "unfold")]}
    saved = []

    def refuse(name: str) -> Callable:
        def raiser(*args: Any, **kwargs: Any) -> None:
            _fail("{what} called torch's {name}: compute it yourself, that is the exercise.", what=what, name=name)

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
        _fail(
            "{what} called {method}: write it yourself, that is the exercise.",
            what=what,
            method=f"{cls.__name__}.{name}",
        )

    setattr(cls, name, raiser)
    try:
        yield
    finally:
        setattr(cls, name, original)


def _namespace(code: Any) -> dict | None:
    """The namespace in which the student's function (or class, through its ``__init__``) looks up names."""
    function = vars(code).get("__init__") if isinstance(code, type) else code
    namespace = getattr(function, "__globals__", None)
    return namespace if isinstance(namespace, dict) else None


@contextlib.contextmanager
def _course_versions(code: Any, versions: dict[str, Callable]) -> Iterator[list[str]]:
    """While it runs, ``code`` finds the course's versions of the functions it builds on.

    So that one mistake costs one test: ``conv2d_naive`` is not failed for a wrong
    ``conv_output_size``, whose own test reports it. Only names that the student's
    namespace holds are replaced, and they are restored afterwards; yields the replaced names.
    """
    namespace = _namespace(code)
    replaced = {}
    if namespace is not None:
        for name, version in versions.items():
            if name in namespace and namespace[name] is not version:
                replaced[name] = namespace[name]
                namespace[name] = version
    try:
        yield sorted(replaced)
    finally:
        for name, original in replaced.items():
            namespace[name] = original


def _and(names: list[str]) -> str:
    """Names joined by "and" in the kernel's language."""
    return _t(" and ").join(names)


def _with_course(replaced: list[str]) -> str:
    return _t(" (with the course's {names})", names=_and(replaced)) if replaced else ""


def _require_tensor(
    value: Any,
    name: str,
    shape: tuple,
    dtype: torch.dtype,
    hints: dict | None = None,
    hint: str | Callable[[], str | None] | None = None,
) -> None:
    """A real torch.Tensor (no subclass) of the expected dtype and shape.

    On a wrong shape the message takes ``hint`` (a text, or a function called only then, in the
    kernel's language) or else the hint that ``hints`` gives for that shape (an English template).
    """
    if type(value) is not torch.Tensor:
        _fail("{name} returned a {type}, expected a torch.Tensor.", name=name, type=type(value).__name__)
    if value.dtype != dtype:
        _fail("{name} returned dtype {dtype}, expected {expected}.", name=name, dtype=value.dtype, expected=dtype)
    if tuple(value.shape) != tuple(shape):
        known = (hints or {}).get(tuple(value.shape))
        hint = (hint() if callable(hint) else hint) or (_t(known) if known else "")
        message = _t(
            "{name}: output shape {shape}, expected {expected}",
            name=name,
            shape=tuple(value.shape),
            expected=tuple(shape),
        )
        raise CheckFailed(message + (f": {hint}" if hint else "."))


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
        result = _run(conv_output_size, call, size, kernel_size, stride=stride, padding=padding)
        if type(result) is not int:
            hint = _t(" (use integer division //)") if isinstance(result, float) else ""
            _fail(
                "{call} returned {result!r} of type {type}, expected an int{hint}.",
                call=call,
                result=result,
                type=type(result).__name__,
                hint=hint,
            )
        if result != expected:
            hint = _size_hint(conv_output_size, (size, kernel_size, stride, padding))
            _fail(
                "{call} returned {result}, expected {expected}: {hint}",
                call=call,
                result=result,
                expected=expected,
                hint=hint,
            )
    _passed("conv_output_size agrees with PyTorch on {trials} random cases", trials=trials)


# Common mistakes in the output-size formula, the likeliest first, each with its hint.
SIZE_MISTAKES = (
    (lambda n, k, s, p: (n - k) // s + 1, N_("check the padding: it adds to both sides of the input")),
    (lambda n, k, s, p: (n + p - k) // s + 1, N_("padding adds to both sides: 2 * padding")),
    (lambda n, k, s, p: (n + 2 * p - k) // s, N_("count the first window too (+ 1)")),
    (lambda n, k, s, p: n + 2 * p - k + 1, N_("check the stride: the window moves by stride positions")),
    (
        lambda n, k, s, p: math.ceil((n + 2 * p - k) / s) + 1,
        N_("round down (floor): a window that does not fit is dropped"),
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
            answers[(n, k, s, p)] = _call(conv_output_size, n, k, stride=s, padding=p)
        except Exception:  # noqa: BLE001 - a crash on a probe only rules the probe out
            pass
    for formula, hint in SIZE_MISTAKES:
        if all(formula(*inputs) == answer for inputs, answer in answers.items()):
            return _t(hint)
    return _t("output = floor((size + 2 * padding - kernel_size) / stride) + 1.")


def _course_im2col(x: torch.Tensor, kernel_size: tuple[int, int], stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The course's im2col, ``F.unfold`` with the assignment's signature: what ``conv2d_im2col`` is checked with."""
    return _UNFOLD(x, kernel_size, stride=stride, padding=padding)


@contextlib.contextmanager
def _recording_pad() -> Iterator[list[tuple[int, ...]]]:
    """Record the ``pad`` argument of every ``F.pad`` call the student's code makes (it still pads)."""
    original, calls = F.pad, []

    def recording(input: torch.Tensor, pad: Any, *args: Any, **kwargs: Any) -> torch.Tensor:
        with contextlib.suppress(TypeError, ValueError):
            calls.append(tuple(int(amount) for amount in pad))
        return original(input, pad, *args, **kwargs)

    F.pad = recording
    try:
        yield calls
    finally:
        F.pad = original


_SIDES = (N_("left"), N_("right"), N_("top"), N_("bottom"))  # the order of F.pad's four amounts


def _pad_hint(calls: list[tuple[int, ...]], padding: int) -> str | None:
    """What the student's ``F.pad`` call did instead of padding all four sides, or None."""
    for pad in calls:
        if len(pad) > 4 or (all(amount == padding for amount in pad) and (len(pad) == 4 or padding == 0)):
            continue
        sides = [_t(side) for side, amount in zip(_SIDES, pad, strict=False) if amount]
        if len(pad) == 2:
            done = _t("pads the width only (F.pad's amounts start with the last dimension)")
        elif not sides:
            done = _t("pads nothing")
        elif padding and len(sides) < 4:
            done = _t("pads the {sides} only", sides=_and(sides))
        else:
            done = _t("pads by other amounts")
        zeros = _t("{padding} zero", padding=padding) if padding == 1 else _t("{padding} zeros", padding=padding)
        return _t(
            "check the padding: F.pad(x, {pad}) {done}; padding={padding} puts {zeros} on each of the four sides, "
            "F.pad(x, (padding, padding, padding, padding))",
            pad=pad,
            done=done,
            padding=padding,
            zeros=zeros,
        )
    return None


def _one_sided(x: torch.Tensor, padding: int) -> list[torch.Tensor]:
    """The input padded 2 * padding on one side of each axis: the padded size is right, the position is not."""
    return [F.pad(x, (0, 2 * padding, 0, 2 * padding)), F.pad(x, (2 * padding, 0, 2 * padding, 0))] if padding else []


STRIDE_HINT = N_("the window moves by stride positions: window (i, j) starts at row i * stride, column j * stride")
ONE_SIDED_HINT = N_(
    "the input sits in one corner of the padded input: padding adds padding zeros before and after it "
    "on both axes (the input starts at row and column padding)"
)


def _conv_inputs(
    generator: torch.Generator, kernel_size: tuple[int, int], bias: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Random inputs with at least two images, input and output channels: a loop that covers only the
    first of them cannot pass by chance."""
    batch, channels, out_channels = 2, _randint(generator, 2, 3), _randint(generator, 2, 4)
    height, width = _randint(generator, 5, 8), _randint(generator, 5, 8)
    x = torch.randn(batch, channels, height, width, generator=generator)
    weight = torch.randn(out_channels, channels, *kernel_size, generator=generator)
    b = torch.randn(out_channels, generator=generator) if bias else None
    return x, weight, b


def _run_recorded(
    function: Callable, name: str, versions: dict[str, Callable], call: str, *args: Any, stride: int, padding: int
) -> tuple[Any, list[tuple[int, ...]], list[str]]:
    """Run the student's convolution or im2col without torch's shortcuts, with the course's versions of
    what it builds on, recording its F.pad calls; return its result, the pads and the replaced names."""
    with _forbidden(name, ("conv2d", "unfold")), _course_versions(function, versions) as replaced:
        with _recording_pad() as pads:
            hint = functools.partial(_crash_hint, pads, padding, replaced)
            return _run(function, call, *args, stride=stride, padding=padding, hint=hint), pads, replaced


def _crash_hint(pads: list[tuple[int, ...]], padding: int, replaced: list[str]) -> str | None:
    found = _pad_hint(pads, padding)
    if found is None and replaced:
        found = _t(
            "it ran with the course's {names}, which take the arguments the assignment gives", names=_and(replaced)
        )
    return found


def _settings(stride: int, padding: int, kernel_size: tuple[int, int], bias: bool | None = None) -> str:
    with_bias = "" if bias is None else (_t(", with bias") if bias else _t(", without bias"))
    return _t(
        "stride={stride}, padding={padding}, kernel {height}x{width}{with_bias}",
        stride=stride,
        padding=padding,
        height=kernel_size[0],
        width=kernel_size[1],
        with_bias=with_bias,
    )


def _check_convolution(
    function: Callable,
    name: str,
    versions: dict[str, Callable],
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
        shapes = _t("x of shape {x}, weight of shape {weight}", x=tuple(x.shape), weight=tuple(weight.shape))
        call = f"{name}({shapes}, stride={stride}, padding={padding})"
        args = (x.clone(), weight.clone(), None if b is None else b.clone())
        out, pads, replaced = _run_recorded(function, name, versions, call, *args, stride=stride, padding=padding)
        pad_hint = _pad_hint(pads, padding)
        _require_tensor(
            out, name, expected.shape, torch.float32, _conv_shape_hints(x, weight, stride, padding), pad_hint
        )
        if not _close(out, expected):
            hint = pad_hint or _conv_value_hint(out, expected, x, weight, b, stride, padding)
            _fail(
                "{name}: values differ from torch.nn.functional.conv2d by up to {error:.3g}: {hint}",
                name=name,
                error=_max_error(out, expected),
                hint=hint,
            )
    _passed(
        "{name} agrees with torch.nn.functional.conv2d on {trials} random inputs ({settings}){course}",
        name=name,
        trials=trials,
        settings=_settings(stride, padding, kernel_size, bias),
        course=_with_course(replaced),
    )


def _conv_shape_hints(x: torch.Tensor, weight: torch.Tensor, stride: int, padding: int) -> dict[tuple, str]:
    """Wrong output shapes that a typical mistake gives, each with its hint."""
    expected = tuple(F.conv2d(x, weight, stride=stride, padding=padding).shape)
    hints = {
        tuple(F.conv2d(x, weight, stride=stride).shape): N_("check the padding"),
        tuple(F.conv2d(x, weight, padding=padding).shape): N_("check the stride"),
        expected[:2] + expected[:1:-1]: N_("height and width are swapped"),
    }
    hints.pop(expected, None)
    return hints


def _conv_value_hint(
    out: torch.Tensor,
    expected: torch.Tensor,
    x: torch.Tensor,
    weight: torch.Tensor,
    b: torch.Tensor | None,
    stride: int,
    padding: int,
) -> str:
    """Which typical mistake explains the student's values (the shape is right), in the kernel's language."""
    if _close(out, expected.transpose(2, 3)):
        return _t("height and width are swapped")
    if b is not None and _close(out, F.conv2d(x, weight, None, stride=stride, padding=padding)):
        return _t("add the bias of each output channel")
    if _close(out, F.conv2d(x, weight.flip(-1, -2), b, stride=stride, padding=padding)):
        return _t("do not flip the kernel: conv2d in deep learning is a cross-correlation")
    if any(_close(out, F.conv2d(padded, weight, b, stride=stride)) for padded in _one_sided(x, padding)):
        return _t(ONE_SIDED_HINT)
    if stride != 1 and _close(out, F.conv2d(x, weight, b, padding=padding)[:, :, : out.shape[2], : out.shape[3]]):
        return _t(STRIDE_HINT)
    return _t("check which input window each output value sums over, and that you sum over all input channels.")


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
    It runs with the course's ``conv_output_size``, which has its own check.
    """
    versions = {"conv_output_size": _course_conv_output_size}
    _check_convolution(conv2d, "conv2d_naive", versions, stride, padding, kernel_size, bias, trials, seed)


def check_conv2d_im2col(
    conv2d: Callable,
    stride: int = 1,
    padding: int = 0,
    kernel_size: tuple[int, int] = (3, 3),
    bias: bool = True,
    trials: int = 5,
    seed: int | None = None,
) -> None:
    """Like :func:`check_conv2d`, for the version built on ``im2col``.

    It runs with the course's ``conv_output_size`` and ``im2col`` (``F.unfold``), which have their own checks.
    """
    versions = {"conv_output_size": _course_conv_output_size, "im2col": _course_im2col}
    _check_convolution(conv2d, "conv2d_im2col", versions, stride, padding, kernel_size, bias, trials, seed)


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
    It runs with the course's ``conv_output_size``, which has its own check.
    """
    generator = _generator(seed)
    versions = {"conv_output_size": _course_conv_output_size}
    for _ in range(trials):
        x, _, _ = _conv_inputs(generator, kernel_size, bias=False)
        expected = F.unfold(x, kernel_size, stride=stride, padding=padding)
        shape = _t("x of shape {x}", x=tuple(x.shape))
        call = f"im2col({shape}, {kernel_size}, stride={stride}, padding={padding})"
        out, pads, replaced = _run_recorded(
            im2col, "im2col", versions, call, x.clone(), kernel_size, stride=stride, padding=padding
        )
        pad_hint = _pad_hint(pads, padding)
        _require_tensor(
            out, "im2col", expected.shape, torch.float32, _im2col_shape_hints(x, kernel_size, stride, padding), pad_hint
        )
        if not _close(out, expected, atol=0, rtol=0):
            hint = pad_hint or _im2col_value_hint(out, expected, x, kernel_size, stride, padding)
            _fail("im2col: values differ from torch.nn.functional.unfold: {hint}.", hint=hint)
    _passed(
        "im2col agrees with torch.nn.functional.unfold on {trials} random inputs ({settings}){course}",
        trials=trials,
        settings=_settings(stride, padding, kernel_size),
        course=_with_course(replaced),
    )


def _im2col_shape_hints(x: torch.Tensor, kernel_size: tuple[int, int], stride: int, padding: int) -> dict[tuple, str]:
    expected = tuple(F.unfold(x, kernel_size, stride=stride, padding=padding).shape)
    hints = {
        tuple(F.unfold(x, kernel_size, stride=stride).shape): N_("check the padding"),
        tuple(F.unfold(x, kernel_size, padding=padding).shape): N_("check the stride"),
        expected[:1] + expected[:0:-1]: N_("rows are kernel entries, columns are windows: transpose"),
    }
    hints.pop(expected, None)
    return hints


def _im2col_value_hint(
    out: torch.Tensor, expected: torch.Tensor, x: torch.Tensor, kernel_size: tuple[int, int], stride: int, padding: int
) -> str:
    if _close(out, expected.transpose(1, 2), atol=0, rtol=0):
        return _t("rows are kernel entries, columns are windows: transpose")
    if _close(out.sort(dim=1).values, expected.sort(dim=1).values, atol=0, rtol=0):
        return _t(
            "each column holds the right numbers in the wrong order: list channel by channel, "
            "then kernel row by kernel row"
        )
    if any(
        _close(out, _UNFOLD(padded, kernel_size, stride=stride), atol=0, rtol=0) for padded in _one_sided(x, padding)
    ):
        return _t(ONE_SIDED_HINT)
    if stride != 1 and _close(out, _unstrided_columns(x, kernel_size, stride, padding), atol=0, rtol=0):
        return _t(STRIDE_HINT)
    return _t("column l must hold the input window of output position l (row-major over the output)")


def _unstrided_columns(x: torch.Tensor, kernel_size: tuple[int, int], stride: int, padding: int) -> torch.Tensor:
    """What a loop that forgets the stride lists: for output position (i, j), the window at (i, j)."""
    out_h, out_w = (_course_conv_output_size(x.shape[2 + a], kernel_size[a], stride, padding) for a in range(2))
    columns = _UNFOLD(x, kernel_size, padding=padding)
    grid = columns.reshape(*columns.shape[:2], -1, _course_conv_output_size(x.shape[3], kernel_size[1], 1, padding))
    return grid[:, :, :out_h, :out_w].flatten(2)


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
        call, error_type = f"{name}{args}", type(error).__name__
        _fail("{call} raised {error}: {text}{hint}", call=call, error=error_type, text=_short(error), hint="")
    if not isinstance(module, nn.Module):
        _fail("{call} built a {type}, expected a torch.nn.Module.", call=f"{name}{args}", type=type(module).__name__)
    return module


def _forward(module: nn.Module, x: torch.Tensor, name: str, hint: Callable[[], str | None] | None = None) -> Any:
    """The student's module on a copy of ``x``; an exception names the module, the input and ``hint()``."""
    call = _t("{name} forward on input of shape {shape}", name=name, shape=tuple(x.shape))
    return _run(module, call, x.clone(), hint=hint)


def _load_same_weights(student: nn.Module, reference: nn.Module, name: str, hint: Callable[[], str | None]) -> None:
    expected, actual = reference.state_dict(), student.state_dict()
    missing = sorted(set(expected) - set(actual))
    unexpected = sorted(set(actual) - set(expected))
    if missing or unexpected:
        _fail(
            "{name}: parameter names differ from the reference: missing {missing}, unexpected {unexpected}; {hint}",
            name=name,
            missing=missing[:4],
            unexpected=unexpected[:4],
            hint=hint() or _t("name the layers as torchvision does (conv1, bn1, conv2, bn2, downsample)."),
        )
    for key, value in expected.items():
        if tuple(actual[key].shape) != tuple(value.shape):
            _fail(
                "{name}: {key} has shape {shape}, expected {expected}.",
                name=name,
                key=key,
                shape=tuple(actual[key].shape),
                expected=tuple(value.shape),
            )
    student.load_state_dict(expected, strict=True)


_PROJECTION = N_("the projection's 1x1 convolution")
# What each convolution of a block is for, said when its stride is wrong.
_CONV_ROLES = {
    "conv1": N_("the first convolution takes the block's stride"),
    "conv2": N_("the second convolution keeps the size (stride 1)"),
    _PROJECTION: N_("the projection takes the block's stride, so that the shortcut has the residual branch's shape"),
}


def _conv_hint(label: str, mine: Any, theirs: nn.Conv2d) -> str | None:
    """How the student's convolution differs from the reference's, in words; None when alike (or not a Conv2d).

    Differences that change shapes come first: they are what makes a forward pass fail.
    """
    if not isinstance(mine, nn.Conv2d):
        return None
    shown = _t(label) if label == _PROJECTION else label
    if (mine.in_channels, mine.out_channels) != (theirs.in_channels, theirs.out_channels):
        return _t(
            "{label} maps {mine_in} to {mine_out} channels, expected {in_channels} to {out_channels}",
            label=shown,
            mine_in=mine.in_channels,
            mine_out=mine.out_channels,
            in_channels=theirs.in_channels,
            out_channels=theirs.out_channels,
        )
    if mine.stride != theirs.stride:
        return _t(
            "{label} has stride {stride}, expected {expected}: {role}",
            label=shown,
            stride=mine.stride[0],
            expected=theirs.stride[0],
            role=_t(_CONV_ROLES[label]),
        )
    if mine.kernel_size != theirs.kernel_size or mine.padding != theirs.padding:
        return _t(
            "{label} has kernel {kernel} and padding {padding}, expected kernel {expected_kernel} and padding "
            "{expected_padding}",
            label=shown,
            kernel=mine.kernel_size,
            padding=mine.padding,
            expected_kernel=theirs.kernel_size,
            expected_padding=theirs.padding,
        )
    if mine.bias is not None:
        return _t(
            "{label} has a bias: a convolution followed by BatchNorm has none (bias=False), "
            "BatchNorm's shift does its job",
            label=shown,
        )
    return None


def _block_hint(block: nn.Module, in_channels: int, out_channels: int, stride: int) -> str | None:
    """The first layer of the student's block built unlike the reference block's, as a hint; None if none is."""
    from course_lib.models import BasicBlock

    reference = BasicBlock(in_channels, out_channels, stride)
    for label in ("conv1", "conv2"):
        hint = _conv_hint(label, getattr(block, label, None), getattr(reference, label))
        if hint:
            return hint
    downsample = getattr(block, "downsample", None)
    if reference.downsample is not None and downsample is None:
        return _t(
            "the block changes the shape ({in_channels} to {out_channels} channels, stride {stride}), so x cannot be "
            "added to the residual branch as it is: the shortcut needs a projection, downsample = "
            "nn.Sequential(1x1 convolution with the block's stride and no bias, BatchNorm)",
            in_channels=in_channels,
            out_channels=out_channels,
            stride=stride,
        )
    if reference.downsample is None and downsample is not None:
        return _t("the block keeps the shape, so the shortcut is the identity: downsample = None")
    if isinstance(downsample, nn.Sequential) and len(downsample):
        return _conv_hint(_PROJECTION, downsample[0], reference.downsample[0])
    return None


def _block_case(
    block_class: type, case: tuple[int, int, int], generator: torch.Generator
) -> tuple[nn.Module, torch.Tensor, str, Callable[[], str | None]]:
    """Build the student's block for ``case``, run it, and check the output's shape and the shortcut's kind.

    Returns the block, its input, its name and the function that finds a structural hint.
    """
    in_channels, out_channels, stride = case
    name = f"BasicBlock({in_channels}, {out_channels}, stride={stride})"
    student = _construct(block_class, "BasicBlock", in_channels, out_channels, stride)
    hint = functools.partial(_block_hint, student, in_channels, out_channels, stride)
    size = _randint(generator, 6, 9)
    x = torch.randn(2, in_channels, size, size, generator=generator)
    expected_shape = (2, out_channels, (size - 1) // stride + 1, (size - 1) // stride + 1)
    shape_hints = {
        (2, out_channels, size, size): N_("the first convolution (and the projection) must use the stride"),
        (2, in_channels) + expected_shape[2:]: N_("the block must output out_channels channels"),
    }
    shape_hints.pop(expected_shape, None)
    _require_tensor(_forward(student, x, name, hint), name, expected_shape, torch.float32, shape_hints, hint)
    projection = stride != 1 or in_channels != out_channels
    if projection != (getattr(student, "downsample", None) is not None):
        why = hint() or _t("downsample is a projection exactly when the shape changes")
        _fail("{name}: {hint}.", name=name, hint=why)
    return student, x, name, hint


BLOCK_CASES = ((8, 8, 1), (8, 16, 2), (8, 16, 1), (8, 8, 2))


def check_block_shapes(
    block_class: type, cases: tuple[tuple[int, int, int], ...] = BLOCK_CASES, seed: int | None = None
) -> None:
    """``BasicBlock(in_channels, out_channels, stride)`` for each case of ``cases``: the output's shape, and a
    shortcut that is the identity (``downsample = None``) exactly when the block keeps the shape."""
    generator = _generator(seed)
    for case in cases:
        _block_case(block_class, case, generator)
    _passed("BasicBlock output shapes and shortcuts for (in, out, stride) = {cases}", cases=", ".join(map(str, cases)))


def check_basic_block(
    block_class: type, cases: tuple[tuple[int, int, int], ...] = BLOCK_CASES, seed: int | None = None
) -> None:
    """``BasicBlock(in_channels, out_channels, stride)``: shapes, the kind of shortcut, equality with the reference.

    For each case of ``cases`` the block gets the reference block's random weights and BatchNorm
    statistics and must compute the same numbers in eval and in train mode.
    """
    from course_lib.models import BasicBlock

    generator = _generator(seed)
    for case in cases:
        student, x, name, hint = _block_case(block_class, case, generator)
        reference = BasicBlock(*case)
        _load_same_weights(student, reference, name, hint)
        _randomise(reference, generator)
        student.load_state_dict(reference.state_dict(), strict=True)
        for mode in ("eval", "train"):
            student.train(mode == "train")
            reference.train(mode == "train")
            out, expected = _forward(student, x, name, hint), reference(x.clone())
            if not _close(out, expected):
                _fail(
                    "{name} in {mode} mode: output differs from the reference block with the same weights "
                    "by up to {error:.3g}: {hint}",
                    name=name,
                    mode=mode,
                    error=_max_error(out, expected),
                    hint=_order_hint(student, reference, x, name),
                )
        if sum(p.numel() for p in student.parameters()) != sum(p.numel() for p in reference.parameters()):
            _fail(
                "{name}: the block has extra parameters; use bias=False in convolutions followed by BatchNorm.",
                name=name,
            )
    _passed("BasicBlock matches the reference block, eval and train mode, for (in, out, stride) = {cases}", cases=cases)


def _order_hint(student: nn.Module, reference: nn.Module, x: torch.Tensor, name: str) -> str:
    """Which mistake in the order of the block's operations explains the student's output."""
    reference.eval()
    student.eval()
    with torch.no_grad():
        branch = reference.bn2(reference.conv2(reference.relu(reference.bn1(reference.conv1(x)))))
        shortcut = x if reference.downsample is None else reference.downsample(x)
        out = _forward(student, x, name)
    if _close(out, branch + shortcut):
        return _t("apply the final ReLU after adding the shortcut.")
    if _close(out, torch.relu(branch)):
        return _t("add the shortcut (x, or its projection) before the final ReLU.")
    if _close(out, torch.relu(branch) + shortcut):
        return _t("add the shortcut before the final ReLU, not after it.")
    return _t("the order is conv1, bn1, relu, conv2, bn2, + shortcut, relu.")


def check_output_shape(module: nn.Module, x: torch.Tensor, shape: tuple, name: str | None = None) -> None:
    """Run ``module`` on a copy of ``x``: the output must be a float32 torch.Tensor of ``shape``.

    ``name`` is how messages call the module (default: "the module", in the kernel's language)."""
    name = name or _t("the module")
    _require_tensor(_forward(module, x, name), name, tuple(shape), torch.float32)


def check_zeroed_residual(block_class: type, channels: int = 8, seed: int | None = None) -> None:
    """``BasicBlock(c, c)`` with its residual branch zeroed (bn2 weight and bias 0) computes relu(x)."""
    _check_zeroed_residual(block_class, _generator(seed), channels)
    _passed("BasicBlock({channels}, {channels}) with a zeroed residual branch is relu(x)", channels=channels)


def _zeroed_output(block: nn.Module, x: torch.Tensor, name: str, shift: float) -> Any:
    """The block's output when its residual branch is the constant ``shift`` (bn2: weight 0, bias ``shift``)."""
    with torch.no_grad():
        block.bn2.weight.zero_()
        block.bn2.bias.fill_(shift)
    block.eval()
    return _forward(block, x, name)


def _check_zeroed_residual(block_class: type, generator: torch.Generator, channels: int = 8) -> None:
    """With bn2's scale and shift at zero the residual branch is zero and the block is relu(x)."""
    student = _construct(block_class, "BasicBlock", channels, channels, 1)
    name = f"BasicBlock({channels}, {channels})"
    if not isinstance(getattr(student, "bn2", None), nn.BatchNorm2d) or student.bn2.weight is None:
        _fail(
            "{name} has no BatchNorm layer bn2 with a scale and a shift: name the layers as torchvision does.",
            name=name,
        )
    if getattr(student, "downsample", None) is not None:
        _fail("{name}: the block keeps the shape, so the shortcut is the identity: downsample = None.", name=name)
    x = torch.randn(2, channels, 6, 6, generator=generator)
    out = _zeroed_output(student, x, name, 0.0)
    _require_tensor(out, name, tuple(x.shape), torch.float32)
    if not _close(out, torch.relu(x), atol=1e-6, rtol=0):
        _fail(
            "{name} with its residual branch zeroed (bn2 weight and bias = 0) is not relu(x): {hint}",
            name=name,
            hint=_zeroed_hint(student, x, name, out),
        )


def _zeroed_hint(block: nn.Module, x: torch.Tensor, name: str, out: torch.Tensor) -> str:
    """Tell a missing final ReLU from a ReLU before the addition: with the branch at -1 they differ."""
    if _close(out, torch.zeros_like(x), atol=1e-6, rtol=0):
        return _t("the shortcut is missing: add x to the residual branch, then apply the final ReLU.")
    if _close(out, x, atol=1e-6, rtol=0):
        shifted = _zeroed_output(block, x, name, -1.0)
        if isinstance(shifted, torch.Tensor) and _close(shifted, x - 1, atol=1e-5, rtol=0):
            return _t("it returns F(x) + x: the final ReLU is missing; apply relu after adding the shortcut.")
        if isinstance(shifted, torch.Tensor) and _close(shifted, x, atol=1e-5, rtol=0):
            return _t(
                "the ReLU comes before the addition (relu(F(x)) + x): add the shortcut first, "
                "then apply the final ReLU to the sum."
            )
    return _t("the identity shortcut must add x itself, unchanged, before the final ReLU.")


def _course_make_stage(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    """The course's make_stage, as course_lib.models.ResNet18 builds its stages: what ResNet18 is checked with."""
    from course_lib.models import BasicBlock

    return nn.Sequential(BasicBlock(in_channels, out_channels, stride), BasicBlock(out_channels, out_channels, 1))


def _stage_hint(stage: nn.Sequential, in_channels: int, out_channels: int, stride: int) -> str | None:
    """What is wrong with the blocks of the student's stage, in words; None if the check cannot tell."""
    expected = ((in_channels, out_channels, stride), (out_channels, out_channels, 1))
    for index, (block, (block_in, block_out, block_stride)) in enumerate(zip(stage, expected, strict=True)):
        conv = getattr(block, "conv1", None)
        if not isinstance(conv, nn.Conv2d):
            return None
        which = _t((N_("the first block"), N_("the second block"))[index])
        if index == 1 and conv.stride != (1, 1):
            return _t(
                "the second block strides too (stride {stride}), so the stage downsamples twice: only the "
                "first block of a stage has the stride; the second is BasicBlock(out_channels, out_channels, 1)",
                stride=conv.stride[0],
            )
        if conv.stride != (block_stride, block_stride):
            return _t(
                "{which} has stride {stride}, expected {expected}: the stage's stride is its first block's",
                which=which,
                stride=conv.stride[0],
                expected=block_stride,
            )
        if (conv.in_channels, conv.out_channels) != (block_in, block_out):
            return _t(
                "{which} maps {mine_in} to {mine_out} channels, expected {in_channels} to {out_channels}: "
                "the first block changes the channels, the second takes out_channels in and keeps them",
                which=which,
                mine_in=conv.in_channels,
                mine_out=conv.out_channels,
                in_channels=block_in,
                out_channels=block_out,
            )
    return None


def check_make_stage(
    make_stage: Callable, in_channels: int = 64, out_channels: int = 128, stride: int = 2, seed: int | None = None
) -> None:
    """``make_stage(in_channels, out_channels, stride)``: an ``nn.Sequential`` of two blocks, the first with the
    stride and the channel change, the second keeping the shape (stride 1, no projection)."""
    generator = _generator(seed)
    call = f"make_stage({in_channels}, {out_channels}, {stride})"
    stage = _run(make_stage, call, in_channels, out_channels, stride)
    if not isinstance(stage, nn.Sequential) or len(stage) != 2:
        if isinstance(stage, nn.Sequential):
            what = _t("an nn.Sequential of {count}", count=len(stage))
        else:
            what = _t("a {type}", type=type(stage).__name__)
        _fail("{call} returned {what}: a stage is an nn.Sequential of two blocks.", call=call, what=what)
    hint = functools.partial(_stage_hint, stage, in_channels, out_channels, stride)
    size = _randint(generator, 7, 9)
    x = torch.randn(1, in_channels, size, size, generator=generator)
    expected = (1, out_channels, (size - 1) // stride + 1, (size - 1) // stride + 1)
    _require_tensor(_forward(stage, x, call, hint), call, expected, torch.float32, hint=hint)
    if getattr(stage[1], "downsample", None) is not None:
        why = hint() or _t("it keeps the shape, so it needs none")
        _fail("{call}: the second block has a projection: {hint}.", call=call, hint=why)
    _passed(
        "{call} is two blocks, {in_channels} to {out_channels} channels with stride {stride}, then stride 1",
        call=call,
        in_channels=in_channels,
        out_channels=out_channels,
        stride=stride,
    )


@functools.cache
def _count_mistakes() -> dict[int, str]:
    """Differences from ResNet-18's parameter count that a typical mistake makes, each with its hint (a template)."""
    from course_lib.models import STAGES, ResNet18

    model = ResNet18(num_classes=1000)
    conv_biases = sum(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))
    projections = sum(p.numel() for n, p in model.named_parameters() if ".downsample." in n)
    second_blocks = sum(p.numel() for n, p in model.named_parameters() if n.split(".")[1:2] == ["1"])
    second_projections = sum(c * c + 2 * c for c, stride in STAGES if stride != 1)  # 1x1 convolution and BatchNorm
    return {
        model.conv1.out_channels: N_("the stem convolution has a bias: bias=False, BatchNorm follows it"),
        conv_biases: N_("every convolution has a bias: bias=False in convolutions followed by BatchNorm"),
        second_projections: N_(
            "the second block of layer2, layer3 and layer4 has a projection too: only the first block of a stage "
            "strides and changes the channels, the second is BasicBlock(out_channels, out_channels, 1)"
        ),
        -projections: N_("no projection shortcuts: the first block of layer2, layer3 and layer4 changes the shape"),
        -second_blocks: N_("one block per stage: each stage has two"),
    }


def _count_hint(difference: int) -> str:
    if difference in _count_mistakes():
        hint = _t(_count_mistakes()[difference])
        if difference > 0:
            return _t("{count} too many: {hint}.", count=_number(difference), hint=hint)
        return _t("{count} too few: {hint}.", count=_number(-difference), hint=hint)
    if difference < 0:
        return _t(
            "{count} missing: two blocks per stage, and a projection where the shape changes.",
            count=_number(-difference),
        )
    return _t(
        "{count} too many: convolutions followed by BatchNorm have no bias; one projection per stage at most.",
        count=_number(difference),
    )


def _expected_count(num_classes: int) -> int:
    return RESNET18_PARAMETERS - (1000 - num_classes) * 513


def _resnet(resnet_class: type, num_classes: int) -> nn.Module:
    """The student's ResNet18, built with the course's make_stage (which has its own check)."""
    with _course_versions(resnet_class, {"make_stage": _course_make_stage}):
        return _construct(resnet_class, "ResNet18", num_classes)


def check_parameter_count(resnet_class: type, num_classes: int = 1000) -> None:
    """``ResNet18(num_classes)`` has torchvision's parameter count (11,689,512 for 1000 classes).

    It is built with the course's ``make_stage``, which has its own check.
    """
    count = sum(p.numel() for p in _resnet(resnet_class, num_classes).parameters())
    expected = _expected_count(num_classes)
    if count != expected:
        _fail(
            "ResNet18({num_classes}) has {count} parameters, expected {expected}: {hint}",
            num_classes=num_classes,
            count=_number(count),
            expected=_number(expected),
            hint=_count_hint(count - expected),
        )
    _passed(
        "ResNet18({num_classes}) has {expected} parameters, as torchvision's resnet18",
        num_classes=num_classes,
        expected=_number(expected),
    )


_PARTS = (*STAGE_NAMES, "fc")


def _part_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """What each stage and the head receive when ``model`` runs on ``x`` (eval mode, no gradients)."""
    seen: dict[str, torch.Tensor] = {}
    handles = []

    def recorder(name: str) -> Callable[[nn.Module, tuple], None]:
        def hook(module: nn.Module, inputs: tuple) -> None:
            if inputs and isinstance(inputs[0], torch.Tensor):
                seen.setdefault(name, inputs[0].detach().clone())

        return hook

    for name in _PARTS:
        part = getattr(model, name, None)
        if isinstance(part, nn.Module):
            handles.append(part.register_forward_pre_hook(recorder(name)))
    try:
        with torch.no_grad(), contextlib.suppress(Exception):
            _call(model.eval(), x.clone())
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _resnet_hint(student: nn.Module, reference: nn.Module, x: torch.Tensor) -> str:
    """Where the student's network first departs from torchvision's: the stem, a stage or the head."""
    mine, theirs = _part_inputs(student, x), _part_inputs(reference, x)
    for index, part in enumerate(_PARTS):
        if part not in mine:
            return _t(
                "forward never runs {part}: run the stem, layer1 to layer4, the pooling and fc, in that order",
                part=part,
            )
        if mine[part].shape == theirs[part].shape and _close(mine[part], theirs[part], atol=1e-3, rtol=1e-3):
            continue
        if mine[part].shape != theirs[part].shape:
            shapes = _t(
                "{part} receives {shape}, expected {expected}",
                part=part,
                shape=tuple(mine[part].shape),
                expected=tuple(theirs[part].shape),
            )
        else:
            shapes = _t(
                "{part} receives other numbers than torchvision's (of the right shape, {shape})",
                part=part,
                shape=tuple(mine[part].shape),
            )
        if index == 0:
            missing = _t(" (the max pooling is missing)") if mine[part].shape[-1] == 2 * theirs[part].shape[-1] else ""
            return _t(
                "{shapes}{missing}: the stem is conv1 (7x7, stride 2, padding 3), bn1, relu, then maxpool "
                "(3x3, stride 2, padding 1), in that order",
                shapes=shapes,
                missing=missing,
            )
        if part == "fc":
            return _t("{shapes}: pool with avgpool (adaptive average pooling to 1x1), flatten, then fc", shapes=shapes)
        return _t("{shapes}: run the stages in order, each on the output of the one before", shapes=shapes)
    return _t("fc's output is changed afterwards: return fc's output as it is")


def check_resnet18(resnet_class: type, num_classes: int = 1000, image_size: int = 64, seed: int | None = None) -> None:
    """``ResNet18(num_classes)``: torchvision's parameter count, its state_dict loads strictly, equal outputs.

    It is built with the course's ``make_stage``, which has its own check.
    """
    import torchvision

    generator = _generator(seed)
    student = _resnet(resnet_class, num_classes)
    count, expected_count = sum(p.numel() for p in student.parameters()), _expected_count(num_classes)
    if count != expected_count:
        _fail(
            "ResNet18({num_classes}) has {count} parameters, expected {expected}: {hint}",
            num_classes=num_classes,
            count=_number(count),
            expected=_number(expected_count),
            hint=_count_hint(count - expected_count),
        )
    reference = torchvision.models.resnet18(weights=None, num_classes=num_classes)
    _randomise(reference, generator)
    _load_torchvision_weights(student, reference)
    x = torch.randn(2, 3, image_size, image_size, generator=generator)
    hint = functools.partial(_resnet_hint, student, reference, x)
    out = _forward(student.eval(), x, f"ResNet18({num_classes})", hint)
    _require_tensor(out, f"ResNet18({num_classes})", (2, num_classes), torch.float32, hint=hint)
    with torch.no_grad():
        expected = reference.eval()(x)
    if not _close(out, expected, atol=1e-3, rtol=1e-3):
        _fail(
            "ResNet18({num_classes}) output differs from torchvision's resnet18 with the same weights by up to "
            "{error:.3g}: {hint}.",
            num_classes=num_classes,
            error=_max_error(out, expected),
            hint=hint(),
        )
    small = _resnet(resnet_class, 3)
    small_out = _forward(small.eval(), x[:, :, :32, :32], "ResNet18(3)")
    _require_tensor(small_out, _t("ResNet18(3) on 32x32 images"), (2, 3), torch.float32)
    _passed(
        "ResNet18({num_classes}) matches torchvision's resnet18 on {size}x{size} images",
        num_classes=num_classes,
        size=image_size,
    )


def _load_torchvision_weights(student: nn.Module, reference: nn.Module) -> None:
    expected_keys, actual_keys = set(reference.state_dict()), set(student.state_dict())
    missing, unexpected = sorted(expected_keys - actual_keys), sorted(actual_keys - expected_keys)
    if missing or unexpected:
        _fail(
            "torchvision's resnet18 state_dict does not load: missing {missing}, unexpected "
            "{unexpected}; name the parts conv1, bn1, layer1..layer4 (two blocks each) and fc.",
            missing=missing[:4],
            unexpected=unexpected[:4],
        )
    try:
        student.load_state_dict(reference.state_dict(), strict=True)
    except RuntimeError as error:
        _fail("torchvision's resnet18 state_dict does not load in strict mode: {error}", error=_short(error))


# ---------------------------------------------------------------- regimes and experiment


def _pretrained_state(generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Stand-in pretrained weights: random, with BatchNorm statistics measured on random images.

    Measured statistics keep eval-mode activations at a trained network's scale. Random ones
    let them grow to about 1e12 through the frozen backbone, where the softmax saturates and
    a correct training step can leave the head unchanged (1.4 % of feature-extraction checks failed so).
    """
    from course_lib.models import ResNet18

    source = ResNet18(num_classes=10)
    _randomise(source, generator)
    batchnorms = [m for m in source.modules() if isinstance(m, nn.BatchNorm2d)]
    for batchnorm in batchnorms:
        batchnorm.reset_running_stats()
        batchnorm.momentum = None  # a plain average: the statistics of the batch below
    with torch.no_grad():
        source.train()(torch.randn(32, 3, 32, 32, generator=generator))
    return source.state_dict()


def _backbone_state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}


def _train_step(model: nn.Module, groups: list, generator: torch.Generator, num_classes: int) -> None:
    model.train()
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    images = torch.randn(4, 3, 32, 32, generator=generator)
    labels = torch.randint(0, num_classes, (4,), generator=generator)
    loss = F.cross_entropy(_forward(model, images, _t("the model")), labels)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def _backbone_in_eval(model: nn.Module) -> bool:
    """Every BatchNorm layer outside the head is in eval mode."""
    return all(not m.training for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def check_freeze_backbone(freeze_backbone: Callable, num_classes: int = 3, seed: int | None = None) -> None:
    """``freeze_backbone(model)`` on a ``ResNet18``: only the head trains, and after ``model.train()`` a forward
    pass in train mode leaves every backbone weight and BatchNorm statistic as it was."""
    from course_lib.models import ResNet18

    generator = _generator(seed)
    model = ResNet18(num_classes=num_classes).train()
    call = f"freeze_backbone(ResNet18(num_classes={num_classes}))"
    with _forbidden_method(ResNet18, "freeze_backbone", call):
        _run(freeze_backbone, call, model)
    frozen_in_eval = _backbone_in_eval(model)
    _require_own_methods(model, call)
    _check_head_only(model, call, num_classes)
    model.train()
    if not model.fc.training:
        _fail(
            "after {call} and model.train(), the head fc is in eval mode: only the backbone stays in eval mode.",
            call=call,
        )
    before = _backbone_state(model)
    _forward(model, torch.randn(4, 3, 32, 32, generator=generator) * 3, _t("the frozen model"))
    changed = [k for k, v in _backbone_state(model).items() if not torch.equal(v, before[k])]
    if changed:
        raise CheckFailed(_statistics_hint(call, changed[0], frozen_in_eval))
    _passed("{call}: only the head trains, and the backbone stays as loaded after model.train()", call=call)


def _check_head_only(model: nn.Module, call: str, num_classes: int) -> None:
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    head = [n for n, _ in model.named_parameters() if n.startswith("fc.")]
    count = sum(p.numel() for p in model.parameters() if p.requires_grad)
    expected = 512 * num_classes + num_classes
    if sorted(trainable) == sorted(head):
        return
    if not set(head) <= set(trainable):
        _fail(
            "{call}: the head is frozen too ({count} trainable parameters, expected {expected}): fc trains.",
            call=call,
            count=_number(count),
            expected=_number(expected),
        )
    _fail(
        "{call}: {count} trainable parameters, expected {expected} (the head only): set requires_grad=False "
        "on every parameter outside fc ({name} still trains).",
        call=call,
        count=_number(count),
        expected=_number(expected),
        name=[n for n in trainable if n not in head][0],
    )


def _statistics_hint(call: str, key: str, frozen_in_eval: bool) -> str:
    """Why BatchNorm statistics changed: no eval mode at all, or an eval mode that model.train() undid."""
    if frozen_in_eval:
        return _t(
            "after {call} the backbone's BatchNorm layers were in eval mode, but model.train() switches every layer "
            "back to train mode, and then a forward pass changed {key}: the frozen backbone must stay in eval mode "
            "also after model.train() (ResNet18.train keeps it there while model.backbone_frozen is True).",
            call=call,
            key=key,
        )
    return _t(
        "after {call} and model.train(), a forward pass changed {key}: requires_grad=False does not stop BatchNorm "
        "from updating its running statistics in train mode; the frozen backbone must stay in eval mode, "
        "also after model.train() (ResNet18.train keeps it there while model.backbone_frozen is True).",
        call=call,
        key=key,
    )


def _group_summary(groups: list) -> list[tuple[str, float, int]]:
    return [
        (group.get("name"), float(group.get("lr", math.nan)), sum(p.numel() for p in group["params"]))
        for group in groups
    ]


def _check_groups(call: str, model: nn.Module, groups: Any, expected_groups: list, regime: str) -> None:
    """The student's parameter groups against the library's: dicts holding each trainable parameter once,
    with the library's names, learning rates and sizes."""
    if not isinstance(groups, list) or not all(isinstance(g, dict) and "params" in g for g in groups):
        _fail("{call}: param_groups must be a list of dicts with 'params', 'lr' and 'name'.", call=call)
    groups = [{**group, "params": list(group["params"])} for group in groups]
    listed = [p for group in groups for p in group["params"]]
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    if any(id(p) not in {id(q) for q in model.parameters()} for p in listed):
        _fail("{call}: the parameter groups hold tensors that are not the model's parameters.", call=call)
    frozen = sum(p.numel() for p in listed if id(p) not in trainable)
    if frozen:
        _fail(
            "{call}: the groups hold {frozen} frozen parameters (requires_grad False): leave them out, "
            "so that a frozen backbone leaves the head group alone.",
            call=call,
            frozen=_number(frozen),
        )
    if len(listed) != len({id(p) for p in listed}):
        _fail(
            "{call}: a parameter is in two groups (fc's in the backbone group too?): list each parameter once.",
            call=call,
        )
    if {id(p) for p in listed} != trainable:
        _fail(
            "{call}: some trainable parameters are in no group: the backbone group holds every one outside fc.",
            call=call,
        )
    _compare_summaries(call, _group_summary(groups), _group_summary(expected_groups), regime)


def _compare_summaries(call: str, mine: list, expected: list, regime: str) -> None:
    names, expected_names = [g[0] for g in mine], [g[0] for g in expected]
    if names != expected_names:
        _fail(
            "{call}: the groups are named {names}, expected {expected} (the backbone's first, then the head).",
            call=call,
            names=names,
            expected=expected_names,
        )
    for (name, lr, size), (_, expected_lr, expected_size) in zip(mine, expected, strict=True):
        if not math.isclose(lr, expected_lr, rel_tol=1e-9):
            finetune = name == "backbone" and regime == "finetune"
            why = _t(" (lr * BACKBONE_LR_FACTOR under finetune)") if finetune else ""
            _fail(
                "{call}: the {name} group has lr {lr:g}, expected {expected:g}{why}.",
                call=call,
                name=name,
                lr=lr,
                expected=expected_lr,
                why=why,
            )
        if size != expected_size:
            _fail(
                "{call}: the {name} group holds {size} parameters, expected {expected}.",
                call=call,
                name=name,
                size=_number(size),
                expected=_number(expected_size),
            )


def check_param_groups(param_groups: Callable, lr: float = 0.01, seed: int | None = None) -> None:
    """``param_groups(model, regime, lr)`` against ``course_lib.regimes.param_groups``, for a ResNet18 as the
    library prepares it for each regime (frozen by ``ResNet18.freeze_backbone`` under feature_extraction)."""
    import copy

    from course_lib import REGIMES
    from course_lib import regimes as library
    from course_lib.models import ResNet18

    num_classes = _randint(_generator(seed), 2, 6)
    fresh = ResNet18(num_classes=num_classes).train()
    for regime in REGIMES:
        model = copy.deepcopy(fresh)
        if regime == "feature_extraction":
            model.freeze_backbone()
        call = f"param_groups(model, {regime!r}, lr={lr})"
        expected = library.param_groups(model, regime, lr)
        _check_groups(call, model, _run(param_groups, call, model, regime, lr), expected, regime)
    _passed(
        "param_groups agrees with course_lib.regimes.param_groups for {regimes} (lr={lr})",
        regimes=", ".join(REGIMES),
        lr=lr,
    )


def check_prepare_model(
    prepare_model: Callable, regimes: tuple[str, ...] | None = None, lr: float = 0.01, seed: int | None = None
) -> None:
    """``prepare_model(regime, num_classes, weights, lr)`` against ``course_lib.regimes.prepare_model``.

    Compares the trainable parameters, the parameter groups (names, learning rates, sizes),
    the loaded weights, and what one training step changes: a frozen backbone, BatchNorm
    running statistics included, must stay exactly as loaded. It runs with the course's
    ``freeze_backbone`` and ``param_groups``, which have their own checks.
    """
    from course_lib import REGIMES
    from course_lib import regimes as library
    from course_lib.models import ResNet18

    generator = _generator(seed)
    state = _pretrained_state(generator)
    num_classes = _randint(generator, 2, 6)
    library_freeze = ResNet18.freeze_backbone

    def course_freeze_backbone(model: nn.Module) -> None:
        """The course's freeze_backbone (ResNet18's own, which the student's code may not call directly)."""
        library_freeze(model)

    versions = {"freeze_backbone": course_freeze_backbone, "param_groups": library.param_groups}
    for regime in regimes or REGIMES:
        weights = None if regime == "fresh" else state
        call = f"prepare_model({regime!r}, {num_classes}, lr={lr})"
        with (
            _forbidden_method(ResNet18, "freeze_backbone", call),
            _course_versions(prepare_model, versions) as replaced,
        ):
            result = _run(prepare_model, call, regime, num_classes, weights, lr=lr)
        model, groups = _prepared(result, call)
        expected_model, expected_groups = library.prepare_model(regime, num_classes, weights, lr=lr)
        _check_prepared(model, expected_model, call, regime, num_classes)
        _check_groups(call, model, groups, expected_groups, regime)
        if weights is not None:
            _check_loaded(model, weights, call)
        _check_training_step(model, groups, regime, call, generator, num_classes)
    _passed(
        "prepare_model agrees with course_lib.regimes for {regimes}{course}",
        regimes=", ".join(regimes or REGIMES),
        course=_with_course(replaced),
    )


def _check_loaded(model: nn.Module, weights: dict[str, torch.Tensor], call: str) -> None:
    loaded = model.state_dict()
    wrong = [k for k in weights if not k.startswith("fc.") and not torch.equal(loaded[k], weights[k])]
    if wrong:
        _fail(
            "{call}: the backbone does not hold the pretrained weights ({key} differs): load them.",
            call=call,
            key=wrong[0],
        )


def _prepared(result: Any, call: str) -> tuple[nn.Module, Any]:
    """The (model, param_groups) pair, with a model that is the course's ResNet18 as it is."""
    from course_lib.models import ResNet18

    if not (isinstance(result, tuple) and len(result) == 2):
        _fail("{call} must return (model, param_groups), got {type}.", call=call, type=type(result).__name__)
    model, groups = result
    if type(model) is not ResNet18:
        _fail("{call} returned a {type}; build a course_lib.models.ResNet18.", call=call, type=type(model).__name__)
    _require_own_methods(model, call)
    return model, groups


def _require_own_methods(model: nn.Module, call: str) -> None:
    """The checks judge the model by what ResNet18's own methods do: replacing them is not freezing."""
    overridden = {"forward", "train", "state_dict", "parameters", "named_parameters"} & set(vars(model))
    if overridden:
        _fail(
            "{call}: the model's methods {methods} were replaced; use ResNet18 as it is.",
            call=call,
            methods=sorted(overridden),
        )


def _check_prepared(model: nn.Module, expected: nn.Module, call: str, regime: str, num_classes: int) -> None:
    from course_lib import regimes as library

    if tuple(model.fc.weight.shape) != (num_classes, 512):
        _fail(
            "{call}: the head has shape {shape}, expected ({num_classes}, 512): replace fc.",
            call=call,
            shape=tuple(model.fc.weight.shape),
            num_classes=num_classes,
        )
    trainable, expected_trainable = library.count_trainable(model), library.count_trainable(expected)
    if trainable != expected_trainable:
        what = (
            N_("freeze everything but the head fc") if regime == "feature_extraction" else N_("every parameter trains")
        )
        _fail(
            "{call}: {count} trainable parameters, expected {expected}: {what}.",
            call=call,
            count=_number(trainable),
            expected=_number(expected_trainable),
            what=_t(what),
        )


def _check_training_step(
    model: nn.Module, groups: list, regime: str, call: str, generator: torch.Generator, num_classes: int
) -> None:
    before = _backbone_state(model)
    head_before = model.fc.weight.detach().clone()
    _train_step(model, groups, generator, num_classes)
    after = _backbone_state(model)
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    if torch.equal(head_before, model.fc.weight):
        _fail("{call}: the head did not change after a training step: it must be trainable.", call=call)
    if regime == "feature_extraction" and changed:
        stats = [k for k in changed if "running_" in k or "num_batches" in k]
        if stats and len(stats) == len(changed):
            _fail(
                "{call}: a training step changed BatchNorm running statistics ({key}): requires_grad=False "
                "does not stop them; the frozen backbone must stay in eval mode, also after model.train().",
                call=call,
                key=stats[0],
            )
        _fail("{call}: a training step changed the frozen backbone ({key}).", call=call, key=changed[0])
    if regime != "feature_extraction" and not any(k.endswith("weight") for k in changed):
        _fail(
            "{call}: a training step left the backbone unchanged: under {regime} it trains.", call=call, regime=regime
        )


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
        call = f"time_to_target({accuracies}, {seconds}, {target})"
        result = _run(time_to_target, call, list(accuracies), list(seconds), target)
        if expected is None and result is not None:
            _fail("{call} returned {result!r}, expected None: the target was never reached.", call=call, result=result)
        if expected is not None and (type(result) is not float or result != expected):
            _fail(
                "{call} returned {result!r}, expected {expected!r}: the time of the first epoch at or above "
                "the target.",
                call=call,
                result=result,
                expected=expected,
            )
    _passed("time_to_target agrees with History.time_to on {trials} random histories", trials=trials)


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
        _fail("{name} is a {type}; keep the History that train.fit returned.", name=name, type=type(history).__name__)
    if len(history.records) != epochs:
        _fail("{name} has {count} epochs, expected {epochs}.", name=name, count=len(history.records), epochs=epochs)
    seconds = history.column("cumulative_seconds")
    if any(not math.isfinite(s) or s <= 0 for s in seconds) or seconds != sorted(seconds):
        _fail("{name}: cumulative_seconds {seconds} must be positive and increasing.", name=name, seconds=seconds)
    for column in ("train_accuracy", "val_accuracy"):
        values = history.column(column)
        if any(not 0.0 <= v <= 1.0 for v in values):
            _fail(
                "{name}: {column} {values} must be fractions between 0 and 1.", name=name, column=column, values=values
            )
    _passed("{name} is a History of {epochs} epochs with consistent values", name=name, epochs=epochs)
