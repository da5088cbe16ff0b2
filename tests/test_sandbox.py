"""The sandboxed kernel: untrusted notebook code cannot reach the network or the
instructor's files, cannot write outside its scratch folder, is bounded in memory,
output and time, and leaves no process behind; ordinary code still runs."""

import os
import shutil
import time

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from processes import processes_carrying
from traitlets.config import Config

from course_lib import PROJECT_ROOT, CourseError
from course_lib.grading import audit, sandbox
from course_lib.grading.sandbox import SandboxedKernelManager

pytestmark = pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")

MARKER = "31337.25"  # a sleep duration no other process on the machine uses


def run_cells(sources, timeout=60, **settings):
    """Execute the cells in a sandboxed kernel configured with ``settings``."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    config = Config({"SandboxedKernelManager": settings})
    NotebookClient(
        nb,
        config=config,
        kernel_name="python3",
        timeout=timeout,
        allow_errors=True,
        interrupt_on_timeout=True,
        kernel_manager_class=SandboxedKernelManager,
    ).execute()
    return nb


def text_of(cell):
    return "".join(out.get("text", "") for out in cell.outputs if out.output_type == "stream")


def error_of(cell):
    errors = [out.ename for out in cell.outputs if out.output_type == "error"]
    return errors[0] if errors else None


@pytest.fixture(scope="module")
def probe(tmp_path_factory):
    """One sandboxed kernel running a series of probes, each in its own cell."""
    secret = tmp_path_factory.mktemp("instructor") / "gradebook.db"
    secret.write_text("hidden tests")
    os.environ["NBGRADER_EXECUTION"] = "autograde"
    try:
        nb = run_cells(
            [
                f"open({str(secret)!r}).read()",
                f"open({str(PROJECT_ROOT / 'pyproject.toml')!r}).read()",
                "import socket; socket.create_connection(('1.1.1.1', 80), timeout=3)",
                "import socket; socket.getaddrinfo('pypi.org', 443)",
                f"open({str(PROJECT_ROOT / 'course_lib' / 'pwned.py')!r}, 'w')",
                "open('/etc/pwned', 'w')",
                "import os; open('notes.txt', 'w').write('ok'); print(os.getcwd(), open('notes.txt').read())",
                "import os; print(sorted(os.environ.items()))",
                "import os; print(os.getuid())",
                "import torch, course_lib.conv\n"
                "x = torch.randn(1, 2, 5, 5); w = torch.randn(3, 2, 3, 3)\n"
                "print(torch.nn.functional.conv2d(x, w).shape)",
                "import warnings; warnings.warn('deprecated'); print('still here')",
            ]
        )
    finally:
        del os.environ["NBGRADER_EXECUTION"]
    return nb.cells


def test_cannot_read_a_file_outside(probe):
    assert error_of(probe[0]) == "FileNotFoundError"


def test_cannot_read_the_project_outside_the_library(probe):
    assert error_of(probe[1]) == "FileNotFoundError"


def test_no_network(probe):
    assert error_of(probe[2]) == "OSError"
    assert error_of(probe[3]) == "gaierror"


def test_cannot_write_outside_scratch(probe):
    assert error_of(probe[4]) in ("OSError", "PermissionError")
    assert not (PROJECT_ROOT / "course_lib" / "pwned.py").exists()
    assert error_of(probe[5]) in ("OSError", "PermissionError")


def test_scratch_is_the_writable_working_folder(probe):
    assert error_of(probe[6]) is None
    assert text_of(probe[6]).split() == [sandbox.HOME, "ok"]


def test_environment_does_not_reveal_grading(probe):
    env = text_of(probe[7])
    assert "NBGRADER" not in env
    assert "course-sandbox" not in env
    assert str(PROJECT_ROOT / "tests") not in env


def test_runs_unprivileged_when_grading_as_root(probe):
    uid = int(text_of(probe[8]))
    assert uid != 0 if os.geteuid() == 0 else uid == os.geteuid()


def test_ordinary_code_runs(probe):
    assert error_of(probe[9]) is None
    assert "torch.Size([1, 3, 3, 3])" in text_of(probe[9])


def test_warnings_are_output_not_errors(probe):
    assert error_of(probe[10]) is None
    assert "still here" in text_of(probe[10])


def test_memory_bomb_fails_and_kernel_survives():
    nb = run_cells(
        ["hog = []\nwhile True:\n    hog.append(bytearray(64 * 2**20))", "del hog; print('alive')"],
        memory_limit=1536 * 2**20,
    )
    assert error_of(nb.cells[0]) == "MemoryError"
    assert text_of(nb.cells[1]).strip() == "alive"


def test_background_process_is_gone_after_the_kernel():
    nb = run_cells(
        [
            f"import subprocess; subprocess.Popen(['setsid', 'sleep', '{MARKER}'],"
            " start_new_session=True); print('started')"
        ]
    )
    assert text_of(nb.cells[0]).strip() == "started"
    deadline = time.monotonic() + 10
    while processes_carrying(MARKER) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_carrying(MARKER) == []


def test_endless_printing_is_cut_and_interrupted():
    nb = run_cells(["while True:\n    print('spam' * 100)", "print('next')"], timeout=4, output_limit=100_000)
    printed = text_of(nb.cells[0])
    assert 100_000 <= len(printed) < 101_000
    assert "output truncated" in printed
    assert error_of(nb.cells[0]) == "KeyboardInterrupt"
    assert text_of(nb.cells[1]).strip() == "next"


def test_one_huge_message_kills_the_kernel():
    with pytest.raises(DeadKernelError):
        run_cells(["print('x' * 80_000_000)", "print('never')"], message_size_limit=16 * 2**20)


IGNORES_SIGINT = "import signal, time\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    time.sleep(0.1)"


def test_ignored_interrupt_is_ended_by_the_wall_clock_limit():
    with pytest.raises(DeadKernelError):
        run_cells([IGNORES_SIGINT], timeout=3, wall_time_limit=20, interrupt_grace=0)


def test_a_kernel_still_busy_after_an_interrupt_is_killed():
    """Without the wall-clock limit: the kernel that ignored the interrupt is killed after the
    grace period, and the next cell meets a dead kernel instead of waiting out its own limit."""
    with pytest.raises(DeadKernelError):
        run_cells([IGNORES_SIGINT, "print('never')"], timeout=3, wall_time_limit=0, interrupt_grace=2)


def test_an_interrupted_kernel_that_stops_is_kept():
    nb = run_cells(["import time\nwhile True:\n    time.sleep(0.1)", "print('next')"], timeout=3, interrupt_grace=2)
    assert error_of(nb.cells[0]) == "KeyboardInterrupt"
    assert text_of(nb.cells[1]).strip() == "next"


def test_missing_bubblewrap_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(CourseError, match="bubblewrap"):
        sandbox.bwrap_path()


def test_sandbox_can_be_switched_off_for_trusted_notebooks(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    project_file = str(PROJECT_ROOT / "pyproject.toml")
    nb = run_cells([f"import os; print(os.path.exists({project_file!r}))"], sandbox=False)
    assert text_of(nb.cells[0]).strip() == "True"


def test_check_sandbox_passes_here():
    sandbox.check_sandbox()


PROTECTED = {"torch": "torch", "F": "torch.nn.functional", "checks": "course_lib.checks"}


@pytest.mark.parametrize(
    "source, found",
    [
        ("get_ipython().input_transformers_cleanup.append(lambda lines: [])", "rewrites later cells"),
        ("ip = get_ipython()\nip.showtraceback = lambda *a, **k: None", "hides errors"),
        ("checks.check_conv2d = lambda *a, **k: None", "a name the tests use"),
        ("from course_lib import checks as c\nc.check_im2col = print", "a name the tests use"),
        ("import numpy as F", "rebinds a name the tests use"),
        ("class Same(int):\n    def __eq__(self, other):\n        return True", "compare"),
        ("import os\nos._exit(0)", "kills the kernel"),
        ("import subprocess", "starts other programs"),
        ("exec('x = 1')", "runs code built at run time"),
        ("!curl example.com", "reaches into IPython"),
    ],
)
def test_audit_finds_code_that_reaches_the_tests(source, found):
    findings = audit.audit_code(source, PROTECTED)
    assert any(found in finding for finding in findings), findings


def test_audit_accepts_ordinary_answers():
    answer = (
        "import torch\nimport torch.nn.functional as F\n"
        "def conv(x, weight):\n    x = F.pad(x, (1, 1, 1, 1))\n    out = torch.zeros(3)\n"
        "    out[0] = (x * weight).sum()\n    return out\n"
        "class Block(torch.nn.Module):\n    def forward(self, x):\n        return x\n"
    )
    assert audit.audit_code(answer, PROTECTED) == []


def test_protected_names_are_what_locked_cells_import_or_define():
    locked = [
        "import torch\nimport torch.nn.functional as F\nfrom course_lib import checks\ndef helper():\n    pass\nx = 1"
    ]
    assert audit.protected_names(locked) == {
        "torch": "torch",
        "F": "torch.nn.functional",
        "checks": "course_lib.checks",
        "helper": "def",
    }
