"""The three training regimes of the course: fresh, finetune, feature_extraction.

==================  ======================  ==========================================
regime              starting weights        what trains
==================  ======================  ==========================================
fresh               random (Kaiming)        everything, at ``lr``
finetune            pretrained backbone     everything: the new head at ``lr``, the
                                            backbone at ``lr * BACKBONE_LR_FACTOR``
feature_extraction  pretrained backbone     only the new head; the backbone is frozen,
                                            BatchNorm running statistics included
==================  ======================  ==========================================

Under feature_extraction the backbone is a fixed function of the image, so a trainer
may compute its features once and train the head on them
(``backbone_is_frozen(model)`` tells it when that is allowed).
"""

from __future__ import annotations

import logging

from torch import nn

from course_lib import REGIMES
from course_lib.errors import CourseError
from course_lib.models import ResNet18
from course_lib.weights import Weights, load_into

__all__ = [
    "BACKBONE_LR_FACTOR",
    "backbone_is_frozen",
    "count_trainable",
    "param_groups",
    "prepare_model",
    "trainable_parameters",
]

# Pretrained features need only small corrections, the new head must be learnt from
# scratch: finetune moves the backbone ten times more slowly than the head.
BACKBONE_LR_FACTOR = 0.1

log = logging.getLogger(__name__)


def prepare_model(
    regime: str, num_classes: int, weights: Weights = None, lr: float = 0.01, cut: str = "layer4"
) -> tuple[ResNet18, list[dict]]:
    """Build a ResNet18 for ``num_classes`` classes, ready to train under ``regime``.

    ``weights`` (finetune and feature_extraction only) is None for the shipped
    checkpoint, ``"imagenet"``, a checkpoint path, a state_dict or a Checkpoint.
    A pretrained head of another size is dropped and a fresh head put in its place;
    ``model.weights_note`` says what was loaded. ``cut`` (feature_extraction only) is the
    stage whose pooled output feeds the head (``ResNet18.cut_after``). Returns the model in
    train mode and its parameter groups for ``torch.optim`` (see ``param_groups``).
    """
    if regime not in REGIMES:
        raise CourseError(f"Unknown regime {regime!r}; choose one of {', '.join(REGIMES)}.")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise CourseError(f"num_classes must be a positive integer, not {num_classes!r}.")
    if regime == "fresh" and weights is not None:
        raise CourseError(
            "The fresh regime starts from random weights; leave weights=None "
            "or choose finetune / feature_extraction to start from pretrained weights."
        )

    if cut != "layer4" and regime != "feature_extraction":
        raise CourseError(f"Only feature_extraction can cut the network after {cut}; {regime} trains all of it.")

    model = ResNet18(num_classes=num_classes)
    model.weights_note = "Random initialisation."
    if regime != "fresh":
        model.weights_note = load_into(model, weights)
    if regime == "feature_extraction":
        if cut != "layer4":
            model.cut_after(cut)
            model.weights_note += f" The head reads the pooled output of {cut}."
        model.freeze_backbone()
    model.train()
    log.info("%s: %s", regime, model.weights_note)
    return model, param_groups(model, regime, lr)


def param_groups(model: ResNet18, regime: str, lr: float) -> list[dict]:
    """Optimizer parameter groups: ``{"name": "backbone" | "head", "params": [...], "lr": ...}``.

    Frozen parameters are left out, so feature_extraction has the head group only.
    """
    backbone_lr = lr * BACKBONE_LR_FACTOR if regime == "finetune" else lr
    head = list(model.fc.parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if id(p) not in head_ids and p.requires_grad]
    groups = [{"name": "backbone", "params": backbone, "lr": backbone_lr}] if backbone else []
    groups.append({"name": "head", "params": head, "lr": lr})
    return groups


def trainable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters that receive gradients."""
    return [p for p in model.parameters() if p.requires_grad]


def count_trainable(model: nn.Module) -> int:
    """How many numbers training changes (3-class feature_extraction: 512 * 3 + 3 = 1,539)."""
    return sum(p.numel() for p in trainable_parameters(model))


def backbone_is_frozen(model: nn.Module) -> bool:
    """True when only the head trains, so the backbone's features may be computed once."""
    return bool(getattr(model, "backbone_frozen", False))
