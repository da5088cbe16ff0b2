"""The Slurm backend: one job array, one task per student, merged here as the tasks finish.

``course-grade ... --backend slurm`` runs on a machine with Slurm's client commands (a login
node) and needs a course directory (``--out`` / ``--course``) on a file system that the
compute nodes share at the same path, with the project and its virtual environment. Then:

1. what stays on this machine: releasing the assignment, collecting and checking the
   submissions, registering the students (:mod:`course_lib.grading.pipeline`), and after the
   dispatch the feedback, the reports and the CSVs: exactly what the local backend does;
2. the dispatch: each student's files are copied into a batch folder
   ``<course>/slurm/<assignment>/batches/<id>/`` with a manifest and a snapshot of the
   gradebook, and ``sbatch`` submits one array (``--array=0-N%MAX_PARALLEL``) whose task
   *i* runs ``python -m course_lib.grading.slurm_task BATCH`` for the manifest's student *i*
   (:mod:`course_lib.grading.slurm_task`): the same
   :func:`~course_lib.grading.pipeline.grade_student` as the local backend, with the kernel
   in the sandbox of the node, in a course directory on the node's local disk;
3. while the array runs, this process polls the batch folder and ``squeue``, prints each
   student as their result arrives and an estimate of the time left, and merges each result
   into the course directory: the student's rows of the gradebook, their submitted and
   autograded notebooks, their log and report.

Why the gradebook is merged here rather than written by the tasks: nbgrader's gradebook is
one sqlite file, and sqlite's locking is unreliable on network file systems (NFS, Lustre),
where concurrent writers from several nodes can corrupt it. So the tasks never write the
shared gradebook: each grades against its own copy on its node's disk, and only this
process, the single writer, copies each student's rows into the course's gradebook, in one
transaction per student (:func:`merge_gradebook`).

Nothing is lost on interruption: a student's result is merged as soon as it arrives, and a
marker ``<course>/slurm/<assignment>/graded/<student>.json`` records what was graded (a
fingerprint of the submission, the assignment and the grading options). Running the command
again keeps the students whose fingerprint is unchanged, merges the results that an
interrupted run left unmerged, and grades the others (new or changed submissions, and tasks
that ended without a result); ``--student`` grades one student again regardless. A task that
Slurm cancels, or that fails or times out, is reported as ``failed`` with Slurm's state and the
end of its log, and the other students are merged as usual.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import math
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from course_lib.files import write_atomically
from course_lib.grading import GradingError
from course_lib.grading.backends import check_backend
from course_lib.grading.results import Report, read_reports, write_report

if TYPE_CHECKING:
    from course_lib.grading.cli import GradeConfig
    from course_lib.grading.course import Course
    from course_lib.grading.submissions import Submission

__all__ = [
    "POLL_SECONDS",
    "grade_on_slurm",
    "merge_gradebook",
    "sbatch_arguments",
    "sbatch_script",
    "time_limit",
]

POLL_SECONDS = 2.0  # how often the batch folder is read for new results
SQUEUE_SECONDS = 10.0  # how often squeue is asked: a cluster's controller serves everybody
STATUS_SECONDS = 60.0  # a status line at least this often, even when nothing changed
RESULT_GRACE_SECONDS = 60.0  # a task that ended well may show its result late on a network file system
TIME_MARGIN_SECONDS = 600  # default --time: the student's time limit plus this, for copying and start-up
# Slurm states in which a task's result will never come.
LOST_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "TIMEOUT",
}
# The gradebook's tables that hold one student's submission of an assignment (nbgrader's schema).
SUBMISSION_TABLES = ("submitted_assignment", "submitted_notebook", "grade", "comment")

Progress = Callable[[str], object]


def grade_on_slurm(
    config: GradeConfig, course: Course, submissions: list[Submission], warning: str | None, progress: Progress
) -> list[Report]:
    """Grade the submissions as one Slurm job array; one report per submission, in input order.

    Reports are those the local backend's :func:`~course_lib.grading.pipeline.grade_student`
    makes; students skipped because they were graded before keep the report of that grading.
    """
    check_backend(config)
    area = course.root / "slurm" / course.assignment
    definition = _tree_digest([course.source, course.path("release")])
    prints = {s.student: fingerprint(definition, s, config) for s in submissions}
    forced = {config.student} if config.student is not None else set()
    with _only_run(area):
        reports = _already_graded(course, area, prints, forced)
        if reports:
            progress(
                f"{_count(len(reports))} already graded with the same submission and options: kept "
                "(grade one again with --student)"
            )
        reports.update(_recover(course, area, prints, forced, set(reports), progress))
        todo = [s for s in submissions if s.student not in reports]
        if todo:
            reports.update(_run_batch(config, course, area, todo, prints, progress))
    return [reports[s.student] for s in submissions]


# ---------------------------------------------------------------- what was graded before


def fingerprint(definition: str, submission: Submission, config: GradeConfig) -> str:
    """What decides a student's grading: the assignment, the options that change scores, the notebooks'
    contents and everything else collected about the submission (its time, its problems ...).

    File paths are left out: a zip is extracted into a new temporary folder on every run.
    """
    digest = hashlib.sha256(definition.encode())
    described = {
        name: value
        for name, value in asdict(submission).items()
        if name not in ("files", "handed_in") and not isinstance(value, Path)
    }
    options = {"sandbox": config.sandbox, "cell_timeout": config.cell_timeout, "timeout": config.student_timeout}
    digest.update(json.dumps([options, described], sort_keys=True, default=str).encode())
    for name, path in sorted(submission.files.items()):
        digest.update(b"\0" + name.encode() + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()


def _count(students: int) -> str:
    return f"{students} student" + ("s" if students != 1 else "")


def _tree_digest(folders: list[Path]) -> str:
    """A digest of the assignment as released into the course (source and release notebooks)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and ".ipynb_checkpoints" not in path.parts:
                digest.update(str(path.relative_to(folder.parent.parent)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _already_graded(course: Course, area: Path, prints: dict[str, str], forced: set[str]) -> dict[str, Report]:
    """The kept reports of the students whose marker has their current fingerprint."""
    kept = read_reports(course)
    reports = {}
    for student, print_ in prints.items():
        marker = area / "graded" / f"{student}.json"
        if student in forced or student not in kept or not marker.is_file():
            continue
        try:
            if json.loads(marker.read_text()).get("fingerprint") == print_:
                reports[student] = kept[student]
        except ValueError:
            marker.unlink()  # unreadable: the student is graded again
    return reports


@contextlib.contextmanager
def _only_run(area: Path) -> Iterator[None]:
    """One Slurm grading of an assignment at a time in a course directory: two would merge into each other."""
    area.mkdir(parents=True, exist_ok=True)
    with open(area / "driver.lock", "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.seek(0)
            raise GradingError(
                f"Another course-grade is grading this assignment in {area.parent.parent} on Slurm "
                f"({handle.read().strip() or 'process unknown'}); wait for it, or stop it first."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        yield


def _recover(
    course: Course, area: Path, prints: dict[str, str], forced: set[str], skipped: set[str], progress: Progress
) -> dict[str, Report]:
    """Merge what batches of an interrupted run finished, then remove those batches.

    Their job is cancelled first if it still runs: this process holds the lock, so nobody
    waits for it, and its students are submitted again with the rest.
    """
    reports: dict[str, Report] = {}
    for batch in sorted((area / "batches").glob("*")) if (area / "batches").is_dir() else []:
        job = (batch / "job").read_text().strip() if (batch / "job").is_file() else ""
        if job and _queued(job):
            subprocess.run(["scancel", job], capture_output=True, timeout=60)
            _wait_until_gone(job)
            progress(f"cancelled Slurm job {job}, left running by an interrupted run")
        manifest = batch / "manifest.json"
        entries = json.loads(manifest.read_text())["students"] if manifest.is_file() else []
        for entry in entries:
            student = entry["student"]
            if student in forced or student in skipped or prints.get(student) != entry["fingerprint"]:
                continue
            if (batch / "results" / student / "report.json").is_file():
                report = merge_result(course, area, batch, student, entry["fingerprint"])
                if (area / "graded" / f"{student}.json").is_file():
                    reports[student] = report
        shutil.rmtree(batch, ignore_errors=True)
    if reports:
        progress(f"merged {_count(len(reports))} graded on Slurm by an interrupted run")
    return reports


# ---------------------------------------------------------------- one batch


def time_limit(config: GradeConfig) -> str:
    """sbatch's --time for one student: the given one, or the student's time limit plus a margin, in minutes."""
    if config.time is not None:
        return config.time
    return str(math.ceil((config.student_timeout + TIME_MARGIN_SECONDS) / 60))


def sbatch_arguments(config: GradeConfig, batch: Path, count: int, assignment: str) -> list[str]:
    """sbatch's options for the array: one task per student, one CPU each, and the resources asked for.

    Given on sbatch's command line rather than as ``#SBATCH`` lines, which sbatch splits at
    spaces (a course directory's path may have some).
    """
    array = f"0-{count - 1}" + (f"%{config.max_parallel}" if config.max_parallel else "")
    arguments = [
        f"--job-name=course-grade-{assignment}",
        f"--array={array}",
        "--ntasks=1",
        "--cpus-per-task=1",
        f"--time={time_limit(config)}",
        f"--chdir={batch}",
        f"--output={batch / 'logs' / '%a.out'}",
    ]
    for name in ("partition", "gres", "mem"):
        if getattr(config, name) is not None:
            arguments.append(f"--{name}={getattr(config, name)}")
    return arguments


def sbatch_script(batch: Path, arguments: list[str]) -> str:
    """The batch script of the array, with the sbatch command that submitted it as a comment.

    It is kept in the batch folder, so that what was asked of Slurm can be read (and
    submitted again by hand) when something went wrong.
    """
    command = " ".join(_quote(word) for word in ["sbatch", *arguments, str(batch / "task.sbatch")])
    return (
        "#!/bin/sh\n"
        f"# Submitted by course-grade as: {command}\n"
        "# One student per task: the manifest's entry number SLURM_ARRAY_TASK_ID.\n"
        f"exec {_quote(sys.executable)} -m course_lib.grading.slurm_task {_quote(str(batch))}\n"
    )


def _quote(word: str) -> str:
    return "'" + word.replace("'", "'\\''") + "'"


def _run_batch(
    config: GradeConfig,
    course: Course,
    area: Path,
    submissions: list[Submission],
    prints: dict[str, str],
    progress: Progress,
) -> dict[str, Report]:
    """Stage the students, submit the array, and merge each result as it arrives."""
    batch = _stage(config, course, area, submissions, prints)
    script = batch / "task.sbatch"
    arguments = sbatch_arguments(config, batch, len(submissions), course.assignment)
    script.write_text(sbatch_script(batch, arguments))
    submitted = subprocess.run(
        ["sbatch", "--parsable", *arguments, str(script)], capture_output=True, text=True, timeout=120
    )
    if submitted.returncode != 0:
        shutil.rmtree(batch, ignore_errors=True)
        raise GradingError(f"sbatch refused the grading job: {submitted.stderr.strip()[-500:]}")
    job = submitted.stdout.strip().split(";")[0]
    (batch / "job").write_text(job + "\n")
    progress(f"Slurm job {job}: {_count(len(submissions))}, one task each ({batch}/task.sbatch)")
    watch = _Watch(course, area, batch, job, [s.student for s in submissions], prints, progress)
    try:
        reports = watch.run()
    except KeyboardInterrupt:
        subprocess.run(["scancel", job], capture_output=True, timeout=60)
        raise GradingError(
            f"Interrupted: Slurm job {job} cancelled; {len(watch.reports)} of {len(submissions)} students were "
            "graded and are kept. Run the same command again to grade the others."
        ) from None
    if watch.lost:
        progress(f"{_count(len(watch.lost))} without a result from Slurm; the task logs stay in {batch}/logs")
    else:
        shutil.rmtree(batch, ignore_errors=True)
    return reports


def _stage(
    config: GradeConfig, course: Course, area: Path, submissions: list[Submission], prints: dict[str, str]
) -> Path:
    """The batch folder: each student's expected notebooks and collected submission, the manifest, and a
    snapshot of the gradebook.

    A submission is kept as a pickle, pointing at the copied notebooks: whatever collecting
    found (its time, its problems ...) reaches the task as the local backend would see it. The
    pickles are written and read by the instructor's own processes in the course directory.
    """
    batch = area / "batches" / time.strftime(f"%Y%m%d-%H%M%S-{os.getpid()}")
    for name in ("results", "logs", "submissions"):
        (batch / name).mkdir(parents=True, exist_ok=True)
    entries = []
    for submission in submissions:
        folder = batch / "submissions" / submission.student
        folder.mkdir()
        files = {}
        for name, path in submission.files.items():
            files[name] = folder / f"{name}.ipynb"
            shutil.copyfile(path, files[name])
        (folder / "submission.pickle").write_bytes(pickle.dumps(replace(submission, files=files)))
        entries.append(
            {
                "student": submission.student,
                "fingerprint": prints[submission.student],
                "submission": str((folder / "submission.pickle").relative_to(batch)),
            }
        )
    _snapshot(course.root / "gradebook.db", batch / "gradebook.db")
    manifest = {
        "course": str(course.root),
        "assignment": course.assignment,
        "sandbox": config.sandbox,
        "cell_timeout": config.cell_timeout,
        "student_timeout": config.student_timeout,
        "students": entries,
    }
    write_atomically(batch / "manifest.json", lambda handle: json.dump(manifest, handle, indent=1))
    return batch


def _snapshot(database: Path, target: Path) -> None:
    """A consistent copy of the gradebook (sqlite's backup), read by every task and written by none."""
    with contextlib.closing(sqlite3.connect(database, timeout=120)) as source:
        with contextlib.closing(sqlite3.connect(target)) as copy:
            source.backup(copy)


class _Watch:
    """Waiting for one array: results merged as they arrive, lost tasks reported, progress shown."""

    def __init__(
        self,
        course: Course,
        area: Path,
        batch: Path,
        job: str,
        students: list[str],
        prints: dict[str, str],
        progress: Progress,
    ) -> None:
        self.course, self.area, self.batch, self.job = course, area, batch, job
        self.students, self.prints, self.progress = students, prints, progress
        self.pending = dict(enumerate(students))
        self.reports: dict[str, Report] = {}
        self.lost: list[str] = []  # students whose task ended without a result
        self.ended: dict[int, tuple[float, str]] = {}  # index -> (when squeue stopped listing it, Slurm state)
        self.queued: dict[int, str] = {index: "PENDING" for index in self.pending}
        self.start = time.monotonic()
        self.last_squeue = -math.inf
        self.last_status = ("", -math.inf)
        self.squeue_failed = False

    def run(self) -> dict[str, Report]:
        """Poll until every student has a report."""
        while self.pending:
            self._collect()
            if not self.pending:
                break
            now = time.monotonic()
            if now - self.last_squeue >= SQUEUE_SECONDS:
                self.last_squeue = now
                queued = _queued(self.job)
                if queued is not None:
                    self.queued = queued
                    self._lost(now)
                elif not self.squeue_failed:
                    self.squeue_failed = True  # said once: results still arrive through the batch folder
                    self.progress(f"squeue did not answer about job {self.job}; still waiting for the results")
            self._status(now)
            if self.pending:
                time.sleep(POLL_SECONDS)
        return self.reports

    def _collect(self) -> None:
        """Merge the results that arrived since the last look."""
        results = self.batch / "results"
        arrived = {entry.name for entry in os.scandir(results) if (Path(entry.path) / "report.json").is_file()}
        for index, student in list(self.pending.items()):
            if student in arrived:
                self._done(index, merge_result(self.course, self.area, self.batch, student, self.prints[student]))

    def _lost(self, now: float) -> None:
        """Report the tasks that left the queue without a result: at once when Slurm says they failed."""
        for index, student in list(self.pending.items()):
            if index in self.queued:
                self.ended.pop(index, None)  # queued again (requeued after a node failure)
                continue
            if index not in self.ended:
                self.ended[index] = (now, _final_state(self.job, index))
            since, state = self.ended[index]
            if state.split()[0] in LOST_STATES or now - since >= RESULT_GRACE_SECONDS:
                self._collect()  # the result may have arrived after all
                if student in self.pending.values():
                    self.lost.append(student)
                    self._done(index, lose_result(self.course, self.area, self.batch, self.job, index, student, state))

    def _done(self, index: int, report: Report) -> None:
        del self.pending[index]
        self.reports[report.student] = report
        self.progress(
            f"[{len(self.reports)}/{len(self.students)}] {report.student}: {report.status} in {report.seconds:.1f} s"
            + (f" ({len(report.problems)} problems)" if report.problems else "")
        )

    def _status(self, now: float) -> None:
        """One line on the array when its counts change, or every minute: done, running, waiting, time left."""
        running = sum(1 for i in self.pending if self.queued.get(i) == "RUNNING")
        waiting = len(self.pending) - running
        counts = f"{len(self.reports)}/{len(self.students)} done, {running} running, {waiting} waiting"
        text, when = self.last_status
        if counts == text and now - when < STATUS_SECONDS:
            return
        self.last_status = (counts, now)
        line = f"Slurm job {self.job}: {counts}"
        if self.reports:
            left = (now - self.start) / len(self.reports) * len(self.pending)
            line += f"; about {_duration(left)} left at the pace so far"
        self.progress(line)


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


# ---------------------------------------------------------------- asking Slurm


def _queued(job: str) -> dict[int, str] | None:
    """The array's tasks still pending or running (index -> state); None when squeue could not answer."""
    try:
        result = subprocess.run(
            ["squeue", "--noheader", "--array", "--jobs", job, "--format", "%K %T"],
            capture_output=True,
            text=True,
            timeout=60,
        )
    except subprocess.TimeoutExpired:
        return None
    if result.returncode != 0:
        # A finished job leaves squeue's memory after a few minutes (MinJobAge): then nothing is queued.
        return {} if "Invalid job id" in result.stderr else None
    queued = {}
    for line in result.stdout.splitlines():
        index, _, state = line.strip().partition(" ")
        if index.isdigit():
            queued[int(index)] = state
    return queued


def _wait_until_gone(job: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _queued(job):
        time.sleep(1)


def _final_state(job: str, index: int) -> str:
    """How Slurm says an array task ended (e.g. ``CANCELLED``, ``TIMEOUT``), or ``UNKNOWN``.

    ``scontrol`` knows a finished job for a few minutes; ``sacct`` afterwards, where the
    cluster keeps accounting.
    """
    task = f"{job}_{index}"
    commands = (
        ["scontrol", "--oneliner", "show", "job", task],
        ["sacct", "--noheader", "--parsable2", "--allocations", "--jobs", task, "--format", "State,ExitCode"],
    )
    for command in commands:
        if shutil.which(command[0]) is None:
            continue
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=60)
        except subprocess.TimeoutExpired:
            continue
        if result.returncode != 0 or not result.stdout.strip():
            continue
        fields = dict(part.split("=", 1) for part in result.stdout.split() if "=" in part)
        if "JobState" in fields:
            return f"{fields['JobState']} (exit code {fields.get('ExitCode', '?')}, reason {fields.get('Reason', '?')})"
        state, _, code = result.stdout.strip().splitlines()[0].partition("|")
        return f"{state} (exit code {code or '?'})"
    return "UNKNOWN"


# ---------------------------------------------------------------- merging one student


def merge_result(course: Course, area: Path, batch: Path, student: str, print_: str) -> Report:
    """Bring one task's result into the course directory, as if the student had been graded here.

    Files first, then the gradebook in one transaction, then the report and the marker:
    stopped anywhere in between, the next run merges the same result again.
    """
    result = batch / "results" / student
    try:
        record = json.loads((result / "report.json").read_text())
        report = Report(**record["report"])
        if record.get("fingerprint") != print_:
            raise GradingError("it graded another version of the submission")
        for kind in ("submitted", "autograded"):
            shutil.rmtree(course.path(kind, student), ignore_errors=True)
            if (result / kind).is_dir():
                course.path(kind, student).parent.mkdir(parents=True, exist_ok=True)
                shutil.copytree(result / kind, course.path(kind, student))
        if (result / "student.log").is_file():
            log = course.root / report.log
            log.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(result / "student.log", log)
            with open(log, "a") as handle:  # where it ran, to find the task's own log and the node
                handle.write(
                    f"[course_lib.grading.slurm] graded by Slurm task {record.get('task')} on {record.get('node')}\n"
                )
        task_gradebook = result / "gradebook.db" if (result / "gradebook.db").is_file() else None
        # A grading that ran to its end is kept, whatever its status; one that could not run is tried again.
        return _finish(course, area, report, task_gradebook, print_ if record.get("graded") else None)
    except (GradingError, OSError, ValueError, TypeError, KeyError, sqlite3.DatabaseError) as error:
        problem = f"the result of the Slurm task could not be merged ({error}); grade again"
        return _finish(course, area, Report(student, status="failed", problems=[problem]), None, None)


def lose_result(course: Course, area: Path, batch: Path, job: str, index: int, student: str, state: str) -> Report:
    """The report of a task that ended without a result: Slurm's state and the end of its log."""
    log = batch / "logs" / f"{index}.out"
    tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log.is_file() else []
    problem = f"the Slurm task {job}_{index} ended as {state} without a result"
    if tail:
        problem += ": " + " | ".join(line.strip()[:200] for line in tail)
    elif not log.is_file():
        problem += f" and left no log (is {course.root} on a file system the nodes share?)"
    report = Report(student, status="failed", problems=[problem + f"; full log {log}"])
    return _finish(course, area, report, None, None)


def _finish(course: Course, area: Path, report: Report, task_gradebook: Path | None, print_: str | None) -> Report:
    """The student's gradebook rows, report and marker; without a gradebook the student has no submission."""
    kinds = ("feedback",) if task_gradebook is not None else ("submitted", "autograded", "feedback")
    for kind in kinds:  # feedback is written again after the merge
        shutil.rmtree(course.path(kind, report.student), ignore_errors=True)
    merge_gradebook(course.root / "gradebook.db", task_gradebook, course.assignment, report.student)
    write_report(course, report)
    marker = area / "graded" / f"{report.student}.json"
    if print_ is None:
        marker.unlink(missing_ok=True)  # graded again next time
    else:
        write_atomically(marker, lambda handle: json.dump({"fingerprint": print_}, handle))
    return report


def merge_gradebook(gradebook: Path, task_gradebook: Path | None, assignment: str, student: str) -> None:
    """Make the student's submission of the assignment in ``gradebook`` the one in ``task_gradebook``.

    Both are nbgrader gradebooks of the same course, the task's a copy of the course's taken
    before grading, so the assignment, its notebooks and cells have the same ids in both; the
    student's submission, notebooks, grades and comments are copied row by row, in one
    transaction. Without ``task_gradebook`` (the student was not graded) their submission is
    removed, as the local backend removes it.
    """
    with contextlib.closing(sqlite3.connect(gradebook, timeout=300, isolation_level=None)) as db:
        if task_gradebook is not None:
            db.execute("ATTACH DATABASE ? AS task", (str(task_gradebook),))
        db.execute("BEGIN IMMEDIATE")
        try:
            _delete_submission(db, "main", assignment, student)
            if task_gradebook is not None:
                _copy_submission(db, assignment, student)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise


def _submission_rows(schema: str) -> dict[str, str]:
    """For each table of SUBMISSION_TABLES, the condition that selects one student's rows (parameters:
    assignment name, student id)."""
    submission = (
        f"SELECT s.id FROM {schema}.submitted_assignment s JOIN {schema}.assignment a ON s.assignment_id = a.id "
        "WHERE a.name = ? AND s.student_id = ?"
    )
    notebooks = f"SELECT id FROM {schema}.submitted_notebook WHERE assignment_id IN ({submission})"
    return {
        "submitted_assignment": f"id IN ({submission})",
        "submitted_notebook": f"assignment_id IN ({submission})",
        "grade": f"notebook_id IN ({notebooks})",
        "comment": f"notebook_id IN ({notebooks})",
    }


def _delete_submission(db: sqlite3.Connection, schema: str, assignment: str, student: str) -> None:
    for table, where in reversed(_submission_rows(schema).items()):
        db.execute(f"DELETE FROM {schema}.{table} WHERE {where}", (assignment, student))


def _columns(db: sqlite3.Connection, schema: str, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA {schema}.table_info({table})")]


def _copy_submission(db: sqlite3.Connection, assignment: str, student: str) -> None:
    """Copy the student's rows from the attached task gradebook, after checking that they fit."""
    where = _submission_rows("task")
    for table in SUBMISSION_TABLES:
        if _columns(db, "main", table) != _columns(db, "task", table):
            raise GradingError(f"The gradebook of a Slurm task has another {table} table: was nbgrader upgraded?")
    unknown = db.execute(
        f"SELECT count(*) FROM task.submitted_notebook WHERE {where['submitted_notebook']} "
        "AND notebook_id NOT IN (SELECT id FROM main.notebook)",
        (assignment, student),
    ).fetchone()[0]
    for table in ("grade", "comment"):
        unknown += db.execute(
            f"SELECT count(*) FROM task.{table} WHERE {where[table]} "
            "AND cell_id NOT IN (SELECT id FROM main.base_cell)",
            (assignment, student),
        ).fetchone()[0]
    if unknown:
        raise GradingError(
            f"The assignment {assignment} was released again while {student} was graded on Slurm; grade again."
        )
    db.execute("INSERT OR IGNORE INTO main.student (id) VALUES (?)", (student,))
    for table in SUBMISSION_TABLES:
        columns = ", ".join(_columns(db, "main", table))
        db.execute(
            f"INSERT INTO main.{table} ({columns}) SELECT {columns} FROM task.{table} WHERE {where[table]}",
            (assignment, student),
        )
