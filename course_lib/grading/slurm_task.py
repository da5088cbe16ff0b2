"""One Slurm array task: grade one student of a batch on this node.

``python -m course_lib.grading.slurm_task BATCH [INDEX]`` (INDEX defaults to
``SLURM_ARRAY_TASK_ID``) is what :mod:`course_lib.grading.slurm` submits. The task reads the
batch's manifest, builds a course directory on this node's local disk (the assignment's
source and release copied from the shared course, the batch's snapshot of the gradebook,
the generated ``nbgrader_config.py``), and grades the student there with
:func:`~course_lib.grading.pipeline.grade_student`, the kernel in this node's sandbox: the
same steps as the local backend. Then it copies back into ``BATCH/results/<student>/`` what
the course directory must receive: the submitted and autograded notebooks, the log, its
gradebook, and last ``report.json``, whose presence tells the submitting process that the
result is complete.

The shared gradebook is never opened for writing here (see :mod:`course_lib.grading.slurm`).
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from course_lib.errors import CourseError
from course_lib.files import write_atomically
from course_lib.grading.results import Report

__all__ = ["grade_task", "main"]


def main(argv: list[str] | None = None) -> int:
    """Grade the batch's student number INDEX and leave the result beside the batch; always 0 once it has one.

    A Slurm cancellation (SIGTERM) exits through Python's clean-up, so the node's
    temporary course directory and the student's nbgrader process go with it.
    """
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m course_lib.grading.slurm_task BATCH [INDEX]", file=sys.stderr)
        return 2
    batch = Path(args[0])
    index = int(args[1] if len(args) > 1 else os.environ.get("SLURM_ARRAY_TASK_ID", "-1"))
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(128 + number))
    manifest = json.loads((batch / "manifest.json").read_text())
    if not 0 <= index < len(manifest["students"]):
        print(f"no student number {index} in {batch}/manifest.json", file=sys.stderr)
        return 2
    entry = manifest["students"][index]
    result = batch / "results" / entry["student"]
    print(f"grading {entry['student']} ({manifest['assignment']}) on {socket.gethostname()}", flush=True)
    start, graded = time.perf_counter(), False
    try:
        report = grade_task(batch, manifest, entry, result)
        graded = True
    except (CourseError, OSError, ValueError, KeyError) as error:
        # The submitting process must learn why, in the student's row, rather than from a missing result.
        report = Report(entry["student"], status="failed", problems=[f"grading on {socket.gethostname()}: {error}"])
        report.seconds = time.perf_counter() - start
    record = {
        "fingerprint": entry["fingerprint"],
        "graded": graded,
        "node": socket.gethostname(),
        "task": f"{os.environ.get('SLURM_ARRAY_JOB_ID', '?')}_{index}",
        "report": asdict(report),
    }
    write_atomically(result / "report.json", lambda handle: json.dump(record, handle, indent=1))
    print(f"{entry['student']}: {report.status} in {report.seconds:.1f} s", flush=True)
    return 0


def grade_task(batch: Path, manifest: dict[str, Any], entry: dict[str, Any], result: Path) -> Report:
    """Grade one student in a course directory on this node's disk and copy the outcome to ``result``."""
    from course_lib.grading.assignment import graded_cells
    from course_lib.grading.course import Course, choose_kernel_manager, nbgrader_config, put_scripts_on_path
    from course_lib.grading.pipeline import grade_student

    put_scripts_on_path()
    kernel_manager, warning = choose_kernel_manager(manifest["sandbox"])  # this node's sandbox, checked here
    shared, assignment, student = Path(manifest["course"]), manifest["assignment"], entry["student"]
    shutil.rmtree(result, ignore_errors=True)  # a task run again (requeued) starts afresh
    with tempfile.TemporaryDirectory(prefix="course-grade-task-") as scratch:
        root = Path(scratch).resolve()
        for kind in ("source", "release"):
            shutil.copytree(shared / kind / assignment, root / kind / assignment)
        shutil.copyfile(batch / "gradebook.db", root / "gradebook.db")
        (root / "nbgrader_config.py").write_text(nbgrader_config(root, kernel_manager, manifest["cell_timeout"]))
        source = root / "source" / assignment
        course = Course(root, assignment, source, graded_cells(source))
        submission = pickle.loads((batch / entry["submission"]).read_bytes())
        report = grade_student(course, submission, manifest["student_timeout"], warning)
        result.mkdir(parents=True, exist_ok=True)
        for kind in ("submitted", "autograded"):
            if course.path(kind, student).is_dir():
                shutil.copytree(course.path(kind, student), result / kind)
        if (root / report.log).is_file():
            shutil.copyfile(root / report.log, result / "student.log")
        shutil.copyfile(root / "gradebook.db", result / "gradebook.db")
    return report


if __name__ == "__main__":
    sys.exit(main())
