"""Our hand-written ResNet-18 against torchvision's resnet18: images per second.

Both models hold the same weights and see the same input batch. For every variant and
mode (train: forward, backward and an SGD step; inference: forward under
``torch.inference_mode``) the two models are timed in alternation, ours first in even
repeats and torchvision first in odd ones, so that a busy neighbour on a shared machine
slows both alike. The table reports the median over repeats and the ratio
ours / torchvision (goal: >= 0.98).

Variants: ``fp32`` (NCHW), ``channels_last`` (fp32, NHWC), ``bf16`` (channels_last with
bf16 autocast) and ``compile`` (torch.compile of the channels_last model; with bf16
autocast on CUDA). On CPUs without AVX512_BF16/AMX, bf16 is emulated and slower than fp32.

    python bench/resnet_throughput.py                   # CPU: 64 px, batch 32, ~1-2 min
    python bench/resnet_throughput.py --device cuda     # GPU: 224 px, batch 256, data on the GPU
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torchvision
from torch import nn

from course_lib.models import ResNet18
from course_lib.runtime import device_name, synchronize

ALL_VARIANTS = ("fp32", "channels_last", "bf16", "compile")
DEFAULTS = {  # device type -> image size, batch size, variants
    "cpu": (64, 32, ("fp32", "channels_last", "bf16")),
    "cuda": (224, 256, ALL_VARIANTS),
}


def cpu_bf16_support() -> tuple[bool, str]:
    """Whether bf16 autocast runs on this CPU, and whether the hardware does bf16 natively.

    oneDNN runs bf16 convolutions on any AVX-512 CPU; only CPUs with AVX512_BF16 or AMX
    do the arithmetic in bf16 natively, the others convert and are often slower than fp32.
    """
    if not torch.backends.mkldnn.is_available() or not torch.ops.mkldnn._is_mkldnn_bf16_supported():
        return False, "no oneDNN bf16 support"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        flags = ""
    native = "avx512_bf16" in flags or "amx_bf16" in flags
    return True, "native (AVX512_BF16/AMX)" if native else "emulated (AVX-512 without BF16)"


def twin_models(num_classes: int, seed: int) -> tuple[nn.Module, nn.Module]:
    """Our ResNet18 and torchvision's resnet18 with identical weights."""
    torch.manual_seed(seed)
    ours = ResNet18(num_classes=num_classes)
    theirs = torchvision.models.resnet18(num_classes=num_classes)
    theirs.load_state_dict(ours.state_dict())
    return ours, theirs


