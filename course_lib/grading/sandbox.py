"""Running an untrusted notebook kernel: no network, no instructor files, resource limits.

``SandboxedKernelManager`` is a jupyter_client kernel manager; nbclient and nbgrader use it
through ``c.Execute.kernel_manager_class``. Each kernel runs under bubblewrap (``bwrap``):

- new PID, network, IPC and UTS namespaces: no network at all, no view of other processes,
  and every process the kernel started dies with it;
- a file system made of read-only binds (system, Python, the venv, ``course_lib``) and two
  small tmpfs (``/home/student``, the working folder and ``HOME``, and ``/tmp``); the
  instructor's course folder, gradebook and other submissions are simply not there;
- a cleared environment, so nothing tells the kernel it is being graded;
- resource limits set with ``prlimit`` (memory, CPU time, processes, file size) and a
  wall-clock limit after which the whole sandbox is killed;
- when the grader runs as root, the kernel runs as an unprivileged uid (``nobody``).

The kernel talks to the grader over ZeroMQ's ``ipc`` transport: unix sockets in a private
folder bound into the sandbox. The client side caps how much output it accepts per cell,
so endless printing cannot fill the grader's memory.

Reading the answer code for constructs that fool the tests is :mod:`course_lib.grading.audit`:
the sandbox bounds what code can reach, not what it does to the tests in its own process.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Integer, List, Type, Unicode, default

from course_lib.errors import CourseError

HOME = "/home/student"
RUN_DIR = "/run/jupyter"
OUTPUT_MESSAGES = ("stream", "display_data", "update_display_data", "execute_result", "error")
PASSED_ENV = (
    "LANG",
    "LC_ALL",
    "TZ",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHONHASHSEED",
    "MPLBACKEND",
)
MiB = 1024**2
SYSTEM_PATHS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc")


class SandboxUnavailable(CourseError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


def bwrap_path() -> str:
    """The bubblewrap executable, or a SandboxUnavailable saying how to get one."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so student code cannot be isolated: "
            "install it (Debian/Ubuntu: apt-get install bubblewrap), or grade trusted "
            "notebooks only with the sandbox switched off (--no-sandbox)."
        )
    return path


def runs_as_root() -> bool:
    """Whether the grader is root: then bwrap needs no user namespace and the kernel drops to ``nobody``."""
    return os.geteuid() == 0


def read_only_paths() -> list[str]:
    """What the kernel needs to see: the system, the Python installation, the venv,
    course_lib and its shipped data. Nothing else of the host is visible."""
    import course_lib

    package = Path(course_lib.__file__).resolve().parent
    paths = [*SYSTEM_PATHS, sys.base_prefix, sys.prefix, str(package), str(package.parent / "data")]
    real = Path(sys.executable).resolve().parent.parent
    paths.append(str(real))
    unique = []
    for path in paths:
        if os.path.lexists(path) and path not in unique:
            unique.append(path)
    return unique


def mount_arguments(paths: Sequence[str], scratch: Sequence[str] = ()) -> list[str]:
    """bwrap arguments binding each path read-only (symlinks such as /bin -> usr/bin
    are recreated as symlinks). The folders bwrap creates above a bind copy the host's
    modes (/root is 0700), so they are opened to let the unprivileged kernel through;
    the ``scratch`` mount points (a project cloned under /tmp) keep their own modes."""
    args, parents = [], list(scratch)
    for path in paths:
        if os.path.islink(path) and os.path.dirname(path) == "/":
            args += ["--symlink", os.readlink(path), path]
        else:
            args += ["--ro-bind", path, path]
        for parent in Path(path).parents:
            inside_bind = any(Path(other) in [parent, *parent.parents] for other in paths)
            if str(parent) != "/" and not inside_bind and str(parent) not in parents:
                parents.append(str(parent))
    for parent in sorted(set(parents) - set(scratch)):
        args += ["--chmod", "0755", parent]
    return args


def limit_arguments(memory: int, cpu_seconds: int, processes: int, file_size: int) -> list[str]:
    """prlimit arguments; soft and hard limits are equal except CPU time, whose soft
    limit sends SIGXCPU a few seconds before the hard one kills."""
    limits = [f"--as={memory}", f"--cpu={cpu_seconds}:{cpu_seconds + 5}", f"--nproc={processes}"]
    return ["prlimit", *limits, f"--fsize={file_size}", "--core=0", "--"]


