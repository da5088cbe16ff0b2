"""Grading and training on a real Slurm cluster, started here from Debian's packages.

The module's cluster is ``scripts/slurm/local_cluster.py``: munged, slurmctld and slurmd on this
machine, their configuration in a temporary folder, stopped after the module. When it cannot
start, each test that needs it fails with the reason: a skip would hide a broken setup.

Grading: one class of 01-convolution (honest, partial, blank, broken and two hostile
submissions) graded by the local backend and by the Slurm backend (a job array): every grade,
question score and report must be the same. The Slurm run has a seventh student whose code
never finishes; the test cancels that student's task while it runs, and the task must be
reported as failed with the others merged. Running again must skip everyone; ``--student``
must grade one student again.

Training: ``scripts/slurm/train.sbatch`` runs the experiment with two Gloo processes on one
node (srun + torchrun) and must write the results of a single-process run, and the
pretraining in one process, its checkpoint.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from processes import processes_carrying

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError
from course_lib.grading.cli import GradeConfig
from course_lib.grading.pipeline import grade

sys.path.insert(0, str(Path(__file__).parent / "adversarial"))
import cases as adversarial  # noqa: E402

ASSIGNMENT, NOTEBOOK = adversarial.ASSIGNMENT, adversarial.NOTEBOOK
SOLUTION = PROJECT_ROOT / "solutions" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
RELEASE = PROJECT_ROOT / "exercises" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
TRAIN = PROJECT_ROOT / "scripts" / "slurm" / "train.sbatch"
# honest, partial, blank, broken, and two hostile: one that writes the gradebook, one that kills its kernel
CLASS = ("honest-full", "honest-partial", "honest-blank", "invalid-json", "writes-gradebook", "os-exit")
STUCK = "stuck"  # its answer starts a process that never ends; the test cancels its Slurm task
MARKER = "31415.5"  # the sleep duration of that process, which no other process uses
CELL_TIMEOUT = 60  # the setup cell imports torch: seconds on a busy 2-core machine
TIMINGS = {"grading_seconds"}  # columns that time the grading: they differ between any two runs
# When a kernel exits abruptly (os-exit), whether the sandbox also notices its broken output connection
# before nbclient notices the dead kernel is a race, in either backend: that one notice is left out.
RACE = "the sandbox was killed: its output connection broke (a message too large)"


def load_script(path: Path) -> object:
    """A script of the project (scripts/, bench/) as a module."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))  # for its dataclasses
    spec.loader.exec_module(module)
    return module


local_cluster = load_script(PROJECT_ROOT / "scripts" / "slurm" / "local_cluster.py")


@pytest.fixture(scope="module")
def cluster():
    """The one-node cluster, and SLURM_CONF pointing at it, for this module's tests."""
    try:
        started = local_cluster.start()
    except local_cluster.ClusterUnavailable as error:
        pytest.fail(f"the Slurm cluster of these tests did not start: {error}", pytrace=False)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("SLURM_CONF", str(started.conf))
            yield started
    finally:
        local_cluster.stop(started)


# ---------------------------------------------------------------- the class


def write_class(folder: Path, course: Path, names: tuple[str, ...]) -> None:
    """The adversarial suite's submissions of these names, their attacks aimed at ``course``."""
    release, solution = json.loads(RELEASE.read_text()), json.loads(SOLUTION.read_text())
    cases = {case.name: case for case in adversarial.build_cases(release, solution, course)}
    for name in names:
        (folder / name).mkdir(parents=True)
        for file, content in cases[name].files.items():
            (folder / name / file).write_bytes(content)


def write_stuck(folder: Path) -> None:
    """A student whose first answer starts a process that never ends (until Slurm cancels the task)."""
    release, solution = json.loads(RELEASE.read_text()), json.loads(SOLUTION.read_text())
    answers = adversarial.solution_sources(solution)
    code = f"import subprocess\nsubprocess.run(['sleep', '{MARKER}'])\n" + answers["conv_output_size"]
    notebook = adversarial.answered(release, answers, conv_output_size=code)
    (folder / STUCK).mkdir(parents=True)
    (folder / STUCK / f"{NOTEBOOK}.ipynb").write_text(json.dumps(notebook))