class Runner:
    """One model prepared for one variant and mode: ``step()`` runs one batch."""

    def __init__(
        self,
        model: nn.Module,
        variant: str,
        mode: str,
        device: torch.device,
        images: torch.Tensor,
        labels: torch.Tensor,
    ):
        self.device = device
        self.mode = mode
        self.memory_format = (
            torch.channels_last if variant in ("channels_last", "bf16", "compile") else torch.contiguous_format
        )
        # bf16 and compile are measured on top of channels_last, the layout they are used with.
        self.autocast = variant == "bf16" or (variant == "compile" and device.type == "cuda")
        self.model = copy.deepcopy(model).to(device, memory_format=self.memory_format)
        self.model.train(mode == "train")
        self.images = images.to(device).contiguous(memory_format=self.memory_format)
        self.labels = labels.to(device)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=1e-3, momentum=0.9)
        self.forward = torch.compile(self.model) if variant == "compile" else self.model

    def step(self) -> None:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast):
            if self.mode == "train":
                loss = nn.functional.cross_entropy(self.forward(self.images), self.labels)
            else:
                with torch.inference_mode():
                    self.forward(self.images)
                return
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()

    def seconds(self, steps: int) -> float:
        synchronize(self.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        synchronize(self.device)
        return time.perf_counter() - start


def measure(runners: dict[str, Runner], batch_size: int, warmup: int, steps: int, repeats: int) -> dict[str, float]:
    """Median images/s of each runner, timed in alternating order (ABBA...)."""
    for runner in runners.values():
        for _ in range(warmup):
            runner.step()
    rates = {name: [] for name in runners}
    names = list(runners)
    for repeat in range(repeats):
        for name in names if repeat % 2 == 0 else reversed(names):
            rates[name].append(batch_size * steps / runners[name].seconds(steps))
    return {name: statistics.median(values) for name, values in rates.items()}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--image-size", type=int, help="pixels (default: 64 on CPU, 224 on CUDA)")
    parser.add_argument("--batch-size", type=int, help="images per batch (default: 32 on CPU, 256 on CUDA)")
    parser.add_argument(
        "--variants", nargs="+", choices=ALL_VARIANTS, help="default: all on CUDA, all but compile on CPU"
    )
    parser.add_argument("--modes", nargs="+", choices=("train", "inference"), default=("train", "inference"))
    parser.add_argument("--steps", type=int, help="batches per timed repeat (default: 3 on CPU, 20 on CUDA)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats per model; the median is reported")
    parser.add_argument("--warmup", type=int, help="untimed batches first (default: 1 on CPU, 10 on CUDA)")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda asked for, but torch.cuda.is_available() is False.", file=sys.stderr)
        return 2
    if device.type not in DEFAULTS:
        print(f"error: unsupported device {args.device!r}; use cpu or cuda.", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    size, batch_size, variants = DEFAULTS[device.type]
    size = args.image_size or size
    batch_size = args.batch_size or batch_size
    variants = args.variants or variants
    gpu = device.type == "cuda"
    steps = args.steps or (20 if gpu else 3)
    warmup = args.warmup if args.warmup is not None else (10 if gpu else 1)
    if gpu:
        torch.backends.cudnn.benchmark = True

    bf16_note = "CUDA autocast"
    if not gpu:
        bf16_ok, bf16_note = cpu_bf16_support()
        if "bf16" in variants and not bf16_ok:
            print(f"bf16 skipped: {bf16_note}")
            variants = [v for v in variants if v != "bf16"]

    generator = torch.Generator().manual_seed(args.seed)
    images = torch.randn(batch_size, 3, size, size, generator=generator)
    labels = torch.randint(0, 1000, (batch_size,), generator=generator)
    ours, theirs = twin_models(1000, args.seed)

    header = {
        "device": device_name(device),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "threads": torch.get_num_threads(),
        "image_size": size,
        "batch_size": batch_size,
        "steps": steps,
        "repeats": args.repeats,
        "bf16": bf16_note,
        "command": " ".join([Path(sys.argv[0]).name, *(argv if argv is not None else sys.argv[1:])]),
    }
    print(
        f"# ResNet-18 throughput on {header['device']} (torch {torch.__version__}, "
        f"{header['threads']} threads), {size} px, batch {batch_size}, "
        f"median of {args.repeats} x {steps} batches; bf16: {bf16_note}\n"
    )
    print(f"| {'variant':<13} | {'mode':<9} | {'ours img/s':>10} | {'torchvision img/s':>17} | {'ratio':>5} |")
    print(f"|{'-' * 15}|{'-' * 11}|{'-' * 12}:|{'-' * 19}:|{'-' * 6}:|")
    rows = []
    for variant in variants:
        for mode in args.modes:
            runners = {
                "ours": Runner(ours, variant, mode, device, images, labels),
                "torchvision": Runner(theirs, variant, mode, device, images, labels),
            }
            rate = measure(runners, batch_size, warmup, steps, args.repeats)
            ratio = rate["ours"] / rate["torchvision"]
            rows.append(
                {
                    "variant": variant,
                    "mode": mode,
                    "ours": rate["ours"],
                    "torchvision": rate["torchvision"],
                    "ratio": ratio,
                }
            )
            print(
                f"| {variant:<13} | {mode:<9} | {rate['ours']:>10.1f} | {rate['torchvision']:>17.1f} | {ratio:>5.3f} |",
                flush=True,
            )
            del runners
    worst = min(row["ratio"] for row in rows)
    print(f"worst ratio ours/torchvision: {worst:.3f} (goal >= 0.98)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({**header, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
