"""Feature extraction with cached features against the plain frozen-backbone loop.

Under feature_extraction only the head trains, so ``fit`` computes each photo's 512
backbone features once and trains the head on them (``feature_cache`` None, the
default). Both sides here train the head by SGD in batches (``head="sgd"``), so that only
the caching differs; the default head on cached features, L-BFGS, is cheaper still. The
plain loop (``feature_cache=False``) sends every photo through the whole frozen network in
every epoch, as a tutorial would. Both start from the same
weights and train for the same number of epochs; the table gives the wall-clock time
of the whole ``fit`` call (validation after every epoch included) and the speed-up.
The two runs alternate order over repeats so that a busy neighbour on a shared machine
hits both alike. The cached path trains on the photos as stored (no augmentation: that
would need the backbone again), the plain one augments, so their accuracies differ a little.

    python bench/feature_cache.py                 # 32 px, 15 epochs, ~1 min on 2 idle cores
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from course_lib.data import ProductData, load_products
from course_lib.regimes import prepare_model
from course_lib.runtime import device_name, resolve_device, warm_up
from course_lib.train import TrainConfig, fit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import starting_weights  # noqa: E402  (bench/common.py)


def timed_fit(
    data: ProductData, weights: dict, epochs: int, batch_size: int, lr: float, cache: bool
) -> tuple[float, float]:
    """Wall seconds of fit and the last validation accuracy."""
    model, groups = prepare_model("feature_extraction", data.num_classes, weights=weights, lr=lr)
    start = time.perf_counter()
    config = TrainConfig(epochs=epochs, batch_size=batch_size, device="cpu", feature_cache=cache, head="sgd")
    history = fit(model, groups, data, config, progress=False)
    return time.perf_counter() - start, history.records[-1].val_accuracy


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--image-size", type=int, default=32, help="pixels (default: the experiment's 32)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each path; the median is reported")
    parser.add_argument(
        "--limit", type=int, help="use at most N photos of each split, spread over the classes (a busy machine)"
    )
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    warm_up(torch.device("cpu"))
    data = load_products(image_size=args.image_size, progress=False)
    data = data.subset(args.limit) if args.limit else data
    weights, weights_note = starting_weights(args.seed)
    seconds = {True: [], False: []}
    accuracy = {}
    for repeat in range(args.repeats):
        for cache in (True, False) if repeat % 2 == 0 else (False, True):
            wall, accuracy[cache] = timed_fit(data, weights, args.epochs, args.batch_size, args.lr, cache)
            seconds[cache].append(wall)
    cached, plain = statistics.median(seconds[True]), statistics.median(seconds[False])
    print(
        f"# Cached features vs plain frozen-backbone loop on {device_name(resolve_device('cpu'))}, "
        f"torch {torch.__version__}: {len(data.train)} train + {len(data.val)} val photos, {args.image_size} px, "
        f"batch {args.batch_size}, {args.epochs} epochs, median of {args.repeats}; {weights_note}\n"
    )
    print("| feature_extraction path | wall s | s/epoch | last val acc |")
    print("|---|---:|---:|---:|")
    print(f"| plain (backbone every epoch) | {plain:.1f} | {plain / args.epochs:.2f} | {accuracy[False]:.3f} |")
    print(f"| cached features | {cached:.1f} | {cached / args.epochs:.2f} | {accuracy[True]:.3f} |")
    print(f"speed-up: {plain / cached:.1f}x over {args.epochs} epochs (goal >= 10x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
