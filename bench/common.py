"""What the benchmarks share: the starting weights, a smaller dataset for busy machines."""

from __future__ import annotations

from dataclasses import replace

import torch

from course_lib.data import ProductData, Split
from course_lib.models import ResNet18
from course_lib.weights import DEFAULT_CHECKPOINT, load_checkpoint


def warm_up() -> None:
    """Pay PyTorch's one-off lazy imports before anything is timed: the first optimizer a
    process builds imports ``torch._dynamo`` (about 4.5 s on a 2-core CPU), which would
    otherwise be charged to whichever side of a comparison runs first."""
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)


def starting_weights(seed: int = 0) -> tuple[dict, str]:
    """The shipped checkpoint when present, otherwise seeded random weights, and a note saying which.

    Timings do not depend on the values of the weights, only accuracies do.
    """
    if DEFAULT_CHECKPOINT.is_file():
        return load_checkpoint(DEFAULT_CHECKPOINT).state_dict, f"weights: shipped checkpoint {DEFAULT_CHECKPOINT.name}"
    torch.manual_seed(seed)
    return ResNet18(num_classes=10).state_dict(), "weights: random (no shipped checkpoint yet; timings only)"


def limit_photos(data: ProductData, limit: int | None) -> ProductData:
    """The first ``limit`` photos of the train and val splits (quick runs on a busy machine)."""
    if not limit:
        return data

    def cut(split: Split) -> Split:
        return replace(split, images=split.images[:limit], labels=split.labels[:limit], paths=split.paths[:limit])

    return replace(data, train=cut(data.train), val=cut(data.val))
