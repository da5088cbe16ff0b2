"""Convolution from scratch, and what a convolution costs.

``conv2d_naive`` is the definition written as loops: every output value is the sum,
over all input channels and kernel positions, of input times weight.
``conv2d_im2col`` computes the same numbers the way libraries do: copy every input
window into one column of a matrix ("im2col", here ``F.unfold``), then do a single
matrix product with the flattened kernels. The loops touch each number many times
from Python; the matrix product hands all of the work to one optimised routine.

Both follow ``torch.nn.functional.conv2d`` (cross-correlation, the kernel is not
flipped) for ``stride``, ``padding`` (zeros) and ``dilation``, each an int or a pair.

``conv_cost`` and ``layer_costs`` count parameters and multiply-adds (MACs): one
MAC is one ``a * b`` added to a sum, so a layer's FLOPs are about twice its MACs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.errors import CourseError

__all__ = [
    "ConvCost",
    "LayerCost",
    "conv2d_im2col",
    "conv2d_naive",
    "conv_cost",
    "conv_output_size",
    "layer_costs",
]

IntOrPair = int | tuple[int, int]


def _pair(value: IntOrPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length along one axis: floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1.

    A dilated kernel spans ``dilation * (kernel_size - 1) + 1`` input positions; the
    window starts at every ``stride``-th position where it still fits in the padded input.
    """
    if min(size, kernel_size, stride, dilation) < 1 or padding < 0:
        raise CourseError(
            f"conv_output_size needs size, kernel_size, stride, dilation >= 1 and padding >= 0; "
            f"got size={size}, kernel_size={kernel_size}, stride={stride}, "
            f"padding={padding}, dilation={dilation}."
        )
    span = dilation * (kernel_size - 1) + 1
    if size + 2 * padding < span:
        raise CourseError(f"The kernel spans {span} positions but the padded input has only {size + 2 * padding}.")
    return (size + 2 * padding - span) // stride + 1


def _output_hw(
    x: torch.Tensor, weight: torch.Tensor, stride: IntOrPair, padding: IntOrPair, dilation: IntOrPair
) -> tuple[int, int]:
    if x.dim() != 4 or weight.dim() != 4:
        raise CourseError(
            f"Expected x of shape (N, C, H, W) and weight of shape (C_out, C, kH, kW); "
            f"got {tuple(x.shape)} and {tuple(weight.shape)}."
        )
    if x.shape[1] != weight.shape[1]:
        raise CourseError(f"x has {x.shape[1]} channels but the weight expects {weight.shape[1]}.")
    return tuple(
        conv_output_size(x.shape[2 + axis], weight.shape[2 + axis], stride[axis], padding[axis], dilation[axis])
        for axis in range(2)
    )


