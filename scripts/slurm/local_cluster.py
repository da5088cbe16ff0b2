"""A single-node Slurm cluster on this machine, for the tests, the benchmark and trying things out.

python scripts/slurm/local_cluster.py   # starts it, prints the SLURM_CONF to export, stops on Ctrl-C or SIGTERM

It runs Debian's daemons (packages ``slurm-wlm`` and ``munge``; ``scripts/system_packages.sh``
installs them) from a temporary folder, touching nothing of the system's own Slurm or
munge: ``munged`` with its own key and socket, ``slurmctld`` and ``slurmd`` with a
``slurm.conf`` that describes this machine as the one node of a partition ``debug``, on
free ports. Processes are tracked by ``proctrack/linuxproc`` and not confined
(``task/none``): containers rarely offer the cgroups that a production cluster uses. Jobs
run as the user who started the cluster (root in the project's CI, as the grader).

Clients find the cluster through the environment variable ``SLURM_CONF``
(:attr:`LocalCluster.env`). :func:`local_cluster` stops everything it started, jobs
first, and removes the folder.
"""

from __future__ import annotations

import argparse
import contextlib
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scancel", "scontrol", "srun")
SBIN = ("/usr/local/sbin", "/usr/sbin", "/sbin")  # where Debian puts daemons, often outside a user's PATH
INSTALL_HINT = "install Debian's slurm-wlm and munge (bash scripts/system_packages.sh does it as root)"


class ClusterUnavailable(RuntimeError):
    """The local cluster cannot start here; the message says why and what to do."""


@dataclass
class LocalCluster:
    """A running single-node cluster: its folder, configuration, node and daemons."""

    folder: Path
    conf: Path
    node: str
    cpus: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        """The environment in which Slurm's commands talk to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *command: str, timeout: float = 60) -> subprocess.CompletedProcess:
        """One Slurm client command against this cluster."""
        return subprocess.run(command, env=self.env, capture_output=True, text=True, timeout=timeout)

    def logs(self, lines: int = 15) -> str:
        """The end of each daemon's log, to say why something did not work."""
        parts = []
        for path in sorted(self.folder.glob("*.log")):
            tail = path.read_text(errors="replace").strip().splitlines()[-lines:]
            parts.append(f"--- {path.name}\n" + "\n".join(tail))
        return "\n".join(parts)


def find(command: str) -> str | None:
    """A command on PATH or in the system's sbin folders."""
    return shutil.which(command) or shutil.which(command, path=os.pathsep.join(SBIN))


def _free_port() -> int:
    """A port nobody listens on now (another test cluster on this machine may use the usual ones)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for(check: Callable[[], bool], timeout: float, what: str, cluster: LocalCluster) -> None:
    """Wait until ``check()``; fail with the daemons' logs when a daemon stops or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, process in cluster.processes.items():
            if process.poll() is not None:
                raise ClusterUnavailable(f"{name} stopped (exit code {process.returncode}):\n{cluster.logs()}")
        if check():
            return
        time.sleep(0.5)
    raise ClusterUnavailable(f"{what} within {timeout:.0f} s:\n{cluster.logs()}")


