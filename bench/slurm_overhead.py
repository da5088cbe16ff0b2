"""What grading through Slurm costs per student: the same class graded by the local backend and
by the Slurm backend (one job array), with the same number of students at a time.

    python bench/slurm_overhead.py                          # 50 students, a one-node cluster started here
    python bench/slurm_overhead.py --cluster running        # the Slurm this machine already uses (SLURM_CONF)
    python bench/slurm_overhead.py --students 200 --parallel 16 --cluster running --partition cpu

The class is generated from the assignment: honest (the reference answers), partial (every
other answer left as released) and blank submissions in turn. Each backend grades it into a
fresh course directory; with --repeats 2 the order is local, Slurm, Slurm, local (ABBA), so
that a busy neighbour slows both alike. Prints the wall time of each, the seconds each student
spent grading (from the reports), the overhead per student and per task, and whether the two
backends wrote the same grades.csv and questions.csv (exit code 1 if not).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError
from course_lib.grading.cli import GradeConfig
from course_lib.grading.pipeline import grade

KINDS = ("honest", "partial", "blank")
CLUSTER_SCRIPT = PROJECT_ROOT / "scripts" / "slurm" / "local_cluster.py"
TIMINGS = {"grading_seconds"}  # columns of grades.csv that measure time, not grades


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def write_class(folder: Path, assignment: str, students: int) -> None:
    """``students`` submissions in nbgrader's layout, honest, partial and blank in turn."""
    solutions = sorted((PROJECT_ROOT / "solutions" / assignment).glob("*.ipynb"))
    for solution_path in solutions:
        release = json.loads((PROJECT_ROOT / "exercises" / assignment / solution_path.name).read_text())
        answers = {}
        for cell in json.loads(solution_path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution"):
                lines = _source(cell).splitlines(keepends=True)
                answers[meta["grade_id"]] = "".join(line for line in lines if "### " not in line)  # the markers
        for index in range(students):
            kind = KINDS[index % len(KINDS)]
            notebook = json.loads(json.dumps(release))
            answered = 0
            for cell in notebook["cells"]:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                if grade_id in answers and kind != "blank":
                    if kind == "honest" or answered % 2 == 0:
                        cell["source"] = answers[grade_id]
                    answered += 1
            target = folder / f"{kind}-{index:03d}" / assignment / solution_path.name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(notebook, indent=1))


def _read(path: Path) -> list[dict]:
    """A CSV's rows without the columns that time the grading (they differ from run to run)."""
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(handle)]


def local_cluster_module() -> ModuleType:
    """scripts/slurm/local_cluster.py as a module, loaded once."""
    if "local_cluster" not in sys.modules:
        spec = importlib.util.spec_from_file_location("local_cluster", CLUSTER_SCRIPT)
        sys.modules[spec.name] = importlib.util.module_from_spec(spec)  # before running it: its dataclasses
        spec.loader.exec_module(sys.modules[spec.name])
    return sys.modules["local_cluster"]


@contextlib.contextmanager
def slurm(kind: str) -> Iterator[str]:
    """A cluster to submit to: one started here (scripts/slurm/local_cluster.py), or the running one."""
    if kind == "running":
        yield "the Slurm configured on this machine"
        return
    module = local_cluster_module()
    with module.local_cluster() as cluster, _environment("SLURM_CONF", str(cluster.conf)):
        yield f"a one-node cluster started here (node {cluster.node}, {cluster.cpus} CPUs)"


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def run_backend(backend: str, submissions: Path, out: Path, args: argparse.Namespace) -> dict:
    """Grade the class with one backend into ``out``; its wall time and the students' own grading seconds."""
    options = {"jobs": args.parallel} if backend == "local" else {"max_parallel": args.parallel, "backend": "slurm"}
    if backend == "slurm" and args.partition:
        options["partition"] = args.partition
    config = GradeConfig(assignment=args.assignment, submissions=submissions, out=out, **options)
    started = time.perf_counter()
    reports = grade(config, progress=lambda line: print(f"  {backend}: {line}", file=sys.stderr, flush=True))
    wall = time.perf_counter() - started
    return {
        "backend": backend,
        "wall_s": wall,
        "grading_s": statistics.median(r.seconds for r in reports),
        "statuses": sorted({r.status for r in reports}),
        "grades": _read(out / "grades.csv"),
        "questions": _read(out / "questions.csv"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignment", default="01-convolution")
    parser.add_argument("--students", type=int, default=50)
    parser.add_argument("--parallel", type=int, default=2, help="students at a time: --jobs and --max-parallel")
    parser.add_argument("--cluster", choices=("local", "running"), default="local")
    parser.add_argument("--partition", help="Slurm partition (with --cluster running)")
    parser.add_argument("--repeats", type=int, choices=(1, 2), default=1, help="2: ABBA order")
    parser.add_argument(
        "--workdir",
        type=Path,
        help="where the class and course directories go (on a cluster: a folder the nodes share)",
    )
    parser.add_argument("--json", type=Path, help="also write the unrounded numbers here")
    args = parser.parse_args(argv)
    order = ["local", "slurm"] + (["slurm", "local"] if args.repeats == 2 else [])
    measured: dict[str, list[dict]] = {"local": [], "slurm": []}
    runs: list[tuple[str, float]] = []  # (backend, wall seconds) in the order they ran
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    try:
        with (
            tempfile.TemporaryDirectory(prefix="slurm-overhead-", dir=args.workdir) as scratch,
            slurm(args.cluster) as where,
        ):
            root = Path(scratch)
            write_class(root / "class", args.assignment, args.students)
            for index, backend in enumerate(order):
                print(f"{backend} ({index + 1}/{len(order)}) ...", file=sys.stderr, flush=True)
                measured[backend].append(run_backend(backend, root / "class", root / f"{backend}-{index}", args))
                runs.append((backend, measured[backend][-1]["wall_s"]))
    except (GradingError, local_cluster_module().ClusterUnavailable) as error:
        print(f"slurm_overhead: {error}", file=sys.stderr)
        return 2
    same = all(
        (run["grades"], run["questions"]) == (measured["local"][0]["grades"], measured["local"][0]["questions"])
        for runs in measured.values()
        for run in runs
    )
    rows = []
    for backend in ("local", "slurm"):
        wall = statistics.median(run["wall_s"] for run in measured[backend])
        grading = statistics.median(run["grading_s"] for run in measured[backend])
        rows.append({"backend": backend, "wall_s": wall, "per_student_s": wall / args.students, "grading_s": grading})
    extra = (rows[1]["wall_s"] - rows[0]["wall_s"]) / args.students
    result = {
        "assignment": args.assignment,
        "students": args.students,
        "parallel": args.parallel,
        "cluster": where,
        "repeats": args.repeats,
        "rows": rows,
        "runs": [{"backend": backend, "wall_s": wall} for backend, wall in runs],
        "overhead_per_student_s": extra,
        "overhead_per_task_s": extra * args.parallel,
        "same_grades": same,
    }
    print(f"{args.assignment}, {args.students} students, {args.parallel} at a time, Slurm: {where}")
    print("| backend | wall s | wall s per student | grading s per student (median) |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(f"| {row['backend']} | {row['wall_s']:.1f} | {row['per_student_s']:.2f} | {row['grading_s']:.2f} |")
    print("runs in the order they ran: " + ", ".join(f"{backend} {wall:.1f} s" for backend, wall in runs))
    print(
        f"Slurm overhead: {extra:+.2f} s per student of wall time, {extra * args.parallel:+.2f} s per task "
        f"({args.parallel} tasks at a time); same grades.csv and questions.csv: {'yes' if same else 'NO'}"
    )
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
