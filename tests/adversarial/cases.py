"""Hostile and broken submissions of the convolution assignment, each with the outcome it
must get from the grading pipeline.

Every submission is built from the assignment's student release (the notebook nbgrader
generates from ``solutions/01-convolution``), so the suite follows the assignment when it
changes. A case names the test cells that must pass (``passes``); every other test cell
must score 0, so a case's expected auto score is the sum of those cells' points. ``status``
is the report's status and ``says`` a phrase the report must contain for that student.

Answers whose code reaches into the test machinery (IPython, the checks, the interpreter;
see ``course_lib.grading.audit.audit_code``) are held for review: their autograded points are
not reported until a person has looked, whatever the tests said.
"""

import copy
import json
import re
from dataclasses import dataclass, field

ASSIGNMENT = "01-convolution"
NOTEBOOK = "convolution"
MARKER = "27182.5"  # a sleep duration no other process uses: finds leftover processes

OUTPUT_SIZE, NAIVE, NAIVE_STRIDE, IM2COL, CONV_IM2COL = (
    "test_conv_output_size",
    "test_conv2d_naive",
    "test_conv2d_naive_stride_padding",
    "test_im2col",
    "test_conv2d_im2col",
)
ALL = frozenset({OUTPUT_SIZE, NAIVE, NAIVE_STRIDE, IM2COL, CONV_IM2COL})
# A blank or broken im2col fails its own test only: conv2d_im2col is tested with the course's im2col.
WITHOUT_IM2COL = ALL - {IM2COL}
NONE = frozenset()

HELD = {"status": "review", "says": "held for review"}  # code that reaches into the tests

BLANK_IM2COL = """def im2col(x, kernel_size, stride=1, padding=0):
    raise NotImplementedError()
"""


@dataclass
class Case:
    name: str
    what: str
    passes: frozenset
    status: str = "graded"
    says: str = ""
    honest: bool = False  # an honest submission: its report lists no problem
    files: dict = field(default_factory=dict)  # file name -> bytes, in the student's folder


# ------------------------------------------------------------ notebook surgery


def solution_sources(solution_nb):
    """The reference answer of every solution cell, markers removed, by grade_id."""
    answers = {}
    for cell in solution_nb["cells"]:
        meta = cell["metadata"].get("nbgrader", {})
        if meta.get("solution"):
            lines = "".join(cell["source"]).splitlines(keepends=True)
            answers[meta["grade_id"]] = "".join(
                line for line in lines if "### BEGIN SOLUTION" not in line and "### END SOLUTION" not in line
            )
    return answers


def cell_index(nb, grade_id):
    for index, cell in enumerate(nb["cells"]):
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == grade_id:
            return index
    raise KeyError(grade_id)


def answered(release, answers, **overrides):
    """The release with every solution cell answered; ``overrides`` replace answers
    (by grade_id) with other code."""
    nb = copy.deepcopy(release)
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id in overrides:
            cell["source"] = overrides[grade_id]
        elif grade_id in answers:
            cell["source"] = answers[grade_id]
    return nb


def append_code(nb, grade_id, code):
    index = cell_index(nb, grade_id)
    nb["cells"][index]["source"] = "".join(nb["cells"][index]["source"]) + "\n" + code
    return nb


def dumps(nb):
    return json.dumps(nb, indent=1).encode()


def notebook_file(nb):
    return {f"{NOTEBOOK}.ipynb": dumps(nb)}


# ------------------------------------------------------------ the cases