def slurm_conf(folder: Path, node_line: str, user: str, ports: tuple[int, int]) -> str:
    """The cluster's slurm.conf: this machine as node and controller, state and logs in ``folder``."""
    return f"""# A single-node test cluster written by scripts/slurm/local_cluster.py.
ClusterName=course-local
SlurmctldHost=localhost
SlurmUser={user}
SlurmdUser={user}
SlurmctldPort={ports[0]}
SlurmdPort={ports[1]}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={folder}/munge/socket
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
KillWait=5
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
{node_line} NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def start(timeout: float = 60) -> LocalCluster:
    """Start munged, slurmctld and slurmd in a new temporary folder; return when the node is idle.

    Raises :class:`ClusterUnavailable` (with the daemons' logs) when a program is missing
    or the node does not come up; whatever was started is stopped first.
    """
    missing = [name for name in DAEMONS + CLIENTS if find(name) is None]
    if missing:
        raise ClusterUnavailable(f"Slurm's programs {', '.join(missing)} are not installed: {INSTALL_HINT}.")
    # A short path: munge's socket path must fit in a unix socket address (108 bytes).
    folder = Path(tempfile.mkdtemp(prefix="slurm-", dir="/tmp"))
    for name in ("state", "spool", "munge"):
        (folder / name).mkdir()
    (folder / "munge").chmod(0o711)  # munged wants its socket's folder reachable, not writable, by others
    described = subprocess.run([find("slurmd"), "-C"], capture_output=True, text=True, timeout=60)
    node_line = described.stdout.strip().splitlines()[0] if described.returncode == 0 and described.stdout else ""
    if not node_line.startswith("NodeName="):
        shutil.rmtree(folder, ignore_errors=True)
        raise ClusterUnavailable(f"slurmd -C could not describe this machine: {described.stderr.strip()[-300:]}")
    fields = dict(word.split("=", 1) for word in node_line.split())
    cluster = LocalCluster(folder, folder / "slurm.conf", fields["NodeName"], int(fields.get("CPUs", "1")))
    try:
        key = folder / "munge" / "munge.key"
        subprocess.run([find("mungekey"), "--create", f"--keyfile={key}"], check=True, capture_output=True)
        cluster.processes["munged"] = subprocess.Popen(
            [
                find("munged"),
                "--foreground",
                "--force",  # as root, munged wants to be told that this is intended
                f"--socket={folder}/munge/socket",
                f"--key-file={key}",
                f"--pid-file={folder}/munge/munged.pid",
                f"--seed-file={folder}/munge/munged.seed",
                f"--log-file={folder}/munged.log",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        _wait_for(lambda: (folder / "munge" / "socket").exists(), 30, "munged did not open its socket", cluster)
        cluster.conf.write_text(slurm_conf(folder, node_line, getpass.getuser(), (_free_port(), _free_port())))
        for daemon in ("slurmctld", "slurmd"):
            with open(folder / f"{daemon}.out", "w") as output:  # what a daemon says before its log opens
                cluster.processes[daemon] = subprocess.Popen(
                    [find(daemon), "-D", "-f", str(cluster.conf)], env=cluster.env, stdout=output, stderr=output
                )

        def idle() -> bool:
            state = cluster.run("sinfo", "--noheader", "--Node", "--format=%T")
            return state.returncode == 0 and state.stdout.strip() == "idle"

        _wait_for(idle, timeout, "the node did not become idle", cluster)
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: LocalCluster) -> None:
    """Cancel the cluster's jobs, stop its daemons (those this module started) and remove its folder."""
    if "slurmd" in cluster.processes and cluster.processes["slurmd"].poll() is None:
        cluster.run("scancel", f"--user={getpass.getuser()}")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            queue = cluster.run("squeue", "--noheader")
            if queue.returncode != 0 or not queue.stdout.strip():
                break
            time.sleep(0.5)
    for name in ("slurmd", "slurmctld", "munged"):
        process = cluster.processes.get(name)
        if process is None or process.poll() is not None:
            continue
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    shutil.rmtree(cluster.folder, ignore_errors=True)


@contextlib.contextmanager
def local_cluster(timeout: float = 60) -> Iterator[LocalCluster]:
    """A started cluster for the ``with`` block, stopped after it."""
    cluster = start(timeout)
    try:
        yield cluster
    finally:
        stop(cluster)


def main(argv: list[str] | None = None) -> int:
    """Start the cluster and keep it until Ctrl-C."""
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    for number in (signal.SIGINT, signal.SIGTERM):  # also when started in the background, where SIGINT is ignored
        signal.signal(number, signal.default_int_handler)
    try:
        with local_cluster() as cluster:
            print(f"Slurm is running on node {cluster.node} ({cluster.cpus} CPUs). In another shell:")
            print(f"    export SLURM_CONF={cluster.conf}")
            print("Ctrl-C stops it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                signal.pause()
    except ClusterUnavailable as error:
        print(f"local_cluster: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
