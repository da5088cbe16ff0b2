"""Running a trained network over a split: loss and accuracy, predictions, cached features.

All of it is one loop (:func:`in_eval_mode`): the photos in order, the network in eval mode
(BatchNorm uses its running statistics, no dropout of anything), no gradients, no
augmentation. Validation during training, testing afterwards, the prediction grids and the
features cached for ``feature_extraction`` all go through it, so they see the photos alike.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.data import Split, batches
from course_lib.runtime import autocast, autocast_dtype, to_device

__all__ = [
    "Evaluation",
    "Predictions",
    "compute_features",
    "confusion_matrix",
    "evaluate",
    "in_eval_mode",
    "predict",
    "score",
]

EVAL_BATCH_SIZE = 256


@dataclass
class Evaluation:
    """Mean cross-entropy and accuracy (a fraction) over a split."""

    loss: float
    accuracy: float


@dataclass
class Predictions:
    """Labels, predicted classes and class probabilities of one split (CPU tensors)."""

    labels: torch.Tensor
    predicted: torch.Tensor
    probabilities: torch.Tensor

    @property
    def accuracy(self) -> float:
        return float((self.predicted == self.labels).float().mean()) if len(self.labels) else 0.0

    def confusion(self, num_classes: int | None = None) -> torch.Tensor:
        num_classes = num_classes or self.probabilities.shape[1]
        return confusion_matrix(self.labels, self.predicted, num_classes)


def confusion_matrix(labels: torch.Tensor, predicted: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Counts ``(num_classes, num_classes)``: rows are true classes, columns predicted ones."""
    index = labels.long().cpu() * num_classes + predicted.long().cpu()
    return torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


@torch.no_grad()
def in_eval_mode(
    model: nn.Module,
    function: Callable[[torch.Tensor], torch.Tensor],
    split: Split,
    width: int,
    *,
    batch_size: int = EVAL_BATCH_SIZE,
    precision: str = "auto",
) -> torch.Tensor:
    """``function`` (the model or one of its parts) on every photo of ``split`` in order, in eval
    mode and without gradients: a float32 tensor of ``width`` columns on the model's device."""
    device = next(model.parameters()).device
    dtype = autocast_dtype(device, precision)
    was_training = model.training
    model.eval()
    outputs = []
    for images, _ in batches(split, batch_size):
        with autocast(device, dtype):
            outputs.append(function(to_device(images, device)).float())
    model.train(was_training)
    return torch.cat(outputs) if outputs else torch.empty(0, width, device=device)


def _logits(model: nn.Module, split: Split, batch_size: int, precision: str) -> torch.Tensor:
    return in_eval_mode(model, model, split, model.fc.out_features, batch_size=batch_size, precision=precision).cpu()


def predict(
    model: nn.Module, split: Split, *, batch_size: int = EVAL_BATCH_SIZE, precision: str = "auto"
) -> Predictions:
    """The model's predictions for every photo of ``split``, in order, on the model's device."""
    logits = _logits(model, split, batch_size, precision)
    return Predictions(labels=split.labels.cpu(), predicted=logits.argmax(1), probabilities=logits.softmax(1))


def evaluate(
    model: nn.Module, split: Split, *, batch_size: int = EVAL_BATCH_SIZE, precision: str = "auto"
) -> Evaluation:
    """Mean cross-entropy and accuracy on ``split`` (eval mode, no augmentation)."""
    return score(_logits(model, split, batch_size, precision), split.labels.cpu())


def score(logits: torch.Tensor, labels: torch.Tensor) -> Evaluation:
    """Mean cross-entropy and accuracy of ``logits`` against ``labels`` (NaN for an empty split)."""
    if len(labels) == 0:
        return Evaluation(float("nan"), float("nan"))
    labels = labels.to(logits.device)
    loss = F.cross_entropy(logits.float(), labels).item()
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    return Evaluation(loss, accuracy)


def compute_features(
    model: nn.Module, split: Split, *, batch_size: int = EVAL_BATCH_SIZE, precision: str = "auto"
) -> torch.Tensor:
    """The backbone's pooled features of every photo of ``split`` (float32, on the model's device)."""
    return in_eval_mode(model, model.features, split, model.fc.in_features, batch_size=batch_size, precision=precision)
