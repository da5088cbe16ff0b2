"""The hand-written ResNet18 against torchvision's, and PlainNet18 against ResNet18."""

import copy
import subprocess
import sys

import pytest
import torch
import torchvision
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from course_lib.models import STAGES, BasicBlock, PlainNet18, ResNet18

# Same layers, same weights, same order of operations: outputs agree to float32 rounding.
PARITY_ATOL = 1e-5
PARITY_RTOL = 1e-5


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def torchvision_model():
    """torchvision's resnet18 with BatchNorm statistics and affine parameters away from the defaults."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0, 0.1)
                module.running_mean.normal_(0, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    return model


@pytest.fixture(scope="module")
def plain():
    return PlainNet18()


@pytest.fixture(scope="module")
def ours(torchvision_model):
    model = ResNet18()
    model.load_state_dict(torchvision_model.state_dict(), strict=True)
    return model


def test_state_dict_keys_and_shapes_match_torchvision(ours, torchvision_model):
    theirs = torchvision_model.state_dict()
    mine = ours.state_dict()
    assert list(mine) == list(theirs)
    assert {k: v.shape for k, v in mine.items()} == {k: v.shape for k, v in theirs.items()}


def test_loads_torchvision_weights_strictly(ours, torchvision_model):
    for name, tensor in torchvision_model.state_dict().items():
        assert torch.equal(ours.state_dict()[name], tensor), name


def test_output_matches_torchvision_in_eval_mode(ours, torchvision_model):
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    ours.eval(), torchvision_model.eval()
    with torch.no_grad():
        torch.testing.assert_close(ours(x), torchvision_model(x), atol=PARITY_ATOL, rtol=PARITY_RTOL)


def test_output_and_batchnorm_updates_match_torchvision_in_train_mode(torchvision_model):
    theirs = torchvision.models.resnet18()
    theirs.load_state_dict(torchvision_model.state_dict())
    mine = ResNet18()
    mine.load_state_dict(theirs.state_dict())
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    mine.train(), theirs.train()
    out_mine, out_theirs = mine(x), theirs(x)
    torch.testing.assert_close(out_mine, out_theirs, atol=PARITY_ATOL, rtol=PARITY_RTOL)
    out_mine.square().sum().backward()
    out_theirs.square().sum().backward()
    theirs_params = dict(theirs.named_parameters())
    for name, parameter in mine.named_parameters():
        torch.testing.assert_close(parameter.grad, theirs_params[name].grad, atol=1e-4, rtol=1e-4, msg=name)
    theirs_state = theirs.state_dict()
    for name, tensor in mine.state_dict().items():
        torch.testing.assert_close(tensor, theirs_state[name], atol=PARITY_ATOL, rtol=PARITY_RTOL, msg=name)


class OperatorLog(TorchDispatchMode):
    """Every ATen operator a computation dispatches, with the shapes it returns."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        results = out if isinstance(out, (tuple, list)) else [out]
        self.calls.append((str(func), [tuple(t.shape) for t in results if isinstance(t, torch.Tensor)]))
        return out


def operators(model: nn.Module, train: bool) -> list:
    model.train(train)
    with OperatorLog() as log:
        model(torch.randn(2, 3, 32, 32)).sum().backward()
    return log.calls


@pytest.mark.parametrize("train", [True, False])
def test_runs_exactly_torchvisions_operators(ours, torchvision_model, train):
    """The same kernels on the same shapes, forward and backward, in the same order (in-place
    additions included): the two models cost the same, whatever a noisy timing says."""
    mine, theirs = operators(copy.deepcopy(ours), train), operators(copy.deepcopy(torchvision_model), train)
    assert len(mine) > 200
    assert mine == theirs


def test_parameter_count(ours, torchvision_model):
    assert count_parameters(ours) == 11_689_512
    assert count_parameters(ours) == count_parameters(torchvision_model)
    assert count_parameters(ResNet18(num_classes=3)) == 11_689_512 - 997 * 513