def cancel_when_running(course: Path, student: str, env: dict, done: threading.Event, found: dict) -> None:
    """Cancel the student's array task once their code runs (its marked process exists)."""
    deadline = time.monotonic() + 600
    while not done.is_set() and time.monotonic() < deadline:
        for manifest in (course / "slurm" / ASSIGNMENT / "batches").glob("*/manifest.json"):
            job = manifest.parent / "job"
            students = [entry["student"] for entry in json.loads(manifest.read_text())["students"]]
            if job.is_file() and student in students and processes_carrying(MARKER):
                found["task"] = f"{job.read_text().strip()}_{students.index(student)}"
                found["cancelled"] = subprocess.run(["scancel", found["task"]], env=env, capture_output=True, text=True)
                return
        time.sleep(0.5)


def read_csv(path: Path) -> list[dict]:
    """A CSV's rows without timings, and grades.csv's problems without the race's notice."""
    with open(path, newline="") as handle:
        rows = [{k: v for k, v in row.items() if k not in TIMINGS} for row in csv.DictReader(handle)]
    for row in rows:
        if "problems" in row:
            row["problems"] = "; ".join(p for p in row["problems"].split("; ") if p != RACE)
    return rows


def by_student(rows: list[dict]) -> dict[str, dict]:
    return {row["student_id"]: row for row in rows}


