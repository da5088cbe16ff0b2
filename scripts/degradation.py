"""Train PlainNet18 and ResNet18 from scratch on the product photos, side by side.

The two networks have the same 18 weighted layers and differ only in the skip
connections, so their curves show what the skip connections change (chapter 5 of the
book reads the results). Writes to ``--out`` (default ``results/degradation``):

    histories/<model>.json, .csv   per-epoch records (History)
    curves.png                     accuracy and loss per epoch, train and validation
    settings.json                  command, settings, seed, data, hardware, date
    summary.md                     the final numbers as a table

    python scripts/degradation.py                    # 32 px photos, 6 epochs: about 5 minutes on 2 idle CPU cores
    python scripts/degradation.py --jobs 2           # the two networks at once, one CPU thread each
    python scripts/degradation.py --image-size 64    # the size of the main experiment, four times the work

32 px keeps the run short enough to repeat on a laptop; the comparison is between the two
networks, which see exactly the same photos and batches.
"""

from __future__ import annotations

import argparse
import multiprocessing
import shlex
import sys
import time
from pathlib import Path

import torch

from course_lib import PROJECT_ROOT, plots
from course_lib.data import TASKS, ProductData, load_products
from course_lib.history import History
from course_lib.models import PlainNet18, ResNet18
from course_lib.regimes import param_groups
from course_lib.runtime import provenance, resolve_device, seed_everything, write_record
from course_lib.train import TrainConfig, fit

MODELS = {"PlainNet18": PlainNet18, "ResNet18": ResNet18}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--lr", type=float, default=0.05)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--task", default="super", choices=TASKS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        choices=(1, 2),
        help="2: train the two networks at once, in two processes of one CPU thread each",
    )
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "results" / "degradation")
    return parser.parse_args(argv)


def train(name: str, data: ProductData, args: argparse.Namespace, threads: int | None = None) -> History:
    """One network from random initialisation, every layer trained at ``args.lr``."""
    if threads:
        torch.set_num_threads(threads)
    seed_everything(args.seed)
    model = MODELS[name](num_classes=data.num_classes)
    groups = param_groups(model, "fresh", args.lr)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, device=args.device, seed=args.seed)
    history = fit(model, groups, data, config)
    last = history.records[-1]
    print(
        f"{name}: train accuracy {last.train_accuracy:.1%}, validation {last.val_accuracy:.1%}, "
        f"{history.total_seconds:.0f} s",
        flush=True,
    )
    return history


def summary(histories: dict, record: dict) -> str:
    lines = [
        "# PlainNet18 against ResNet18, trained from scratch",
        "",
        f"`{record['command']}` on {record['device_name']}, {record['date']}.",
        f"{record['photos']['train']} training and {record['photos']['val']} validation photos "
        f"({record['task']} task, {record['image_size']} px), seed {record['seed']}.",
        "",
        "| model | final train loss | final train accuracy | final validation accuracy | best validation "
        "accuracy | training seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, history in histories.items():
        last = history.records[-1]
        lines.append(
            f"| {name} | {last.train_loss:.3f} | {last.train_accuracy:.1%} | {last.val_accuracy:.1%} "
            f"| {history.best_val_accuracy:.1%} | {history.total_seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.time()
    data = load_products(task=args.task, image_size=args.image_size)
    if args.jobs == 2:
        with multiprocessing.get_context("spawn").Pool(2) as pool:
            trained = pool.starmap(train, [(name, data, args, 1) for name in MODELS])
        histories = dict(zip(MODELS, trained, strict=True))
    else:
        histories = {name: train(name, data, args) for name in MODELS}

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "histories").mkdir(exist_ok=True)
    for name, history in histories.items():
        history.to_json(args.out / "histories" / f"{name}.json")
        history.to_csv(args.out / "histories" / f"{name}.csv")
    plots.plot_curves(
        {name: [history] for name, history in histories.items()}, target=None, path=args.out / "curves.png"
    )
    first = next(iter(histories.values()))
    command = "python scripts/degradation.py " + shlex.join(sys.argv[1:] if argv is None else argv)
    record = {
        **provenance(resolve_device(first.device), command.strip()),
        "device_name": first.device_name,  # as training saw it (--jobs 2 trains with one thread each)
        "wall_seconds": round(time.time() - started, 1),
        "task": args.task,
        "image_size": args.image_size,
        "seed": args.seed,
        "lr": args.lr,
        "photos": {name: len(split) for name, split in data.splits().items()},
        "classes": data.classes,
        "training": first.settings,
    }
    write_record(args.out, record)
    (args.out / "summary.md").write_text(summary(histories, record))
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
