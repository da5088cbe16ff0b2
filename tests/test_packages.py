"""Two products, two packages: the course library runs without the instructor's grading tool."""

from __future__ import annotations

import json
import subprocess
import sys

from course_lib import PROJECT_ROOT

LIBRARY = sorted(p.stem for p in (PROJECT_ROOT / "course_lib").glob("*.py") if p.stem != "__main__")
GRADING_ONLY = ("nbgrader", "jupyter_client", "traitlets", "course_lib.grading")


def test_the_library_imports_nothing_of_the_grading_tool():
    imports = "; ".join(f"import course_lib.{name}" for name in LIBRARY if name != "__init__")
    code = f"import json, sys; {imports}; print(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout)
    assert len(LIBRARY) > 15
    assert not [m for m in loaded if m.startswith(GRADING_ONLY)]
