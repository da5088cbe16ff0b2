"""Where the students of a batch are graded: on this machine, or as a Slurm job array.

Everything around the dispatch is shared: collecting and registering the submissions
before it, feedback, reports and the CSVs after it (:mod:`course_lib.grading.pipeline`).
A backend only turns submissions into reports, each made by the same
:func:`~course_lib.grading.pipeline.grade_student`:

- ``local``: :func:`~course_lib.grading.pipeline.grade_students`, ``--jobs`` students at a
  time in threads, each in its own nbgrader process and sandbox on this machine;
- ``slurm``: :func:`course_lib.grading.slurm.grade_on_slurm`, one job array with one task per
  student, each task grading on its node (:mod:`course_lib.grading.slurm_task`), the results
  merged here as they arrive.

This module imports nothing heavy: the command's options check their values with it.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from typing import TYPE_CHECKING

from course_lib.grading import GradingError

if TYPE_CHECKING:
    from course_lib.grading.cli import GradeConfig
    from course_lib.grading.course import Course
    from course_lib.grading.results import Report
    from course_lib.grading.submissions import Submission

__all__ = ["BACKENDS", "SLURM_COMMANDS", "SLURM_OPTIONS", "check_backend", "check_backend_options", "dispatch"]

BACKENDS = ("local", "slurm")
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "scontrol")  # what the Slurm backend runs
# The options that only the Slurm backend reads: given with the local backend, they are a mistake.
SLURM_OPTIONS = ("partition", "gres", "time", "mem", "max_parallel")


def check_backend_options(config: GradeConfig) -> None:
    """Stop before anything runs when an option does not apply to the chosen backend.

    Options silently ignored would let an instructor believe a class was graded on GPU
    nodes (``--gres gpu:1``) when it ran on the login node.
    """
    if config.backend not in BACKENDS:
        raise GradingError(f"--backend must be one of {', '.join(BACKENDS)}, not {config.backend!r}.")
    if config.backend == "local":
        given = [name for name in SLURM_OPTIONS if getattr(config, name) is not None]
        if given:
            flags = ", ".join("--" + name.replace("_", "-") for name in given)
            raise GradingError(f"{flags} only apply to --backend slurm; add --backend slurm or leave them out.")
        return
    if config.jobs != 1:
        raise GradingError("--jobs applies to --backend local; on Slurm, --max-parallel limits the students at a time.")
    if config.max_parallel is not None and config.max_parallel < 1:
        raise GradingError(f"--max-parallel must be at least 1, not {config.max_parallel}.")
    for name in ("partition", "gres", "time", "mem"):
        value = getattr(config, name)
        if value is not None and (not value.strip() or any(c.isspace() or c in "#'\"\\" for c in value)):
            example = f"--{name} {_EXAMPLES[name]}"
            raise GradingError(f"--{name} takes one word, as sbatch does (e.g. {example}), not {value!r}.")


_EXAMPLES = {"partition": "gpu", "gres": "gpu:1", "time": "30", "mem": "8G"}


def check_backend(config: GradeConfig) -> None:
    """Stop before anything is released or run when this machine cannot use the backend that grades
    the submissions (a run without submissions only rewrites the outputs: it needs no backend)."""
    if config.backend == "slurm" and config.submissions is not None:
        missing = [name for name in SLURM_COMMANDS if shutil.which(name) is None]
        if missing:
            raise GradingError(
                f"--backend slurm needs Slurm's commands {', '.join(missing)} on this machine: run course-grade "
                "on the cluster's login node (with the course directory on a file system the nodes share)."
            )


def dispatch(
    config: GradeConfig,
    course: Course,
    submissions: list[Submission],
    warning: str | None,
    progress: Callable[[str], object],
) -> list[Report]:
    """Grade the submissions with the config's backend; one report per submission, in input order."""
    if config.backend == "slurm":
        from course_lib.grading.slurm import grade_on_slurm

        return grade_on_slurm(config, course, submissions, warning, progress)
    from course_lib.grading.pipeline import grade_students

    return grade_students(course, submissions, config.student_timeout, warning, config.jobs, progress)