def test_models_module_does_not_import_torchvision():
    code = "import sys, course_lib.models; print(sorted(m for m in sys.modules if m.startswith('torchvision')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def weighted_layers(model: nn.Module) -> list[nn.Module]:
    """The layers He et al. count: every convolution and linear layer but the 1x1 projections."""
    return [
        m for m in model.modules() if isinstance(m, nn.Linear) or (isinstance(m, nn.Conv2d) and m.kernel_size != (1, 1))
    ]


def test_both_networks_have_18_weighted_layers(ours, plain):
    assert len(weighted_layers(ours)) == 18
    assert len(weighted_layers(plain)) == 18
    plain_shapes = [m.weight.shape for m in weighted_layers(plain)]
    assert plain_shapes == [m.weight.shape for m in weighted_layers(ours)]


def test_plainnet_has_no_skip_connections(plain):
    assert not any("downsample" in name for name, _ in plain.named_modules())
    assert all(not block.residual for block in plain.modules() if isinstance(block, BasicBlock))
    # With its convolutions zeroed, a residual block passes relu(x) on; a plain block outputs 0.
    x = torch.randn(2, 8, 6, 6)
    for residual, expected in ((True, torch.relu(x)), (False, torch.zeros_like(x))):
        block = BasicBlock(8, 8, residual=residual).eval()
        with torch.no_grad():
            block.conv1.weight.zero_(), block.conv2.weight.zero_()
            torch.testing.assert_close(block(x), expected)


def test_projection_shortcut_only_where_the_shape_changes(ours):
    projected = sorted(name for name, _ in ours.named_modules() if name.endswith("downsample"))
    assert projected == ["layer2.0.downsample", "layer3.0.downsample", "layer4.0.downsample"]
    assert BasicBlock(64, 64, stride=2).downsample is not None
    assert BasicBlock(64, 128, stride=1).downsample is not None


def test_shapes_through_the_network():
    model = ResNet18(num_classes=5).eval()
    for size in (32, 64):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            assert model.backbone(x).shape == (2, 512, size // 32, size // 32)
            features = model.features(x)
            assert features.shape == (2, 512) and model.num_features == 512
            assert model(x).shape == (2, 5)
            torch.testing.assert_close(model(x), model.fc(features))
    stages = list(model.stages().values())[1:]
    assert [stage[0].conv1.out_channels for stage in stages] == [c for c, _ in STAGES]


def test_replace_head():
    model = ResNet18().double()
    backbone_before = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith("fc.")}
    head = model.replace_head(3)
    assert head is model.fc and head.out_features == 3 and head.in_features == 512
    assert head.weight.dtype == torch.float64
    for name, tensor in model.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(tensor, backbone_before[name])
    assert model(torch.randn(2, 3, 32, 32, dtype=torch.float64)).shape == (2, 3)


def test_initialisation_follows_the_paper():
    torch.manual_seed(0)
    model = ResNet18()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.equal(module.weight, torch.ones_like(module.weight))
            assert torch.equal(module.bias, torch.zeros_like(module.bias))
    # Kaiming normal, fan_out mode: std = sqrt(2 / (out_channels * kH * kW)).
    conv = model.layer4[1].conv2  # 2.4 M samples: the sample std is within 1 % of the true one
    expected = (2 / (512 * 3 * 3)) ** 0.5
    assert abs(conv.weight.std().item() / expected - 1) < 0.01
    assert abs(conv.weight.mean().item()) < 0.01 * expected


def test_frozen_backbone_stays_in_eval_mode_after_train():
    model = ResNet18(num_classes=3)
    model.freeze_backbone()
    model.train()
    assert model.training and model.fc.training
    assert not any(m.training for name, m in model.named_modules() if name and not name.startswith("fc"))
    assert all(not p.requires_grad for n, p in model.named_parameters() if not n.startswith("fc."))
    assert all(p.requires_grad for p in model.fc.parameters())
    model.freeze_backbone(False)
    assert all(m.training for m in model.modules())
    assert all(p.requires_grad for p in model.parameters())