def files_under(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def graded(cluster, tmp_path_factory):
    """The class graded locally (2 at a time), then on Slurm with the stuck student (2 tasks at a time)
    while a thread cancels that student's task, then on Slurm again, then one student re-graded."""
    root = tmp_path_factory.mktemp("slurm-grading")
    local, slurm = root / "local", root / "slurm"
    write_class(root / "class", slurm, CLASS)
    shutil.copytree(root / "class", root / "class-and-stuck")
    write_stuck(root / "class-and-stuck")

    started = time.perf_counter()
    local_log: list[str] = []
    grade(
        GradeConfig(assignment=ASSIGNMENT, submissions=root / "class", out=local, cell_timeout=CELL_TIMEOUT, jobs=2),
        progress=local_log.append,
    )
    local_seconds = time.perf_counter() - started

    done, found = threading.Event(), {}
    canceller = threading.Thread(target=cancel_when_running, args=(slurm, STUCK, cluster.env, done, found))
    canceller.start()
    started = time.perf_counter()
    slurm_log: list[str] = []
    try:
        reports = grade(
            GradeConfig(
                assignment=ASSIGNMENT,
                submissions=root / "class-and-stuck",
                out=slurm,
                cell_timeout=CELL_TIMEOUT,
                backend="slurm",
                max_parallel=2,
            ),
            progress=slurm_log.append,
        )
    finally:
        done.set()
        canceller.join()
    slurm_seconds = time.perf_counter() - started
    deadline = time.monotonic() + 30  # Slurm sends SIGKILL KillWait (5 s) after SIGTERM
    while processes_carrying(MARKER) and time.monotonic() < deadline:
        time.sleep(0.5)
    leftover = processes_carrying(MARKER)
    first = {"grades": read_csv(slurm / "grades.csv"), "questions": read_csv(slurm / "questions.csv")}
    evidence = root / "slurm-after-first-run"  # what the later runs overwrite, kept for a failure's message
    evidence.mkdir()
    shutil.copyfile(slurm / "gradebook.db", evidence / "gradebook.db")
    for kept in ("logs", "reports", "autograded"):
        shutil.copytree(slurm / kept, evidence / kept)
    kept_batches = sorted(p.name for p in (slurm / "slurm" / ASSIGNMENT / "batches").iterdir())

    again_log: list[str] = []
    grade(
        GradeConfig(
            assignment=ASSIGNMENT, submissions=root / "class", out=slurm, cell_timeout=CELL_TIMEOUT, backend="slurm"
        ),
        progress=again_log.append,
    )
    again = {"grades": read_csv(slurm / "grades.csv"), "questions": read_csv(slurm / "questions.csv")}

    # honest-partial hands in the full answers; only that student is graded again
    write_class(root / "resubmitted", slurm, ("honest-full",))
    (root / "resubmitted" / "honest-full").rename(root / "resubmitted" / "honest-partial")
    regrade_log: list[str] = []
    regraded = grade(
        GradeConfig(
            assignment=ASSIGNMENT,
            submissions=root / "resubmitted",
            out=slurm,
            cell_timeout=CELL_TIMEOUT,
            backend="slurm",
            student="honest-partial",
        ),
        progress=regrade_log.append,
    )
    print(f"\nlocal backend: {len(CLASS)} students in {local_seconds:.0f} s; Slurm: 7 in {slurm_seconds:.0f} s")
    return {
        "local": local,
        "slurm": slurm,
        "local_first": {"grades": read_csv(local / "grades.csv"), "questions": read_csv(local / "questions.csv")},
        "first": first,
        "again": again,
        "final": {"grades": read_csv(slurm / "grades.csv"), "questions": read_csv(slurm / "questions.csv")},
        "reports": reports,
        "regraded": regraded,
        "logs": {"slurm": slurm_log, "again": again_log, "regrade": regrade_log},
        "cancel": found,
        "leftover": leftover,
        "kept_batches": kept_batches,
    }


@pytest.mark.slow  # the module's Slurm cluster
def test_every_grade_equals_the_local_backends(graded):
    local, slurm = by_student(graded["local_first"]["grades"]), by_student(graded["first"]["grades"])
    assert sorted(local) == sorted(CLASS) and sorted(slurm) == sorted((*CLASS, STUCK))
    for student in CLASS:
        assert slurm[student] == local[student], f"{student}: see {graded['slurm'].parent}/slurm-after-first-run"
    questions = [row for row in graded["first"]["questions"] if row["student_id"] != STUCK]
    assert questions == graded["local_first"]["questions"]


@pytest.mark.slow  # the module's Slurm cluster
def test_reports_feedback_and_notebooks_equal_the_local_backends(graded):
    local, slurm = graded["local"], graded["slurm"]
    for student in CLASS:
        mine = json.loads((slurm / "reports" / ASSIGNMENT / f"{student}.json").read_text())
        theirs = json.loads((local / "reports" / ASSIGNMENT / f"{student}.json").read_text())
        for report in (mine, theirs):
            report.pop("seconds")
            report.pop("feedback_digest")  # a digest of the autograded outputs, which print memory addresses
            report["problems"] = [p for p in report["problems"] if p != RACE]
        assert mine == theirs, student
    for kind in ("feedback", "autograded", "submitted"):
        shown = {path for path in files_under(slurm / kind) if not path.startswith(STUCK)}
        assert shown == files_under(local / kind), kind
    assert files_under(local / "feedback")  # there is feedback to compare
    assert (slurm / "logs" / ASSIGNMENT / "honest-full.log").read_text().count("$ nbgrader autograde") == 1


@pytest.mark.slow  # the module's Slurm cluster
def test_the_class_gets_what_each_submission_deserves(graded):
    """Equal to the local backend, and right: honest marks, hostile code held or failed."""
    release, solution = json.loads(RELEASE.read_text()), json.loads(SOLUTION.read_text())
    cases = {case.name: case for case in adversarial.build_cases(release, solution, graded["slurm"])}
    points = {row["cell"]: float(row["max_score"]) for row in graded["first"]["questions"] if row["kind"] == "auto"}
    rows = by_student(graded["first"]["grades"])
    for name in CLASS:
        case, row = cases[name], rows[name]
        assert row["status"] == case.status, row
        assert case.says.lower() in row["problems"].lower(), row
        if case.status != "review":  # held for review: points withheld until a person has looked
            assert float(row["auto_score"]) == sum(points[cell] for cell in case.passes), row


@pytest.mark.slow  # the module's Slurm cluster
def test_a_cancelled_task_is_reported_and_the_others_merged(graded):
    assert "task" in graded["cancel"], "the stuck student's code never ran on the cluster"
    assert graded["cancel"]["cancelled"].returncode == 0, graded["cancel"]["cancelled"].stderr
    row = by_student(graded["first"]["grades"])[STUCK]
    assert row["status"] == "failed" and row["score"] == "0"
    assert f"the Slurm task {graded['cancel']['task']} ended as CANCELLED" in row["problems"]
    assert graded["leftover"] == [], "the cancelled task left its processes running"
    assert len(graded["reports"]) == len(CLASS) + 1
    assert len(graded["kept_batches"]) == 1  # the batch with the failed task keeps its logs
    assert not (graded["slurm"] / "slurm" / ASSIGNMENT / "batches").exists() or not any(
        (graded["slurm"] / "slurm" / ASSIGNMENT / "batches").iterdir()
    )  # and the next run cleared it


@pytest.mark.slow  # the module's Slurm cluster
def test_progress_names_each_student_and_estimates_the_rest(graded):
    log = graded["logs"]["slurm"]
    total = len(CLASS) + 1
    finished = [line for line in log if line.startswith("[") and f"/{total}] " in line]
    assert sorted(line.split("] ")[1].split(":")[0] for line in finished) == sorted((*CLASS, STUCK))
    assert any(line.startswith("Slurm job ") and "7 students, one task each" in line for line in log), log
    assert any("running" in line and "waiting" in line and "left at the pace so far" in line for line in log), log


@pytest.mark.slow  # the module's Slurm cluster
def test_running_again_skips_the_students_already_graded(graded):
    log = graded["logs"]["again"]
    assert any(line.startswith(f"{len(CLASS)} students already graded") for line in log), log
    assert not any(line.startswith("Slurm job") for line in log), log  # nothing was submitted
    assert graded["again"] == graded["first"]


@pytest.mark.slow  # the module's Slurm cluster
def test_one_student_is_graded_again(graded):
    log = graded["logs"]["regrade"]
    assert any(line.startswith("Slurm job ") and "1 student, one task each" in line for line in log), log
    assert [report.student for report in graded["regraded"]] == ["honest-partial"]
    before, after = by_student(graded["again"]["grades"]), by_student(graded["final"]["grades"])
    assert after["honest-partial"]["auto_score"] == before["honest-full"]["auto_score"]
    assert after["honest-partial"]["auto_score"] != before["honest-partial"]["auto_score"]
    for student in before:
        if student != "honest-partial":
            assert after[student] == before[student], student


@pytest.mark.slow  # the module's Slurm cluster
def test_a_killed_command_loses_nothing(cluster, tmp_path):
    """The command killed while its array runs: the next run keeps the student merged before the kill,
    merges the one whose task finished after it, and submits nothing."""
    submissions, out = tmp_path / "class", tmp_path / "out"
    write_class(submissions, out, ("honest-full", "honest-blank"))
    options = ["--backend", "slurm", "--cell-timeout", str(CELL_TIMEOUT)]
    command = [sys.executable, "-m", "course_lib.grading", ASSIGNMENT, str(submissions), "--out", str(out), *options]
    markers = out / "slurm" / ASSIGNMENT / "graded"
    with open(tmp_path / "driver.log", "w") as log:
        driver = subprocess.Popen([*command, "--max-parallel", "1"], env=cluster.env, stdout=log, stderr=log)
        deadline = time.monotonic() + 300
        while driver.poll() is None and time.monotonic() < deadline and not list(markers.glob("*.json")):
            time.sleep(0.2)
        driver.kill()
        driver.wait()
    assert len(list(markers.glob("*.json"))) == 1, (tmp_path / "driver.log").read_text()
    job = next((out / "slurm" / ASSIGNMENT / "batches").glob("*/job")).read_text().strip()
    deadline = time.monotonic() + 300
    while cluster.run("squeue", "--noheader", "--jobs", job).stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.5)  # the array goes on without the command
    log: list[str] = []
    grade(
        GradeConfig(
            assignment=ASSIGNMENT, submissions=submissions, out=out, cell_timeout=CELL_TIMEOUT, backend="slurm"
        ),
        progress=log.append,
    )
    assert any(line.startswith("1 student already graded") for line in log), log
    assert "merged 1 student graded on Slurm by an interrupted run" in log, log
    assert not any(line.startswith("Slurm job") for line in log), log
    rows = by_student(read_csv(out / "grades.csv"))
    assert rows["honest-full"]["auto_score"] == rows["honest-full"]["auto_max_score"] != "0"
    assert rows["honest-blank"]["auto_score"] == "0"
    assert {row["status"] for row in rows.values()} == {"graded"}
    assert not list((out / "slurm" / ASSIGNMENT / "batches").iterdir())


