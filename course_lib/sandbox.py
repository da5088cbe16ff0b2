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
"""

import ast
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from queue import Empty

import zmq
import zmq.asyncio
from IPython.core.inputtransformer2 import TransformerManager
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.blocking import BlockingKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from traitlets import Bool, Float, Integer, List, Type, Unicode, default

from course_lib.errors import CourseError

HOME = "/home/student"
RUN_DIR = "/run/jupyter"
OUTPUT_MESSAGES = ("stream", "display_data", "update_display_data", "execute_result", "error")
PASSED_ENV = ("LANG", "LC_ALL", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
              "OPENBLAS_NUM_THREADS", "PYTHONHASHSEED", "MPLBACKEND")
MiB = 1024 ** 2


class SandboxUnavailable(CourseError):
    """bubblewrap is missing or cannot create namespaces on this machine."""


def bwrap_path():
    """The bubblewrap executable, or a SandboxUnavailable saying how to get one."""
    path = shutil.which("bwrap")
    if path is None:
        raise SandboxUnavailable(
            "bubblewrap (bwrap) is not installed, so student code cannot be isolated: "
            "install it (Debian/Ubuntu: apt-get install bubblewrap), or grade trusted "
            "notebooks only with the sandbox switched off (--no-sandbox).")
    return path


def runs_as_root():
    return os.geteuid() == 0


def read_only_paths():
    """What the kernel needs to see: the system, the Python installation, the venv,
    course_lib and its shipped data. Nothing else of the host is visible."""
    import course_lib
    package = Path(course_lib.__file__).resolve().parent
    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/etc",
             sys.base_prefix, sys.prefix, str(package), str(package.parent / "data")]
    real = Path(sys.executable).resolve().parent.parent
    paths.append(str(real))
    unique = []
    for path in paths:
        if os.path.lexists(path) and path not in unique:
            unique.append(path)
    return unique


def mount_arguments(paths, scratch=()):
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


def limit_arguments(memory, cpu_seconds, processes, file_size):
    """prlimit arguments; soft and hard limits are equal except CPU time, whose soft
    limit sends SIGXCPU a few seconds before the hard one kills."""
    return ["prlimit", f"--as={memory}", f"--cpu={cpu_seconds}:{cpu_seconds + 5}",
            f"--nproc={processes}", f"--fsize={file_size}", "--core=0", "--"]


def sandbox_command(kernel_argv, *, run_dir, env, memory, cpu_seconds, processes,
                    file_size, scratch_size, uid=65534, extra_read_only=()):
    """The full command line: bwrap, the uid drop, the limits, then the kernel.

    ``run_dir`` (host) appears inside as RUN_DIR; it holds the connection file and the
    sockets. ``env`` is the kernel's whole environment.
    """
    args = [bwrap_path(), "--die-with-parent", "--unshare-pid", "--unshare-net",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "jupyter"]
    if not runs_as_root():
        args += ["--unshare-user"]
    # The scratch folders come first, so that a project or venv that lives under /tmp
    # (a CI clone, say) is bound on top of the fresh /tmp rather than hidden by it.
    args += ["--proc", "/proc", "--dev", "/dev",
             "--perms", "1777", "--size", str(scratch_size), "--tmpfs", "/dev/shm",
             "--perms", "1777", "--size", str(scratch_size), "--tmpfs", "/tmp",
             "--perms", "1777", "--size", str(scratch_size), "--tmpfs", HOME]
    args += mount_arguments(read_only_paths() + list(extra_read_only), scratch=("/tmp", "/dev/shm", HOME))
    args += ["--bind", str(run_dir), RUN_DIR, "--chmod", "0755", str(Path(RUN_DIR).parent),
             "--chmod", "0755", str(Path(HOME).parent), "--chdir", HOME, "--clearenv"]
    for name, value in env.items():
        args += ["--setenv", name, value]
    if runs_as_root():
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP", "--",
                 "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                 "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]
    args += ["--"] + limit_arguments(memory, cpu_seconds, processes, file_size)
    return args + list(kernel_argv)


def kernel_environment(launch_env):
    """A clean environment: nothing of the grader's (NBGRADER_*, paths, tokens) leaks.
    JPY_PARENT_PID=1 stops ipykernel from watching a parent it cannot see (the sandbox
    dies with the grader anyway)."""
    env = {"PATH": f"{Path(sys.prefix) / 'bin'}:/usr/local/bin:/usr/bin:/bin",
           "HOME": HOME, "USER": "student", "LOGNAME": "student",
           "LANG": "C.UTF-8", "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1",
           "JPY_PARENT_PID": "1"}
    for name in PASSED_ENV:
        if launch_env.get(name):
            env[name] = launch_env[name]
    return env


def message_size(content):
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

    def __init__(self, socket, *args, **kwargs):
        super().__init__(socket, *args, **kwargs)
        self.used = {}
        self.on_lost = None
        self.monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
        self.poller = zmq.asyncio.Poller()
        self.poller.register(socket, zmq.POLLIN)
        self.poller.register(self.monitor, zmq.POLLIN)

    async def get_msg(self, timeout=None):
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

    async def next_message(self, timeout):
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

    def truncated(self, msg, room):
        """The message cut to ``room`` characters, as a stream with a note saying so."""
        content = msg["content"]
        text = content["text"][:room] if msg["msg_type"] == "stream" else ""
        msg["msg_type"] = msg["header"]["msg_type"] = "stream"
        msg["content"] = {"name": content.get("name", "stdout"), "text": text + (
            f"\n[output truncated: this cell printed more than {self.limit} characters]\n")}
        return msg


def capped_context(message_size_limit):
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
    def _context_default(self):
        self._created_context = True
        return capped_context(self.message_size_limit)

    @property
    def iopub_channel(self):
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
    interrupt_grace = Float(10.0, help="Seconds a kernel has to answer after an interrupt before "
                            "the sandbox is killed (0: never).").tag(config=True)

    client_factory = Type(SandboxedKernelClient)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.run_dir = None
        self.watchdog = None
        self.interrupt_check = None

    @default("context")
    def _context_default(self):
        self._created_context = True
        return capped_context(self.message_size_limit)

    def client(self, **kwargs):
        kwargs.setdefault("output_limit", self.output_limit)
        kwargs.setdefault("message_size_limit", self.message_size_limit)
        return super().client(**kwargs)

    async def _async_pre_start_kernel(self, **kw):
        if self.sandbox:
            bwrap_path()
            self.run_dir = Path(tempfile.mkdtemp(prefix="course-sandbox-"))
            if runs_as_root():
                os.chown(self.run_dir, self.sandbox_uid, self.sandbox_uid)
            self.transport = "ipc"
            self.connection_file = str(self.run_dir / "kernel.json")
            self.ip = str(self.run_dir / "kernel-ipc")
        return await super()._async_pre_start_kernel(**kw)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if self.sandbox:
            kw["env"] = kernel_environment(kw.get("env") or os.environ)
            kw["cwd"] = str(self.run_dir)
            kernel_cmd = self.sandboxed(kernel_cmd, kw["env"])
        await super()._async_launch_kernel(kernel_cmd, **kw)
        if self.sandbox and self.wall_time_limit:
            self.watchdog = threading.Timer(
                self.wall_time_limit, self.kill_sandbox,
                [f"it ran past {self.wall_time_limit:.0f} s"])
            self.watchdog.daemon = True
            self.watchdog.start()

    def sandboxed(self, kernel_cmd, env):
        """The kernel command wrapped in the sandbox, reading a connection file whose
        socket paths are the ones seen from inside."""
        inside = dict(self.get_connection_info(session=False))
        inside["ip"] = f"{RUN_DIR}/kernel-ipc"
        inside["key"] = self.session.key.decode()
        inside_file = self.run_dir / "kernel-inside.json"
        inside_file.write_text(json.dumps(inside))
        inside_file.chmod(0o644)
        kernel_argv = [f"{RUN_DIR}/{inside_file.name}" if arg == self.connection_file else arg
                       for arg in kernel_cmd]
        return sandbox_command(
            kernel_argv, run_dir=self.run_dir, env=env,
            memory=self.memory_limit, cpu_seconds=self.cpu_time_limit,
            processes=self.process_limit, file_size=self.file_size_limit,
            scratch_size=self.scratch_size, uid=self.sandbox_uid,
            extra_read_only=self.extra_read_only)

    def kill_sandbox(self, reason="it ran too long"):
        """Kill the sandbox (its PID namespace dies with bwrap)."""
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.poll() is None:
            self.log.warning("Killing the kernel's sandbox: %s", reason)
            process.kill()

    async def _async_interrupt_kernel(self):
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
                    target=self._kill_if_still_busy, args=(self.interrupt_grace,), daemon=True)
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

    async def _async_cleanup_resources(self, restart=False):
        if self.watchdog is not None:
            self.watchdog.cancel()
            self.watchdog = None
        await super()._async_cleanup_resources(restart=restart)
        if self.run_dir is not None and not restart:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    cleanup_resources = _async_cleanup_resources


def check_sandbox():
    """Start a trivial command in the sandbox; raise SandboxUnavailable if it cannot run."""
    with tempfile.TemporaryDirectory(prefix="course-sandbox-") as run_dir:
        if runs_as_root():
            os.chown(run_dir, 65534, 65534)
        command = sandbox_command(
            [sys.executable, "-c", "pass"], run_dir=run_dir, env=kernel_environment({}),
            memory=8 * 1024 * MiB, cpu_seconds=60, processes=64, file_size=MiB,
            scratch_size=MiB)
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        raise SandboxUnavailable(
            f"bubblewrap cannot start a sandbox here: {result.stderr.strip()[-300:]}. "
            "It needs user or PID namespaces (run the grader as root, or enable "
            "unprivileged user namespaces), or grade trusted notebooks with --no-sandbox.")


# ---------------------------------------------------------------- reading the code itself

SUSPICIOUS_NAMES = {
    "get_ipython": "reaches into IPython, which runs the tests",
    "IPython": "reaches into IPython, which runs the tests",
    "ipykernel": "reaches into the kernel, which runs the tests",
    "vars": "rewrites names through their dictionary",
    "__builtins__": "changes Python's built-in functions",
    "builtins": "changes Python's built-in functions",
    "exec": "runs code built at run time", "eval": "runs code built at run time",
    "compile": "runs code built at run time", "__import__": "imports modules indirectly",
    "importlib": "imports modules indirectly", "setattr": "changes attributes by name",
    "delattr": "deletes attributes by name", "globals": "rewrites the notebook's names",
    "ctypes": "calls C code directly", "gc": "walks the interpreter's objects",
    "inspect": "walks the interpreter's frames", "signal": "changes signal handling",
    "subprocess": "starts other programs", "multiprocessing": "starts other processes",
    "socket": "opens network connections", "sqlite3": "opens databases",
    "exit": "stops the kernel", "quit": "stops the kernel",
}
SUSPICIOUS_ATTRIBUTES = {
    "modules": "edits sys.modules", "_exit": "kills the kernel", "exit": "stops the kernel",
    "system": "runs shell commands", "popen": "runs shell commands", "fork": "starts processes",
    "kill": "sends signals", "_getframe": "walks the interpreter's frames",
    "settrace": "traces the tests", "setprofile": "traces the tests",
    "input_transformers_cleanup": "rewrites later cells", "input_transformers_post": "rewrites later cells",
    "ast_transformers": "rewrites later cells", "showtraceback": "hides errors",
    "events": "hooks into cell execution",
    "get_ipython": "reaches into IPython, which runs the tests",
    "__dict__": "rewrites names through their dictionary",
    "__globals__": "rewrites the notebook's names",
    "__code__": "rewrites a function's code",
}
SUSPICIOUS_METHODS = {"__eq__", "__ne__", "__bool__", "__hash__", "__instancecheck__",
                      "__subclasscheck__", "__getattribute__", "__class__"}


def imported_binding(node, alias):
    """The name an import binds and the dotted path of what it binds to it."""
    if isinstance(node, ast.Import):
        if alias.asname:
            return alias.asname, alias.name
        return alias.name.split(".")[0], alias.name.split(".")[0]
    return alias.asname or alias.name, f"{node.module}.{alias.name}"


def module_aliases(tree, modules):
    """Names a cell binds to the protected modules (or any library module) by import."""
    aliases = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name, module = imported_binding(node, alias)
                if module in modules or module.split(".")[0] in ("course_lib", "torch", "numpy"):
                    aliases.add(name)
    return aliases


def protected_names(sources):
    """Names that locked cells bind by import or def, mapped to what they are bound to."""
    names = {}
    for source in sources:
        try:
            tree = ast.parse(TransformerManager().transform_cell(source))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name, module = imported_binding(node, alias)
                    names[name] = module
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names[node.name] = "def"
    return names


def audit_code(source, protected=None):
    """Constructs in one cell of student code that can fool or escape the tests.

    Returns short findings ("line 3: get_ipython (reaches into IPython, ...)"). The tests
    run in the student's own process, so code like this can make them pass without
    doing the work: such a submission deserves a person's look, not points. ``protected``
    maps the names the locked cells bind (``checks``, ``torch``...; see
    ``protected_names``) that answers must not rebind or modify. Code that does not parse
    is left to the tests to fail.
    """
    protected = protected or {}
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return []
    findings = []
    guarded = set(protected) | module_aliases(tree, set(protected.values()))

    def flag(node, what, why):
        findings.append(f"line {getattr(node, 'lineno', '?')}: {what} ({why})")

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in SUSPICIOUS_NAMES:
            flag(node, node.id, SUSPICIOUS_NAMES[node.id])
        elif isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRIBUTES:
            flag(node, "." + node.attr, SUSPICIOUS_ATTRIBUTES[node.attr])
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            for module in modules:
                if module.split(".")[0] in SUSPICIOUS_NAMES:
                    flag(node, f"import {module}", SUSPICIOUS_NAMES[module.split(".")[0]])
            for alias in node.names:
                name, module = imported_binding(node, alias)
                if name in protected and protected[name] != module:
                    flag(node, f"import as {name}", "rebinds a name the tests use")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            if node.name in SUSPICIOUS_METHODS:
                flag(node, f"def {node.name}", "changes how objects compare")
            elif node.name in protected:
                flag(node, f"def {node.name}", "rebinds a name the tests use")
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                for part in ast.walk(target):
                    root = part
                    while isinstance(root, (ast.Attribute, ast.Subscript)):
                        root = root.value
                    if isinstance(root, ast.Name) and root.id in guarded:
                        flag(node, root.id, "rebinds or modifies a name the tests use")
                        break
                    if isinstance(part, ast.Name) and part.id in SUSPICIOUS_METHODS:
                        flag(node, part.id, "changes how objects compare")
    return list(dict.fromkeys(findings))


def cell_text(cell):
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def audit_notebook(submitted, source):
    """``audit_code`` findings for every code cell of a submitted notebook that nbgrader
    will not restore from the source (answers and cells the student added).

    Both notebooks are nbformat 4 dicts; locked cells of the source (setup, tests) are
    skipped because grading puts their source back, and define the protected names.
    """
    locked = {}
    for cell in source.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and meta.get("grade_id"):
            locked[meta["grade_id"]] = cell
    protected = protected_names(cell_text(cell) for cell in locked.values() if cell.get("cell_type") == "code")
    findings = []
    for index, cell in enumerate(submitted.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if grade_id in locked:
            continue
        name = grade_id or f"cell {index + 1}"
        findings += [f"{name}, {finding}" for finding in audit_code(cell_text(cell), protected)]
    return findings