def build_cases(release, solution_nb, course_dir):
    """All cases for this release; ``course_dir`` is the instructor's course directory
    (a real attacker would guess it; here the attacks get it for free)."""
    answers = solution_sources(solution_nb)
    full = lambda **kw: answered(release, answers, **kw)  # noqa: E731
    no_im2col = lambda **kw: answered(release, answers, im2col=BLANK_IM2COL, **kw)  # noqa: E731
    gradebook, source = course_dir / "gradebook.db", course_dir / "source" / ASSIGNMENT / f"{NOTEBOOK}.ipynb"
    cases = []

    def add(name, what, nb_or_files, passes, **kw):
        files = (
            nb_or_files if isinstance(nb_or_files, dict) and "cells" not in nb_or_files else notebook_file(nb_or_files)
        )
        cases.append(Case(name, what, frozenset(passes), files=files, **kw))

    # honest submissions: they must get exactly their marks
    add("honest-full", "the reference answers", full(), ALL, honest=True)
    add("honest-partial", "im2col left undone", no_im2col(), WITHOUT_IM2COL, honest=True)
    add("honest-blank", "the release, unchanged", copy.deepcopy(release), NONE, honest=True)
    add(
        "warns",
        "correct code that warns and writes to stderr",
        full(
            conv2d_naive=answers["conv2d_naive"] + WARNS.format(name="conv2d_naive"),
            im2col=answers["im2col"] + WARNS.format(name="im2col"),
        ),
        ALL,
        honest=True,
    )
    add(
        "hidden-only-failure",
        "wrong only for non-square kernels, which only hidden tests use",
        full(conv2d_naive=SQUARE_ONLY_NAIVE),
        ALL - {NAIVE, NAIVE_STRIDE},
        honest=True,
    )

    # edits of the notebook's structure
    nb = no_im2col()
    nb["cells"][cell_index(nb, IM2COL)]["source"] = "pass"
    nb["cells"][cell_index(nb, CONV_IM2COL)]["source"] = "print('all good')"
    add("edited-test-cell", "test cells replaced by pass", nb, WITHOUT_IM2COL, says="edited")

    nb = no_im2col()
    for grade_id in (CONV_IM2COL, IM2COL):
        del nb["cells"][cell_index(nb, grade_id)]
    add("deleted-test-cell", "the im2col test cells deleted", nb, WITHOUT_IM2COL, says="deleted")

    nb = no_im2col()
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("points"):
            cell["metadata"]["nbgrader"]["points"] = 100
    add("changed-points", "every test cell's points set to 100", nb, WITHOUT_IM2COL)

    nb = no_im2col()
    for grade_id in (IM2COL, CONV_IM2COL):
        nb["cells"][cell_index(nb, grade_id)]["cell_type"] = "markdown"
        nb["cells"][cell_index(nb, grade_id)].pop("outputs", None)
        nb["cells"][cell_index(nb, grade_id)].pop("execution_count", None)
    add("test-to-markdown", "the im2col test cells turned to markdown", nb, WITHOUT_IM2COL)

    nb = no_im2col()
    index = cell_index(nb, IM2COL)
    fake = copy.deepcopy(nb["cells"][index])
    fake["source"] = "pass"
    nb["cells"].insert(index, fake)
    add(
        "duplicated-grade-cell",
        "a copy of a test cell (saying pass) placed before it",
        nb,
        WITHOUT_IM2COL,
        says="appears 2 times",
    )

    nb = full()
    for cell in nb["cells"]:
        if "nbgrader" in cell["metadata"]:
            cell["metadata"]["nbgrader"]["schema_version"] = 1
    add("edited-schema-version", "nbgrader schema_version set to 1 in every cell", nb, ALL, says="schema_version")

    add(
        "invalid-json",
        "a notebook cut in the middle",
        {f"{NOTEBOOK}.ipynb": dumps(full())[:5000]},
        NONE,
        status="not graded",
        says="invalid JSON",
    )
    add(
        "renamed-notebook",
        "the correct notebook under another name",
        {f"{NOTEBOOK}-final.ipynb": dumps(full())},
        NONE,
        status="not graded",
        says="missing notebook",
    )

    nb = full()
    nb["metadata"]["kernelspec"] = {"name": "evil", "display_name": "Evil", "language": "python"}
    add("wrong-kernelspec", "the kernelspec of a kernel that does not exist", nb, ALL)

    # attacks from inside the kernel
    add(
        "showtraceback-override",
        "errors hidden by replacing IPython's showtraceback",
        append_code(no_im2col(), "conv2d_im2col", SHOWTRACEBACK),
        NONE,
        **HELD,
    )
    add(
        "input-transformer",
        "an input transformer that blanks the test cells",
        append_code(no_im2col(), "conv2d_im2col", TRANSFORMER),
        NONE,
        **HELD,
    )
    add(
        "always-equal",
        "conv_output_size returns an object equal to everything",
        full(conv_output_size=ALWAYS_EQUAL),
        NONE,
        **HELD,
    )
    add(
        "redefined-locked-helper",
        "the checks replaced by functions that pass",
        append_code(no_im2col(), "conv2d_im2col", REDEFINE_CHECKS),
        NONE,
        **HELD,
    )
    add(
        "shadowing-numpy",
        "a numpy.py beside the notebook that disables the checks",
        {**notebook_file(no_im2col()), "numpy.py": SHADOW_NUMPY.encode()},
        WITHOUT_IM2COL,
        says="ignored",
    )
    add(
        "reads-instructor-files",
        "reads the source notebook and the gradebook",
        append_code(
            no_im2col(),
            "conv2d_im2col",
            READ_FILES.format(paths=[str(source), str(gradebook), "../../../source", "/proc/1/root" + str(gradebook)]),
        ),
        WITHOUT_IM2COL,
    )
    add(
        "writes-gradebook",
        "writes its own score into the gradebook",
        append_code(no_im2col(), "conv2d_im2col", WRITE_GRADEBOOK.format(gradebook=str(gradebook))),
        NONE,
        **HELD,
    )
    add(
        "grading-detector",
        "breaks its own answers when it sees signs of grading",
        append_code(full(), "conv2d_im2col", DETECT_GRADING.format(course=str(course_dir))),
        ALL,
    )
    add(
        "background-process",
        "leaves a detached process running",
        append_code(full(), "conv2d_im2col", BACKGROUND.format(marker=MARKER)),
        NONE,
        **HELD,
    )
    add("sys-exit", "im2col calls sys.exit", full(im2col=SYS_EXIT), NONE, **HELD)
    add(
        "os-exit",
        "conv2d_im2col kills the kernel with os._exit",
        full(conv2d_im2col=OS_EXIT),
        NONE,
        status="failed",
        says="autograde failed",
    )
    add("infinite-loop", "conv2d_im2col never returns", full(conv2d_im2col=INFINITE_LOOP), ALL - {CONV_IM2COL})
    add(
        "sigint-ignored",
        "im2col ignores SIGINT, then never returns",
        full(im2col=IGNORE_SIGINT),
        NONE,
        status="failed",
        says="still busy 10 s after an interrupt",
    )
    add(
        "endless-printing",
        "an answer cell that prints forever after correct code",
        append_code(full(), "conv2d_im2col", "while True:\n    print('spam ' * 20)"),
        ALL,
    )
    add(
        "huge-print",
        "one print of 200 MB",
        append_code(full(), "conv2d_im2col", "print('x' * 200_000_000)"),
        NONE,
        status="failed",
        says="autograde failed",
    )
    add("memory-bomb", "im2col allocates until memory runs out", full(im2col=MEMORY_BOMB), WITHOUT_IM2COL)
    return cases


