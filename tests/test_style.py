"""The code style is checked, not hoped for: ruff's lint rules and formatter (configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from course_lib import PROJECT_ROOT


@pytest.mark.parametrize("command", [["check", "."], ["format", "--check", "."]])
def test_ruff(command):
    result = subprocess.run([sys.executable, "-m", "ruff", *command], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
