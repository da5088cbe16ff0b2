"""What the benchmarks share: the starting weights."""

from __future__ import annotations

import torch

from course_lib.models import ResNet18
from course_lib.weights import DEFAULT_CHECKPOINT, load_checkpoint


def starting_weights(seed: int = 0) -> tuple[dict, str]:
    """The shipped checkpoint when present, otherwise seeded random weights, and a note saying which.

    Timings do not depend on the values of the weights, only accuracies do.
    """
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT).state_dict, f"weights: shipped checkpoint {DEFAULT_CHECKPOINT.name}"
    torch.manual_seed(seed)
    return ResNet18(num_classes=10).state_dict(), "weights: random (no shipped checkpoint yet; timings only)"