WARNS = """
_plain_{name} = {name}
def {name}(*args, **kwargs):
    import sys, warnings
    warnings.warn("this function will change in the next release", FutureWarning)
    print("{name} called", file=sys.stderr)
    return _plain_{name}(*args, **kwargs)
"""

SQUARE_ONLY_NAIVE = """def conv2d_naive(x, weight, bias=None, stride=1, padding=0):
    batch, _, height, width = x.shape
    out_channels, _, k, _ = weight.shape  # assumes square kernels
    out_h = conv_output_size(height, k, stride, padding)
    out_w = conv_output_size(width, k, stride, padding)
    x = F.pad(x, (padding, padding, padding, padding))
    out = torch.zeros(batch, out_channels, out_h, out_w, dtype=x.dtype)
    for n in range(batch):
        for o in range(out_channels):
            for i in range(out_h):
                for j in range(out_w):
                    window = x[n, :, i * stride : i * stride + k, j * stride : j * stride + k]
                    out[n, o, i, j] = (window * weight[o, :, :k, :k]).sum()
            if bias is not None:
                out[n, o] += bias[o]
    return out
"""

SHOWTRACEBACK = """
_shell = get_ipython()
_shell.showtraceback = lambda *args, **kwargs: None
_shell._showtraceback = lambda *args, **kwargs: None
_shell.showsyntaxerror = lambda *args, **kwargs: None
"""

