"""Small helpers shared by the book's chapters: where results live, what hardware ran a cell, timing.

The chapters import ``course_lib`` for everything the course teaches; this module only
holds the bookkeeping that every chapter repeats.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Iterable, Sequence

import torch
from IPython.display import Markdown

from course_lib import PROJECT_ROOT
from course_lib.runtime import device_name

RESULTS = PROJECT_ROOT / "results"


def hardware() -> str:
    """The machine a cell ran on, for figure captions: CPU model and threads, PyTorch version."""
    return f"{device_name(torch.device('cpu'))}; PyTorch {torch.__version__}; Python {platform.python_version()}"


def fastest_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Wall-clock seconds of the fastest of ``repeats`` calls of ``function()``, after ``warmup`` calls.

    Other work on a shared machine only ever adds time to a call, so the fastest call is the
    best estimate of what the code itself costs.
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def table(rows: Iterable[Sequence], columns: Sequence[str], formats: dict[str, str] | None = None) -> Markdown:
    """A Markdown table for a notebook cell's output; ``formats`` maps a column to a format spec."""
    formats = formats or {}

    def cell(column: str, value: object) -> str:
        spec = formats.get(column)
        return format(value, spec) if spec else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(columns, row, strict=True)) + " |" for row in rows]
    return Markdown("\n".join(lines))
