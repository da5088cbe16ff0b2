"""Convolution from scratch against torch.nn.functional.conv2d, and the cost counts."""

import itertools

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from course_lib import CourseError
from course_lib.conv import conv2d_im2col, conv2d_naive, conv_cost, conv_output_size, layer_costs
from course_lib.models import ResNet18

# float32 sums of at most 3*3*3 = 27 products of values around 1: differences in the
# order of summation stay far below 1e-5.
ATOL = 1e-5
RTOL = 1e-5

SHAPES = [  # (N, C_in, H, W, C_out, kH, kW)
    (1, 1, 5, 5, 1, 3, 3),
    (2, 3, 7, 6, 4, 3, 3),
    (1, 2, 6, 8, 3, 1, 1),
    (2, 3, 5, 7, 2, 2, 3),
]
STRIDES = [1, 2, (1, 2)]
PADDINGS = [0, 1, (2, 0)]
GRID = list(itertools.product(range(len(SHAPES)), STRIDES, PADDINGS))


def case(index, dtype=torch.float32, seed=0):
    n, c, h, w, out, kh, kw = SHAPES[index]
    generator = torch.Generator().manual_seed(seed + index)
    x = torch.randn(n, c, h, w, generator=generator, dtype=dtype)
    weight = torch.randn(out, c, kh, kw, generator=generator, dtype=dtype)
    bias = torch.randn(out, generator=generator, dtype=dtype)
    return x, weight, bias


@pytest.mark.parametrize("conv", [conv2d_naive, conv2d_im2col])
@pytest.mark.parametrize("shape, stride, padding", GRID)
def test_matches_torch_conv2d(conv, shape, stride, padding):
    x, weight, bias = case(shape)
    for b in (bias, None):
        expected = F.conv2d(x, weight, b, stride=stride, padding=padding)
        actual = conv(x, weight, b, stride=stride, padding=padding)
        torch.testing.assert_close(actual, expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("conv", [conv2d_naive, conv2d_im2col])
def test_dilation_matches_torch_conv2d(conv):
    x, weight, bias = case(1)
    for dilation in (2, (1, 2)):
        expected = F.conv2d(x, weight, bias, stride=1, padding=1, dilation=dilation)
        torch.testing.assert_close(conv(x, weight, bias, 1, 1, dilation), expected, atol=ATOL, rtol=RTOL)


@pytest.mark.parametrize("conv", [conv2d_naive, conv2d_im2col])
def test_gradients_match_finite_differences(conv):
    x, weight, bias = case(3, dtype=torch.float64)
    x, weight, bias = x[:1, :2, :4, :5], weight[:, :2], bias
    inputs = tuple(t.clone().requires_grad_(True) for t in (x, weight, bias))
    assert torch.autograd.gradcheck(lambda x, w, b: conv(x, w, b, stride=(1, 2), padding=1), inputs)


def test_output_size_matches_torch():
    for size, kernel, stride, padding, dilation in itertools.product(
        (5, 8, 13), (1, 3, 4), (1, 2, 3), (0, 1, 2), (1, 2)
    ):
        if size + 2 * padding < dilation * (kernel - 1) + 1:
            continue
        x = torch.zeros(1, 1, size, 1)
        weight = torch.zeros(1, 1, kernel, 1)
        output = F.conv2d(x, weight, stride=(stride, 1), padding=(padding, 0), dilation=(dilation, 1))
        actual = output.shape[2]
        assert conv_output_size(size, kernel, stride, padding, dilation) == actual


def test_output_size_of_resnet_stem():
    assert conv_output_size(224, 7, stride=2, padding=3) == 112
    assert conv_output_size(32, 3, stride=1, padding=1) == 32


def test_bad_sizes_raise_course_errors():
    with pytest.raises(CourseError, match="kernel spans 5 positions"):
        conv_output_size(3, 5)
    with pytest.raises(CourseError, match="stride"):
        conv_output_size(8, 3, stride=0)
    with pytest.raises(CourseError, match="channels"):
        conv2d_im2col(torch.zeros(1, 3, 5, 5), torch.zeros(2, 4, 3, 3))
    with pytest.raises(CourseError, match=r"\(N, C, H, W\)"):
        conv2d_naive(torch.zeros(3, 5, 5), torch.zeros(2, 3, 3, 3))


@pytest.mark.parametrize(
    "layer, size",
    [
        (nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False), 224),
        (nn.Conv2d(64, 128, 3, stride=2, padding=1), 56),
        (nn.Conv2d(8, 16, (3, 1), stride=(1, 2), padding=(1, 0), groups=4), 10),
    ],
)
def test_conv_cost_counts_parameters_and_multiply_adds(layer, size):
    cost = conv_cost(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        bias=layer.bias is not None,
    )
    output = layer(torch.zeros(1, layer.in_channels, size, size))
    assert cost.output_size == tuple(output.shape[2:])
    assert cost.params == sum(p.numel() for p in layer.parameters())
    # Each output value is one dot product over (C_in / groups) * kH * kW inputs.
    assert cost.macs == output.numel() * layer.weight[0].numel()


def test_resnet18_costs_at_224_pixels():
    model = ResNet18()
    rows = layer_costs(model, (3, 224, 224))
    assert model.training  # left in the mode it came in
    assert not model._forward_hooks and not model.conv1._forward_hooks
    assert sum(row.params for row in rows) == sum(p.numel() for p in model.parameters()) == 11_689_512
    total_macs = sum(row.macs for row in rows)
    # torchvision publishes 1.814 G operations (multiply-adds) for resnet18 at 224 px.
    published = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["_ops"]
    assert round(total_macs / 1e9, 3) == published
    by_name = {row.name: row for row in rows}
    assert by_name["conv1"].output_shape == (64, 112, 112)
    assert by_name["layer4.1.conv2"].output_shape == (512, 7, 7)
    assert by_name["fc"].macs == 512 * 1000 and by_name["fc"].kind == "Linear"
    assert by_name["maxpool"].macs == 0 and by_name["maxpool"].output_shape == (64, 56, 56)
    assert by_name["conv1"].macs == conv_cost(3, 64, 7, 224, stride=2, padding=3, bias=False).macs
    assert by_name["layer2.0.downsample.0"].macs == conv_cost(64, 128, 1, 56, stride=2, bias=False).macs


def test_layer_costs_scale_with_image_area_but_parameters_do_not():
    model = ResNet18(num_classes=3)
    small, large = layer_costs(model, (3, 32, 32)), layer_costs(model, (3, 64, 64))
    assert [r.params for r in small] == [r.params for r in large]
    for a, b in zip(small, large, strict=True):
        if a.kind == "Conv2d":
            assert b.macs == 4 * a.macs, a.name