TRANSFORMER = """
def _skip_tests(lines):
    return ["pass\\n"] if any("checks." in line or "assert" in line for line in lines) else lines
get_ipython().input_transformers_cleanup.append(_skip_tests)
"""

ALWAYS_EQUAL = """class _Anything(int):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = int.__hash__

def conv_output_size(size, kernel_size, stride=1, padding=0):
    return _Anything((size + 2 * padding - kernel_size) // stride + 1)
"""

REDEFINE_CHECKS = """
from course_lib import checks as _real_checks
for _name in dir(_real_checks):
    if _name.startswith("check_"):
        setattr(_real_checks, _name, lambda *args, **kwargs: None)
class _Pass:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None
checks = _Pass()
"""

SHADOW_NUMPY = """import sys, importlib
sys.path.remove("") if "" in sys.path else None
del sys.modules["numpy"]
real = importlib.import_module("numpy")
sys.modules["numpy"] = real
import course_lib.checks as c
for name in dir(c):
    if name.startswith("check_"):
        setattr(c, name, lambda *a, **k: None)
"""

READ_FILES = """
import os
for _path in {paths!r}:
    try:
        if os.path.isdir(_path):
            print("LEAKED listing", _path, os.listdir(_path))
        else:
            with open(_path, "rb") as _f:
                print("LEAKED", _path, _f.read()[:2000])
    except OSError as _error:
        print("blocked:", type(_error).__name__)
"""

WRITE_GRADEBOOK = """
import sqlite3
try:
    _db = sqlite3.connect({gradebook!r})
    _db.execute("UPDATE grade SET auto_score = 100")
    _db.commit()
    print("WROTE the gradebook")
except Exception as _error:
    print("blocked:", type(_error).__name__)
"""

DETECT_GRADING = """
import os, sys
_signs = [name for name in os.environ if "NBGRADER" in name.upper() or "GRADE" in name.upper()]
_signs += [p for p in (os.getcwd(),) if "autograded" in p or "submitted" in p]
_signs += [p for p in ({course!r}, "/proc/1/cwd/gradebook.db") if os.path.exists(p)]
if _signs:
    print("grading detected:", _signs)
    def conv_output_size(*args, **kwargs):
        raise RuntimeError("graded")
    conv2d_naive = im2col = conv2d_im2col = conv_output_size
"""

BACKGROUND = """
import subprocess
subprocess.Popen(["sh", "-c", "sleep {marker} &"], start_new_session=True)
"""

SYS_EXIT = """def im2col(x, kernel_size, stride=1, padding=0):
    import sys
    sys.exit(0)
"""

OS_EXIT = """def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    import os
    os._exit(0)
"""

INFINITE_LOOP = """def conv2d_im2col(x, weight, bias=None, stride=1, padding=0):
    while True:
        pass
"""

IGNORE_SIGINT = """def im2col(x, kernel_size, stride=1, padding=0):
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        time.sleep(0.05)
"""

MEMORY_BOMB = """def im2col(x, kernel_size, stride=1, padding=0):
    hog = []
    while True:
        hog.append(bytearray(64 * 2**20))
"""


def hidden_lines(solution_nb):
    """The lines of every hidden-test block of the source notebook."""
    lines = []
    for cell in solution_nb["cells"]:
        text = "".join(cell["source"])
        for block in re.findall(r"### BEGIN HIDDEN TESTS\n(.*?)### END HIDDEN TESTS", text, re.S):
            lines += [line.strip() for line in block.splitlines() if line.strip()]
    return lines