def conv2d_naive(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """2D convolution by its definition, one output value at a time.

    x: (N, C, H, W); weight: (C_out, C, kH, kW); bias: (C_out,) or None.
    out[n, o, i, j] = bias[o] + sum over c, a, b of
                      weight[o, c, a, b] * x_padded[n, c, i*stride + a*dilation, j*stride + b*dilation]
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_h, out_w = _output_hw(x, weight, stride, padding, dilation)
    x = F.pad(x, (padding[1], padding[1], padding[0], padding[0]))
    batch, out_channels = x.shape[0], weight.shape[0]
    k_h, k_w = weight.shape[2], weight.shape[3]
    rows = []
    for n in range(batch):
        for o in range(out_channels):
            for i in range(out_h):
                for j in range(out_w):
                    top, left = i * stride[0], j * stride[1]
                    window = x[
                        n,
                        :,
                        top : top + dilation[0] * (k_h - 1) + 1 : dilation[0],
                        left : left + dilation[1] * (k_w - 1) + 1 : dilation[1],
                    ]
                    value = (window * weight[o]).sum()
                    rows.append(value if bias is None else value + bias[o])
    return torch.stack(rows).reshape(batch, out_channels, out_h, out_w)


def conv2d_im2col(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> torch.Tensor:
    """2D convolution as one matrix product: (C_out, C*kH*kW) @ (C*kH*kW, windows).

    ``F.unfold`` copies each input window into a column, so the columns matrix holds
    each input value up to kH*kW times: memory is traded for speed.
    """
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_h, out_w = _output_hw(x, weight, stride, padding, dilation)
    k_h, k_w = weight.shape[2], weight.shape[3]
    columns = F.unfold(x, (k_h, k_w), dilation=dilation, padding=padding, stride=stride)
    out = weight.reshape(weight.shape[0], -1) @ columns  # (N, C_out, out_h * out_w)
    if bias is not None:
        out = out + bias.reshape(1, -1, 1)
    return out.reshape(x.shape[0], weight.shape[0], out_h, out_w)


class ConvCost(NamedTuple):
    """What one convolution layer costs for one image."""

    output_size: tuple[int, int]
    params: int
    macs: int


def conv_cost(
    in_channels: int,
    out_channels: int,
    kernel_size: IntOrPair,
    input_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    bias: bool = True,
) -> ConvCost:
    """Parameters and multiply-adds of one Conv2d layer on one image of ``input_size``.

    params = C_out * (C_in / groups) * kH * kW  (+ C_out for the bias)
    MACs   = H_out * W_out * C_out * (C_in / groups) * kH * kW
    The parameter count does not depend on the image size; the MACs grow with its area.
    """
    if in_channels % groups or out_channels % groups:
        raise CourseError(f"groups={groups} must divide in_channels and out_channels.")
    kernel, size = _pair(kernel_size), _pair(input_size)
    stride, padding, dilation = _pair(stride), _pair(padding), _pair(dilation)
    out_size = tuple(
        conv_output_size(size[axis], kernel[axis], stride[axis], padding[axis], dilation[axis]) for axis in range(2)
    )
    per_output = (in_channels // groups) * kernel[0] * kernel[1]
    params = out_channels * per_output + (out_channels if bias else 0)
    macs = out_size[0] * out_size[1] * out_channels * per_output
    return ConvCost(out_size, params, macs)


class LayerCost(NamedTuple):
    """One row of ``layer_costs``: a layer, the shape it outputs for one image, its cost."""

    name: str
    kind: str
    output_shape: tuple[int, ...]
    params: int
    macs: int


# Layers that get a row: those with weights, and pooling (it changes the shape).
_POOLING = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def layer_costs(model: nn.Module, input_shape: Sequence[int]) -> list[LayerCost]:
    """Per-layer output shape, parameters and MACs of ``model`` for one image, in run order.

    ``input_shape`` is (C, H, W). Convolutions and linear layers have MACs; BatchNorm
    (which folds into the convolution before it at inference) and pooling are counted
    with 0 MACs. Found by running one zero image through the model with forward hooks,
    so it works for any model built from these layers. Each module's parameters are
    counted once, so ``sum(row.params)`` is the model's parameter count.
    """
    if len(input_shape) != 3:
        raise CourseError(f"input_shape must be (C, H, W) for one image, not {tuple(input_shape)}.")
    rows: list[LayerCost] = []
    counted: set[int] = set()

    def record(name: str) -> Callable[[nn.Module, tuple, torch.Tensor], None]:
        def hook(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
            params = 0 if id(module) in counted else sum(p.numel() for p in module.parameters())
            counted.add(id(module))
            rows.append(
                LayerCost(
                    name, type(module).__name__, tuple(output.shape[1:]), params, _macs(module, inputs[0], output)
                )
            )

        return hook

    handles = [
        module.register_forward_hook(record(name)) for name, module in model.named_modules() if _gets_a_row(module)
    ]
    was_training = model.training
    parameter = next(model.parameters(), None)
    device = parameter.device if parameter is not None else torch.device("cpu")
    dtype = parameter.dtype if parameter is not None else torch.float32
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device=device, dtype=dtype))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return rows


def _gets_a_row(module: nn.Module) -> bool:
    is_leaf = next(module.children(), None) is None
    has_weights = next(module.parameters(recurse=False), None) is not None
    return is_leaf and (has_weights or isinstance(module, _POOLING))


def _macs(module: nn.Module, x: torch.Tensor, output: torch.Tensor) -> int:
    if isinstance(module, nn.Conv2d):
        out_positions = output.shape[2] * output.shape[3]
        per_output = module.weight[0].numel()  # (C_in / groups) * kH * kW
        return out_positions * module.out_channels * per_output
    if isinstance(module, nn.Linear):
        rows = math.prod(output.shape[1:-1])  # 1 for (N, features)
        return rows * module.in_features * module.out_features
    return 0
