"""The hand-written networks of the course: BasicBlock, ResNet18 and PlainNet18.

Written from ``torch.nn`` layers only, in the layout of He et al. 2016 ("Deep Residual
Learning for Image Recognition", CVPR), with parameter names chosen so that a
state_dict moves unchanged between this ResNet18 and torchvision's ``resnet18``.

ResNet-18 has 18 weighted layers: the 7x7 stem convolution, 16 3x3 convolutions in
eight basic blocks (two per block), and the fully connected head. The three 1x1
projection shortcuts are not counted among the 18, as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from course_lib.errors import CourseError

__all__ = ["STAGES", "STAGE_NAMES", "BasicBlock", "PlainNet18", "ResNet18"]

# (output channels, stride of the first block) for the four stages of ResNet-18.
STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))
STAGE_NAMES = ("layer1", "layer2", "layer3", "layer4")


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (BatchNorm follows and has its own)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions and a skip connection: y = relu(F(x) + shortcut(x)).

    The shortcut is the identity when the shape is kept, and a projection
    (1x1 convolution with the block's stride, then BatchNorm) when the block
    changes the number of channels or the spatial size. With ``residual=False`` the
    skip connection is left out and the block is two plain convolutions, as in the
    "plain" networks the paper compares against.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1, residual: bool = True):
        super().__init__()
        self.residual = residual
        self.conv1 = conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(out_channels, out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if residual and (stride != 1 or in_channels != out_channels):
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.residual:
            # In place, as torchvision does: no new tensor per block, and autograd allows it
            # because neither the addition nor bn2 needs bn2's output for its gradient.
            out += x if self.downsample is None else self.downsample(x)
        return self.relu(out)


class ResNet18(nn.Module):
    """ResNet-18 for images of any size of at least 32 px (global average pooling at the end).

    Initialisation follows the paper and torchvision: convolutions Kaiming normal
    (fan_out, ReLU gain), BatchNorm weight 1 and bias 0, the linear head PyTorch's
    default uniform initialisation.
    """

    residual = True
    backbone_frozen = False
    cut = "layer4"  # the stage whose pooled output feeds the head (see cut_after)

    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        in_channels = 64
        for index, (channels, stride) in enumerate(STAGES, start=1):
            blocks = nn.Sequential(
                BasicBlock(in_channels, channels, stride, residual=self.residual),
                BasicBlock(channels, channels, 1, residual=self.residual),
            )
            setattr(self, f"layer{index}", blocks)
            in_channels = channels
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(512, num_classes)
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    @property
    def num_features(self) -> int:
        return self.fc.in_features

    def stages(self) -> dict[str, nn.Module]:
        """The named stages in order, for feature maps and per-stage tables."""
        return {
            "stem": nn.Sequential(self.conv1, self.bn1, self.relu, self.maxpool),
            "layer1": self.layer1,
            "layer2": self.layer2,
            "layer3": self.layer3,
            "layer4": self.layer4,
        }

    def backbone(self, x: torch.Tensor) -> torch.Tensor:
        """Everything before pooling: the last feature map, (N, 512, H/32, W/32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The pooled features that the head classifies: the output of the stages up to ``cut``
        (layer4 unless :meth:`cut_after` moved it), averaged over the image (512 numbers after layer4)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for name in STAGE_NAMES[: STAGE_NAMES.index(self.cut) + 1]:
            x = getattr(self, name)(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))

    def freeze_backbone(self, frozen: bool = True) -> None:
        """Freeze (or unfreeze) everything but the head ``fc``.

        Frozen means no gradients (``requires_grad=False``) and BatchNorm running
        statistics that stay as loaded: ``requires_grad`` alone does not stop
        BatchNorm from updating its buffers in train mode, so while frozen the
        backbone is kept in eval mode, also after ``model.train()``.
        """
        self.backbone_frozen = frozen
        for name, parameter in self.named_parameters():
            if not name.startswith("fc."):
                parameter.requires_grad_(not frozen)
        self.train(self.training)

    def train(self, mode: bool = True) -> ResNet18:
        """Set train/eval mode; a frozen backbone stays in eval mode (see freeze_backbone)."""
        super().train(mode)
        if self.backbone_frozen:
            for child in self.children():
                if child is not self.fc:
                    child.eval()
        return self

    def cut_after(self, stage: str) -> nn.Linear:
        """Feed the head with the pooled output of ``stage`` (layer1 ... layer4) instead of layer4,
        for a new head of as many inputs as that stage has channels; return it.

        Features of an earlier stage are more generic and often transfer better to another task
        (Yosinski et al. 2014). The later stages stay in the model, unused, so that the
        state_dict keeps torchvision's names.
        """
        if stage not in STAGE_NAMES:
            raise CourseError(f"Unknown stage {stage!r} to cut after; choose one of {', '.join(STAGE_NAMES)}.")
        self.cut = stage
        channels = STAGES[STAGE_NAMES.index(stage)][0]
        self.fc = nn.Linear(channels, self.fc.out_features).to(device=self.fc.weight.device, dtype=self.fc.weight.dtype)
        return self.fc

    def replace_head(self, num_classes: int) -> nn.Linear:
        """Put a new, freshly initialised head for ``num_classes`` classes; return it."""
        self.fc = nn.Linear(self.num_features, num_classes).to(device=self.fc.weight.device, dtype=self.fc.weight.dtype)
        return self.fc


class PlainNet18(ResNet18):
    """The same 18 weighted layers as ResNet18 without any skip connection.

    He et al. 2016 (section 4.1) use such plain networks to show the degradation
    problem: past some depth, a plain network trains to a higher training error
    than a shallower one, while the residual network of the same depth does not.
    """

    residual = False
