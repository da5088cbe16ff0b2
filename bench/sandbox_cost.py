"""What the grading sandbox costs per submission: the reference answers of an assignment run
through nbclient (as nbgrader runs them) with and without the sandbox, in ABBA order over
the runs, so that a busy neighbour slows both alike.

    python bench/sandbox_cost.py [ASSIGNMENT] [--runs 6]

Prints the median seconds of each, the median of the paired differences and their ratio.
"""

import argparse
import copy
import json
import statistics
import sys
import time

import nbformat
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient

from course_lib import PROJECT_ROOT
from course_lib.grading.sandbox import SandboxedKernelManager


def reference_notebook(assignment: str) -> nbformat.NotebookNode:
    path = sorted((PROJECT_ROOT / "solutions" / assignment).glob("*.ipynb"))[0]
    return nbformat.reads(path.read_text(), as_version=4)


def run(nb: nbformat.NotebookNode, manager: type) -> float:
    started = time.perf_counter()
    NotebookClient(
        copy.deepcopy(nb), kernel_name="python3", timeout=300, allow_errors=True, kernel_manager_class=manager
    ).execute()
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="?", default="01-convolution")
    parser.add_argument("--runs", type=int, default=6)
    args = parser.parse_args()
    nb = reference_notebook(args.assignment)
    plain, sandboxed = [], []
    for index in range(args.runs):
        if index % 2 == 0:
            plain.append(run(nb, AsyncKernelManager))
            sandboxed.append(run(nb, SandboxedKernelManager))
        else:
            sandboxed.append(run(nb, SandboxedKernelManager))
            plain.append(run(nb, AsyncKernelManager))
    result = {
        "assignment": args.assignment,
        "runs": args.runs,
        "plain_s": round(statistics.median(plain), 2),
        "sandboxed_s": round(statistics.median(sandboxed), 2),
        "extra_s": round(statistics.median(s - p for s, p in zip(sandboxed, plain, strict=True)), 2),
        "ratio": round(statistics.median(sandboxed) / statistics.median(plain), 3),
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