def sandbox_command(
    kernel_argv: Sequence[str],
    *,
    run_dir: str | Path,
    env: Mapping[str, str],
    memory: int,
    cpu_seconds: int,
    processes: int,
    file_size: int,
    scratch_size: int,
    uid: int = 65534,
    extra_read_only: Sequence[str] = (),
) -> list[str]:
    """The full command line: bwrap, the uid drop, the limits, then the kernel.

    ``run_dir`` (host) appears inside as RUN_DIR; it holds the connection file and the
    sockets. ``env`` is the kernel's whole environment.
    """
    args = [bwrap_path(), "--die-with-parent", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts"]
    args += ["--unshare-cgroup-try", "--hostname", "jupyter"]
    if not runs_as_root():
        args += ["--unshare-user"]
    args += scratch_arguments(scratch_size)
    args += mount_arguments(read_only_paths() + list(extra_read_only), scratch=("/tmp", "/dev/shm", HOME))
    args += ["--bind", str(run_dir), RUN_DIR]
    args += ["--chmod", "0755", str(Path(RUN_DIR).parent), "--chmod", "0755", str(Path(HOME).parent)]
    args += ["--chdir", HOME, "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    if runs_as_root():
        args += drop_privileges(uid)
    args += ["--"] + limit_arguments(memory, cpu_seconds, processes, file_size)
    return args + list(kernel_argv)


def scratch_arguments(size: int) -> list[str]:
    """bwrap arguments for /proc, /dev and the writable tmpfs (``/dev/shm``, ``/tmp``, HOME) of ``size`` bytes.

    The scratch folders come before the read-only binds, so that a project or venv that
    lives under /tmp (a CI clone, say) is bound on top of the fresh /tmp rather than hidden by it.
    """
    args = ["--proc", "/proc", "--dev", "/dev"]
    for folder in ("/dev/shm", "/tmp", HOME):
        args += ["--perms", "1777", "--size", str(size), "--tmpfs", folder]
    return args


def drop_privileges(uid: int) -> list[str]:
    """As root: bwrap keeps only what setpriv needs, and setpriv becomes ``uid`` with no capabilities at all."""
    keep = ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP", "--"]
    become = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
    return keep + become + ["--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def kernel_environment(launch_env: Mapping[str, str]) -> dict[str, str]:
    """A clean environment: nothing of the grader's (NBGRADER_*, paths, tokens) leaks.
    JPY_PARENT_PID=1 stops ipykernel from watching a parent it cannot see (the sandbox
    dies with the grader anyway)."""
    env = {
        "PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
        "HOME": HOME,
        "USER": "student",
        "LOGNAME": "student",
        "LANG": "C.UTF-8",
        "PYTHONNOUSERSITE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "JPY_PARENT_PID": "1",
    }
    for name in PASSED_ENV:
        if launch_env.get(name):
            env[name] = launch_env[name]
    return env


def message_size(content: dict[str, Any]) -> int:
    """Rough size in characters of an output message's payload."""
    if "text" in content:
        return len(content["text"])
    if "traceback" in content:
        return sum(len(line) for line in content["traceback"])
    return sum(len(str(value)) for value in content.get("data", {}).values())


class OutputCappedChannel(AsyncZMQSocketChannel):
    """IOPub channel that accepts at most ``limit`` characters of output per cell.

    Past the limit, output messages are dropped after one note saying so; errors are
    kept (with the traceback shortened) so a failing test still fails. A message above
    the socket's size limit makes ZeroMQ drop the connection, and with it messages that
    may carry test failures: the channel then calls ``on_lost`` (which kills the kernel)
    rather than let later cells look clean.
    """

    limit = MiB

    def __init__(self, socket: zmq.asyncio.Socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(socket, *args, **kwargs)
        self.used: dict[str | None, int] = {}
        self.on_lost: Callable[[], None] | None = None
        self.monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.poller = zmq.asyncio.Poller()
        self.poller.register(socket, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:
        """The next message, output past the cell's limit dropped or cut (errors always kept)."""
        while True:
            msg = await self.next_message(timeout)
            if msg["msg_type"] not in OUTPUT_MESSAGES:
                return msg
            parent = msg["parent_header"].get("msg_id")
            used = self.used.get(parent, 0)
            self.used[parent] = used + message_size(msg["content"])
            if self.used[parent] <= self.limit:
                return msg
            if msg["msg_type"] == "error":
                msg["content"]["traceback"] = msg["content"]["traceback"][-20:]
                msg["content"]["evalue"] = msg["content"]["evalue"][:1000]
                return msg
            if used <= self.limit:
                return self.truncated(msg, self.limit - used)

    async def next_message(self, timeout: float | None) -> dict[str, Any]:
        """The next message from the socket; a dropped connection kills the kernel (``on_lost``)."""
        timeout_ms = None if timeout is None else int(timeout * 1000)
        ready = dict(await self.poller.poll(timeout_ms))
        if self.monitor in ready:
            await self.monitor.recv_multipart()
            if self.on_lost is not None:
                self.on_lost()
            await asyncio.sleep(timeout if timeout is not None else 3600)
            raise Empty
        if self.socket in ready:
            return await self._recv()
        raise Empty

    def truncated(self, msg: dict[str, Any], room: int) -> dict[str, Any]:
        """The message cut to ``room`` characters, as a stream with a note saying so."""
        content = msg["content"]
        text = content["text"][:room] if msg["msg_type"] == "stream" else ""
        msg["msg_type"] = msg["header"]["msg_type"] = "stream"
        msg["content"] = {
            "name": content.get("name", "stdout"),
            "text": text + (f"\n[output truncated: this cell printed more than {self.limit} characters]\n"),
        }
        return msg


def capped_context(message_size_limit: int) -> zmq.asyncio.Context:
    """A ZeroMQ context whose sockets refuse messages above the size limit."""
    context = zmq.asyncio.Context()
    context.setsockopt(zmq.MAXMSGSIZE, message_size_limit)
    return context


class SandboxedKernelClient(AsyncKernelClient):
    """Kernel client that caps output per cell and the size of any one message."""

    iopub_channel_class = Type(OutputCappedChannel)
    output_limit = Integer(MiB)
    message_size_limit = Integer(64 * MiB)

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return capped_context(self.message_size_limit)

    @property
    def iopub_channel(self) -> Any:
        """The capped IOPub channel, told how to kill the sandbox when its connection breaks."""
        channel = super().iopub_channel
        if channel is not None:
            channel.limit = self.output_limit
            kill = getattr(self.parent, "kill_sandbox", None)
            if kill is not None:
                channel.on_lost = lambda: kill("its output connection broke (a message too large)")
        return channel


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager that runs each kernel isolated in a bubblewrap sandbox."""

    sandbox = Bool(True, help="Isolate the kernel. Switch off only for trusted notebooks.").tag(config=True)
    memory_limit = Integer(8 * 1024 * MiB, help="Address-space limit (bytes) per process.").tag(config=True)
    cpu_time_limit = Integer(900, help="CPU seconds per process before it is killed.").tag(config=True)
    wall_time_limit = Float(1800.0, help="Seconds after which the whole sandbox is killed.").tag(config=True)
    process_limit = Integer(512, help="Processes and threads of the sandbox user.").tag(config=True)
    file_size_limit = Integer(256 * MiB, help="Largest file the kernel may write (bytes).").tag(config=True)
    scratch_size = Integer(512 * MiB, help="Size of each writable tmpfs (bytes).").tag(config=True)
    output_limit = Integer(1 * MiB, help="Characters of output accepted per cell.").tag(config=True)
    message_size_limit = Integer(64 * MiB, help="Largest ZeroMQ message accepted (bytes).").tag(config=True)
    sandbox_uid = Integer(65534, help="Unprivileged uid the kernel runs as when grading as root.").tag(config=True)
    extra_read_only = List(Unicode(), help="More host paths the kernel may read.").tag(config=True)
    interrupt_grace = Float(
        10.0, help="Seconds a kernel has to answer after an interrupt before the sandbox is killed (0: never)."
    ).tag(config=True)

    client_factory = Type(SandboxedKernelClient)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run_dir: Path | None = None
        self.watchdog: threading.Timer | None = None
        self.interrupt_check: threading.Thread | None = None

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        return capped_context(self.message_size_limit)

    def client(self, **kwargs: Any) -> AsyncKernelClient:
        """A client with this manager's output and message-size limits."""
        kwargs.setdefault("output_limit", self.output_limit)
        kwargs.setdefault("message_size_limit", self.message_size_limit)
        return super().client(**kwargs)

    async def _async_pre_start_kernel(self, **kw: Any) -> tuple[list[str], dict[str, Any]]:
        """With the sandbox, the connection file and sockets go to a private folder bound into it."""
        if self.sandbox:
            bwrap_path()
            self.run_dir = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
            if runs_as_root():
                os.chown(self.run_dir, self.sandbox_uid, self.sandbox_uid)
            self.transport = "ipc"
            self.connection_file = str(self.run_dir / "kernel.json")
            self.ip = str(self.run_dir / "kernel-ipc")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        """Launch the kernel wrapped in the sandbox, with a clean environment and a wall-clock watchdog."""
        if self.sandbox:
            kw["env"] = kernel_environment(kw.get("env") or os.environ)
            kw["cwd"] = str(self.run_dir)
            kernel_cmd = self.sandboxed(kernel_cmd, kw["env"])
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if self.sandbox and self.wall_time_limit:
            self.watchdog = threading.Timer(
                self.wall_time_limit, self.kill_sandbox, [f"it ran past {self.wall_time_limit:.0f} s"]
            )
            self.watchdog.daemon = True
            self.watchdog.start()

    def sandboxed(self, kernel_cmd: list[str], env: Mapping[str, str]) -> list[str]:
        """The kernel command wrapped in the sandbox, reading a connection file whose
        socket paths are the ones seen from inside."""
        inside = dict(self.get_connection_info(session=False))
        inside["ip"] = f"{RUN_DIR}/kernel-ipc"
        inside["key"] = self.session.key.decode()
        inside_file = self.run_dir / "kernel-inside.json"
        inside_file.write_text(json.dumps(inside))
        inside_file.chmod(0o644)
        kernel_argv = [f"{RUN_DIR}/{inside_file.name}" if arg == self.connection_file else arg for arg in kernel_cmd]
        return sandbox_command(
            kernel_argv,
            run_dir=self.run_dir,
            env=env,
            memory=self.memory_limit,
            cpu_seconds=self.cpu_time_limit,
            processes=self.process_limit,
            file_size=self.file_size_limit,
            scratch_size=self.scratch_size,
            uid=self.sandbox_uid,
            extra_read_only=self.extra_read_only,
        )

    def kill_sandbox(self, reason: str = "it ran too long") -> None:
        """Kill the sandbox (its PID namespace dies with bwrap)."""
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.poll() is None:
            self.log.warning("Killing the kernel's sandbox: %s", reason)
            process.kill()

    async def _async_interrupt_kernel(self) -> None:
        """Interrupt through the control channel: a signal sent from outside would hit
        bwrap, not the kernel, inside its own PID namespace. A kernel still busy
        ``interrupt_grace`` seconds later (code that ignores SIGINT or catches
        KeyboardInterrupt) is killed, so that every later cell does not wait out its own
        time limit behind it."""
        if self.sandbox and self.has_kernel:
            msg = self.session.msg("interrupt_request", content={})
            self._connect_control_socket()
            self.session.send(self._control_socket, msg)
            if self.interrupt_grace and not (self.interrupt_check and self.interrupt_check.is_alive()):
                self.interrupt_check = threading.Thread(
                    target=self._kill_if_still_busy, args=(self.interrupt_grace,), daemon=True
                )
                self.interrupt_check.start()
            return
        await super()._async_interrupt_kernel()

    def _kill_if_still_busy(self, grace: float) -> None:
        """Ask the kernel for its info on the shell channel, which it answers only once the
        interrupted code has stopped; kill the sandbox when no answer comes in time."""
        client = BlockingKernelClient()
        client.load_connection_info(self.get_connection_info())
        client.start_channels(shell=True, iopub=False, stdin=False, hb=False, control=False)
        try:
            client.kernel_info()
            client.get_shell_msg(timeout=grace)
        except Empty:
            self.kill_sandbox(f"it was still busy {grace:.0f} s after an interrupt")
        except Exception as error:  # the kernel went away meanwhile: nothing left to stop
            self.log.debug("interrupt check ended: %s", error)
        finally:
            client.stop_channels()

    interrupt_kernel = _async_interrupt_kernel

    async def _async_cleanup_resources(self, restart: bool = False) -> None:
        """Stop the watchdog and remove the private folder of sockets once the kernel is gone."""
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        await super()._async_cleanup_resources(restart=restart)
        if self.run_dir is not None and not restart:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    cleanup_resources = _async_cleanup_resources


def check_sandbox() -> None:
    """Start a trivial command in the sandbox; raise SandboxUnavailable if it cannot run."""
    with tempfile.TemporaryDirectory(prefix="course-sandbox-") as run_dir:
        if runs_as_root():
            os.chown(run_dir, 65534, 65534)
        command = sandbox_command(
            [sys.executable, "-c", "pass"],
            run_dir=run_dir,
            env=kernel_environment({}),
            memory=8 * 1024 * MiB,
            cpu_seconds=60,
            processes=64,
            file_size=MiB,
            scratch_size=MiB,
        )
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot start a sandbox here: {result.stderr.strip()[-300:]}. "
            "It needs user or PID namespaces (run the grader as root, or enable "
            "unprivileged user namespaces), or grade trusted notebooks with --no-sandbox."
        )