# ---------------------------------------------------------------- options and errors, without the cluster


def test_slurm_options_are_checked_before_anything_runs():
    from course_lib.grading.slurm import sbatch_arguments, time_limit

    out = Path("o")
    with pytest.raises(GradingError, match="--partition, --gres only apply to --backend slurm"):
        GradeConfig(assignment=ASSIGNMENT, out=out, partition="gpu", gres="gpu:1")
    with pytest.raises(GradingError, match="--max-parallel limits"):
        GradeConfig(assignment=ASSIGNMENT, out=out, backend="slurm", jobs=4)
    with pytest.raises(GradingError, match="--max-parallel must be at least 1"):
        GradeConfig(assignment=ASSIGNMENT, out=out, backend="slurm", max_parallel=0)
    with pytest.raises(GradingError, match="--gres takes one word"):
        GradeConfig(assignment=ASSIGNMENT, out=out, backend="slurm", gres="gpu:1 --uid=0")
    with pytest.raises(GradingError, match="--backend must be one of local, slurm"):
        GradeConfig(assignment=ASSIGNMENT, out=out, backend="cloud")
    config = GradeConfig(assignment=ASSIGNMENT, out=out, backend="slurm", gres="gpu:1", max_parallel=3, mem="8G")
    arguments = sbatch_arguments(config, Path("/course/batch"), 50, ASSIGNMENT)
    assert "--array=0-49%3" in arguments and "--gres=gpu:1" in arguments and "--mem=8G" in arguments
    assert time_limit(config) == str(math.ceil((config.student_timeout + 600) / 60))
    assert f"--time={time_limit(config)}" in arguments
    assert not any(a.startswith("--partition") for a in arguments)  # the cluster's default partition


