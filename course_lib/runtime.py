"""Where and how a run executes: the device, the precision, the seeds, and the record of it all.

Every command needs the same few facts about the machine (which device, in which precision,
under which seed) and must write them down beside its results, so that a figure in the book
can say on what hardware and with which settings it was made. They live here, once.
"""

from __future__ import annotations

import contextlib
import json
import platform
import random
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from course_lib.errors import CourseError
from course_lib.files import write_atomically

__all__ = [
    "PRECISIONS",
    "autocast",
    "autocast_dtype",
    "device_name",
    "epoch_generator",
    "peak_memory",
    "provenance",
    "read_record",
    "resolve_device",
    "rng_states",
    "seed_everything",
    "set_rng_states",
    "synchronize",
    "to_device",
    "warm_up",
    "write_record",
]

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
RECORD_NAME = "settings.json"  # in every results folder: provenance() and the options of the run


# --------------------------------------------------------------------------- devices


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``auto`` is CUDA when present, then Apple MPS, then the CPU."""
    if str(device) == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(device)
    except RuntimeError:
        raise CourseError(f"Unknown device {device!r}; use auto, cpu, cuda, cuda:N or mps.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise CourseError("Device cuda was asked for but PyTorch sees no CUDA GPU; use --device auto or cpu.")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise CourseError("Device mps was asked for but is not available here; use --device auto or cpu.")
    return device


def device_name(device: torch.device) -> str:
    """A human name for the hardware: the GPU's name, or the CPU model and thread count."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {torch.get_num_threads()} threads"


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def peak_memory(device: torch.device) -> int:
    """CUDA's peak allocation on a GPU; the process's peak resident memory elsewhere (bytes)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux, bytes on macOS
    return int(rss if sys.platform == "darwin" else rss * 1024)


def to_device(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch on ``device``; on CUDA in channels_last, the layout the GPU's convolutions prefer."""
    x = x.to(device, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


# --------------------------------------------------------------------------- precision


def autocast_dtype(device: torch.device, precision: str) -> torch.dtype | None:
    """The autocast dtype, or None for fp32. ``auto``: bf16 on CUDA when supported, else fp16
    on CUDA, fp32 elsewhere (CPUs without native bf16 run it slower than fp32)."""
    if precision not in PRECISIONS:
        raise CourseError(f"Unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}.")
    if precision == "auto":
        if device.type != "cuda":
            return None
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast to ``dtype`` on ``device``; nothing for fp32."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# --------------------------------------------------------------------------- seeds and random state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and PyTorch's generators (call it before building the model,
    so that the random initialisation repeats too)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The generator that orders and augments the batches of one epoch (counted from 1).

    One generator per epoch, derived from the seed, makes an epoch's batches depend on
    the seed and the epoch number only, so a resumed run sees the same batches."""
    return torch.Generator().manual_seed(seed * 100_003 + epoch)


def rng_states() -> dict[str, Any]:
    """Every global generator's state, in a form ``torch.load(weights_only=True)`` reads back."""
    numpy_state = np.random.get_state()
    states = {
        "python": random.getstate(),
        "numpy": [numpy_state[0], torch.from_numpy(numpy_state[1].copy()), *numpy_state[2:]],
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what :func:`rng_states` saved."""
    python = states["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    name, keys, *rest = states["numpy"]
    np.random.set_state((name, keys.numpy(), *rest))
    torch.set_rng_state(states["torch"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


# --------------------------------------------------------------------------- warm-up and provenance


def warm_up(device: torch.device, image_size: int = 32, batch_size: int = 2) -> None:
    """One untimed training step of a throwaway network, so that whatever is timed first does
    not also pay the process's one-off costs: lazy imports (the first optimiser imports
    ``torch._dynamo``, about 4.5 s on a 2-core CPU), kernel selection, memory pools."""
    from course_lib.models import ResNet18  # models imports nothing of runtime; keep start-up light

    model = ResNet18(num_classes=2).to(device)
    images = torch.randn(batch_size, 3, image_size, image_size, device=device)
    labels = torch.zeros(batch_size, dtype=torch.long, device=device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    F.cross_entropy(model(images), labels).backward()
    optimizer.step()


def provenance(device: torch.device, command: str = "") -> dict[str, Any]:
    """How and where a result was made: the command, the date, the software and the hardware.

    Every results folder and checkpoint records this, so that each figure can say what made it.
    """
    return {
        "command": command,
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": str(torch.__version__),
        "python": platform.python_version(),
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
    }


def write_record(folder: Path, record: dict[str, Any]) -> Path:
    """The results folder's settings.json: its ``provenance`` and options, whole or not at all."""
    return write_atomically(folder / RECORD_NAME, lambda file: file.write(json.dumps(record, indent=2) + "\n"))


def read_record(folder: str | Path, made_by: str) -> dict[str, Any]:
    """The settings.json of a results folder; when missing, a CourseError naming ``made_by``, the command
    that writes the folder."""
    try:
        return json.loads((Path(folder) / RECORD_NAME).read_text())
    except FileNotFoundError:
        raise CourseError(f"No results in {folder} ({RECORD_NAME} missing); run `{made_by}` first.") from None
