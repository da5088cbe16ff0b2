"""What each regime trains, and a frozen backbone that stays bit-identical through training."""

import pytest
import torch
from torch import nn

from course_lib import REGIMES, CourseError, regimes, weights
from course_lib.models import STAGE_NAMES, STAGES, ResNet18

NUM_CLASSES = 3


def train_steps(model, param_groups, steps=3):
    """A few SGD steps on random 32 px images, with the model in train mode as a trainer would."""
    generator = torch.Generator().manual_seed(0)
    optimizer = torch.optim.SGD(param_groups, momentum=0.9)  # no weight decay: changes come from gradients
    model.train()
    for _ in range(steps):
        x = torch.randn(8, 3, 32, 32, generator=generator)
        y = torch.randint(0, NUM_CLASSES, (8,), generator=generator)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()


def snapshot(model):
    return {name: tensor.clone() for name, tensor in model.state_dict().items()}


@pytest.mark.parametrize("cut", STAGE_NAMES)
def test_feature_extraction_keeps_every_backbone_tensor_bit_identical(pretrained_checkpoint, cut):
    model, groups = regimes.prepare_model("feature_extraction", NUM_CLASSES, weights=pretrained_checkpoint, cut=cut)
    before = snapshot(model)
    train_steps(model, groups)
    after = model.state_dict()
    backbone = [name for name in before if not name.startswith("fc.")]
    assert any("running_mean" in name for name in backbone)
    for name in backbone:  # weights and buffers: running statistics and num_batches_tracked
        assert torch.equal(after[name], before[name]), name
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    assert not torch.equal(after["fc.bias"], before["fc.bias"])


def test_finetune_changes_every_layer(pretrained_checkpoint):
    model, groups = regimes.prepare_model("finetune", NUM_CLASSES, weights=pretrained_checkpoint)
    before = snapshot(model)
    train_steps(model, groups)
    after = model.state_dict()
    for name, tensor in before.items():
        assert not torch.equal(after[name], tensor), name


def test_fresh_changes_every_layer():
    model, groups = regimes.prepare_model("fresh", NUM_CLASSES)
    before = snapshot(model)
    train_steps(model, groups, steps=1)
    after = model.state_dict()
    for name, tensor in before.items():
        assert not torch.equal(after[name], tensor), name


def test_trainable_counts_per_regime(pretrained_checkpoint):
    whole = sum(p.numel() for p in ResNet18(num_classes=NUM_CLASSES).parameters())
    head = 512 * NUM_CLASSES + NUM_CLASSES
    expected = {"fresh": whole, "finetune": whole, "feature_extraction": head}
    assert head == 1_539 and whole == 11_178_051
    for regime in REGIMES:
        model, groups = regimes.prepare_model(
            regime, NUM_CLASSES, weights=None if regime == "fresh" else pretrained_checkpoint
        )
        assert regimes.count_trainable(model) == expected[regime], regime
        grouped = [p for group in groups for p in group["params"]]
        assert len({id(p) for p in grouped}) == len(grouped)  # no parameter twice
        assert {id(p) for p in grouped} == {id(p) for p in regimes.trainable_parameters(model)}
        assert regimes.backbone_is_frozen(model) == (regime == "feature_extraction")


def test_learning_rates_per_group(pretrained_checkpoint):
    lr = 0.05
    _, fresh = regimes.prepare_model("fresh", NUM_CLASSES, lr=lr)
    _, finetune = regimes.prepare_model("finetune", NUM_CLASSES, weights=pretrained_checkpoint, lr=lr)
    _, frozen = regimes.prepare_model("feature_extraction", NUM_CLASSES, weights=pretrained_checkpoint, lr=lr)
    assert [(g["name"], g["lr"]) for g in fresh] == [("backbone", lr), ("head", lr)]
    assert [(g["name"], g["lr"]) for g in finetune] == [("backbone", lr * regimes.BACKBONE_LR_FACTOR), ("head", lr)]
    assert regimes.BACKBONE_LR_FACTOR < 1
    assert [(g["name"], g["lr"]) for g in frozen] == [("head", lr)]


def test_pretrained_regimes_load_the_backbone_and_a_new_head(pretrained_checkpoint):
    pretrained = weights.load_checkpoint(pretrained_checkpoint).state_dict
    model, _ = regimes.prepare_model("finetune", NUM_CLASSES, weights=str(pretrained_checkpoint))
    assert model.fc.out_features == NUM_CLASSES
    assert "dropped its 10-class head" in model.weights_note
    assert torch.equal(model.layer2[0].bn1.running_var, pretrained["layer2.0.bn1.running_var"])
    assert model.training


def test_weights_none_means_the_default_checkpoint(pretrained_checkpoint, monkeypatch):
    monkeypatch.setattr(weights, "DEFAULT_CHECKPOINT", pretrained_checkpoint)
    model, _ = regimes.prepare_model("feature_extraction", NUM_CLASSES)
    assert str(pretrained_checkpoint) in model.weights_note


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(regime="transfer", num_classes=3), "Unknown regime 'transfer'"),
        (dict(regime="fresh", num_classes=0), "num_classes must be a positive integer"),
        (dict(regime="fresh", num_classes=3, weights="imagenet"), "fresh regime starts from random"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(CourseError, match=message):
        regimes.prepare_model(**kwargs)


def test_requires_grad_alone_would_let_batchnorm_statistics_drift():
    """The trap the eval-mode backbone avoids: in train mode BatchNorm updates its buffers anyway."""
    norm = nn.BatchNorm2d(4).requires_grad_(False).train()
    norm(torch.randn(8, 4, 5, 5) + 3.0)
    assert not torch.equal(norm.running_mean, torch.zeros(4))
    model = ResNet18(num_classes=NUM_CLASSES)
    model.freeze_backbone()
    model.train()
    running_mean = model.bn1.running_mean.clone()
    with torch.no_grad():
        model(torch.randn(2, 3, 32, 32) + 3.0)
    assert torch.equal(model.bn1.running_mean, running_mean)


@pytest.mark.parametrize("cut", STAGE_NAMES)
def test_cut_feeds_the_head_with_that_stage(pretrained_checkpoint, cut):
    model, groups = regimes.prepare_model("feature_extraction", NUM_CLASSES, weights=pretrained_checkpoint, cut=cut)
    channels = STAGES[STAGE_NAMES.index(cut)][0]
    x = torch.randn(2, 3, 64, 64)
    model.eval()
    features = model.features(x)
    assert features.shape == (2, channels) and model.fc.in_features == channels
    stem = torch.nn.Sequential(model.conv1, model.bn1, model.relu, model.maxpool)
    stages = [getattr(model, name) for name in STAGE_NAMES[: STAGE_NAMES.index(cut) + 1]]
    expected = torch.flatten(torch.nn.Sequential(stem, *stages, model.avgpool)(x), 1)
    torch.testing.assert_close(features, expected)
    assert regimes.count_trainable(model) == channels * NUM_CLASSES + NUM_CLASSES
    assert set(model.state_dict()) == set(ResNet18(num_classes=NUM_CLASSES).state_dict())  # torchvision's names


def test_only_feature_extraction_cuts(pretrained_checkpoint):
    with pytest.raises(CourseError, match="Only feature_extraction can cut"):
        regimes.prepare_model("finetune", NUM_CLASSES, weights=pretrained_checkpoint, cut="layer2")
    with pytest.raises(CourseError, match="Unknown stage"):
        regimes.prepare_model("feature_extraction", NUM_CLASSES, weights=pretrained_checkpoint, cut="layer5")