def test_the_submitting_machine_needs_no_sandbox(monkeypatch):
    """With Slurm no student code runs where the command runs (a login node may lack bubblewrap):
    the nodes check their sandbox before grading (slurm_task), the local backend checks here."""
    from course_lib.grading import sandbox
    from course_lib.grading.course import SANDBOXED, choose_kernel_manager

    def unavailable() -> None:
        raise sandbox.SandboxUnavailable("bubblewrap (bwrap) is not installed")

    monkeypatch.setattr(sandbox, "check_sandbox", unavailable)
    assert choose_kernel_manager(True, check=False) == (SANDBOXED, None)
    with pytest.raises(GradingError, match="No student code was run: bubblewrap"):
        choose_kernel_manager(True)


def test_without_slurm_the_command_says_where_to_run_it(tmp_path, monkeypatch, capsys):
    from course_lib.grading.cli import main

    monkeypatch.setenv("PATH", str(tmp_path))  # no sbatch on it
    submissions = tmp_path / "class"
    write_class(submissions, tmp_path / "out", ("honest-blank",))
    assert main([ASSIGNMENT, str(submissions), "--out", str(tmp_path / "out"), "--backend", "slurm"]) == 2
    assert "needs Slurm's commands sbatch, squeue, scancel, scontrol" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # stopped before anything was released


# ---------------------------------------------------------------- training


def submit(cluster, folder: Path, processes: int, *arguments: str) -> str:
    """Submit train.sbatch with ``arguments`` (NPROC_PER_NODE=``processes``); return the job id."""
    env = {**cluster.env, "NPROC_PER_NODE": str(processes), "PYTHON": sys.executable, "OMP_NUM_THREADS": "1"}
    command = ["sbatch", "--parsable", f"--cpus-per-task={cluster.cpus}", f"--output={folder}/job.out"]
    submitted = subprocess.run(
        [*command, str(TRAIN), *arguments], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=60
    )
    assert submitted.returncode == 0, submitted.stderr
    return submitted.stdout.strip().split(";")[0]


def single_process(*arguments: str) -> None:
    """The same command in one process, without Slurm (while the job runs: the machine has cores to spare)."""
    done = subprocess.run(
        [sys.executable, "-m", "course_lib", *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0, done.stderr[-3000:]


def wait_for(cluster, job: str, folder: Path) -> str:
    """Wait until the job has ended; check that it completed; return its log."""
    deadline = time.monotonic() + 600
    while cluster.run("squeue", "--noheader", "--jobs", job).stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.5)
    state = cluster.run("scontrol", "--oneliner", "show", "job", job).stdout
    log = (folder / "job.out").read_text()
    assert "JobState=COMPLETED" in state and "ExitCode=0:0" in state, state + log[-3000:]
    return log


@pytest.mark.slow  # the module's Slurm cluster
def test_train_sbatch_two_gloo_processes_write_the_results_of_one(cluster, photos, tmp_path):
    """Finetune and feature_extraction, one epoch of two steps (18 photos, batch 9, split 5 + 4).

    From the shipped checkpoint, as the experiment starts by default: weights that are really
    pretrained. Randomly initialised ones amplify the rounding differences of sums taken in
    another order (bench/DISTRIBUTED.md): from the tests' random 'pretrained' checkpoint, the
    second step's loss differs by 2e-3 between one and two processes, from the shipped one by
    less than 1e-7.
    """
    arguments = [
        "experiment",
        *("--data", str(photos), "--image-size", "32"),
        *("--batch-size", "9", "--regimes", "finetune", "feature_extraction", "--epochs", "1", "--device", "cpu"),
    ]
    job = submit(cluster, tmp_path, 2, *arguments, "--out", str(tmp_path / "two"), "--runs", str(tmp_path / "two-runs"))
    single_process(*arguments, "--out", str(tmp_path / "one"), "--runs", str(tmp_path / "one-runs"))
    log = wait_for(cluster, job, tmp_path)
    assert "2 process(es) per node" in log and "2 processes (DistributedDataParallel)" in log, log[-3000:]
    assert files_under(tmp_path / "two") == files_under(tmp_path / "one")
    assert files_under(tmp_path / "two-runs") == files_under(tmp_path / "one-runs")
    for name in ("test_predictions.csv", "test_accuracy.csv"):
        assert (tmp_path / "two" / name).read_text() == (tmp_path / "one" / name).read_text(), name
    for regime in ("finetune", "feature_extraction"):
        one = json.loads((tmp_path / "one" / "histories" / f"{regime}-seed0.json").read_text())["records"]
        two = json.loads((tmp_path / "two" / "histories" / f"{regime}-seed0.json").read_text())["records"]
        assert len(one) == len(two) == 1
        assert two[0]["train_loss"] == pytest.approx(one[0]["train_loss"], rel=1e-4)
        for key in ("train_accuracy", "val_accuracy", "val_loss"):
            assert two[0][key] == pytest.approx(one[0][key], rel=1e-4), (regime, key)
        weights = [
            torch.load(tmp_path / f"{n}-runs" / f"{regime}-seed0" / "checkpoint.pt", weights_only=False)["model"]
            for n in ("one", "two")
        ]
        for name, value in weights[0].items():
            assert torch.allclose(value.float(), weights[1][name].float(), rtol=1e-4, atol=1e-4), (regime, name)


@pytest.mark.slow  # the module's Slurm cluster
def test_train_sbatch_pretrains_in_one_process(cluster, tmp_path):
    """srun + torchrun with one process: the checkpoint of a plain run, bit for bit (same seed, one thread)."""
    from test_pretrain import make_cifar_zip

    from course_lib.weights import load_checkpoint

    data = make_cifar_zip(tmp_path / "cifar.zip")
    arguments = ["pretrain", "--data", str(data), "--device", "cpu", "--image-size", "32", "--epochs", "1"]
    arguments += ["--batch-size", "6", "--threads", "1"]
    job = submit(
        cluster, tmp_path, 1, *arguments, "--out", str(tmp_path / "slurm.pt"), "--run-dir", str(tmp_path / "run")
    )
    single_process(*arguments, "--out", str(tmp_path / "one.pt"), "--run-dir", str(tmp_path / "one-run"))
    assert "1 process(es) per node" in wait_for(cluster, job, tmp_path)
    slurm, one = load_checkpoint(tmp_path / "slurm.pt"), load_checkpoint(tmp_path / "one.pt")
    assert slurm.meta["test_accuracy"] == one.meta["test_accuracy"]
    for name, value in one.state_dict.items():
        assert torch.equal(value, slurm.state_dict[name]), name


def test_train_sbatch_runs_only_under_slurm(tmp_path):
    outside = subprocess.run(
        ["bash", str(TRAIN), "experiment"], env={"PATH": os.environ["PATH"]}, capture_output=True, text=True
    )
    assert outside.returncode == 2 and "submit this script with sbatch" in outside.stderr


# ---------------------------------------------------------------- the benchmark


@pytest.mark.slow  # the module's Slurm cluster
def test_slurm_overhead_benchmark_prints_its_table(cluster, tmp_path, capsys):
    """bench/slurm_overhead.py at a toy size on this module's cluster: a complete table, same grades."""
    bench = load_script(PROJECT_ROOT / "bench" / "slurm_overhead.py")
    out = tmp_path / "overhead.json"
    assert bench.main(["--students", "1", "--cluster", "running", "--json", str(out), "--workdir", str(tmp_path)]) == 0
    text = capsys.readouterr().out
    result = json.loads(out.read_text())
    assert result["same_grades"] is True and result["students"] == 1
    rows = [
        line.strip("|").split("|")
        for line in text.splitlines()
        if line.startswith("| local") or line.startswith("| slurm")
    ]
    assert [row[0].strip() for row in rows] == ["local", "slurm"]
    for row, measured in zip(rows, result["rows"], strict=True):
        assert float(row[1]) == pytest.approx(measured["wall_s"], abs=0.05)
        assert float(row[2]) == pytest.approx(measured["wall_s"], abs=0.005)  # per student, of one
        assert measured["wall_s"] > 0 and measured["grading_s"] > 0
    expected = result["rows"][1]["wall_s"] - result["rows"][0]["wall_s"]
    assert result["overhead_per_student_s"] == pytest.approx(expected, rel=1e-9)
    assert f"Slurm overhead: {expected:+.2f} s per student" in text
