"""The set-up the README's two commands rely on: Debian packages installed or asked for, one message."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from course_lib import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "system_packages.sh"
PACKAGES = "bubblewrap chromium chromium-driver slurm-wlm munge"  # all of them, on a machine without any


def fake_bin(folder: Path, uid: int, commands: dict[str, str]) -> Path:
    """A PATH of stand-ins: ``id`` prints ``uid``, each command logs its arguments (or runs a body)."""
    folder.mkdir()
    log = folder / "calls.log"
    scripts = {"id": f"echo {uid}", **commands}
    for name, body in scripts.items():
        (folder / name).write_text(f'#!/bin/sh\necho {name} "$@" >> {log}\n{body}\n')
        (folder / name).chmod(0o755)
    for tool in ("env",):  # the script runs apt-get through env to pass DEBIAN_FRONTEND
        (folder / tool).symlink_to(shutil.which(tool))
    return folder


def run(path: Path) -> subprocess.CompletedProcess:
    # SBIN_DIRS empty: the daemons are looked for on the stand-ins' PATH only, not in this machine's sbin.
    return subprocess.run(
        ["/bin/bash", str(SCRIPT)],
        env={"PATH": str(path), "SBIN_DIRS": ""},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_without_rights_one_message_names_the_command(tmp_path):
    result = run(fake_bin(tmp_path / "bin", 1000, {"apt-get": "exit 0"}))
    assert result.returncode == 1
    assert f"sudo apt-get update && sudo apt-get install -y {PACKAGES}" in result.stderr
    assert "apt-get" not in (tmp_path / "bin" / "calls.log").read_text()  # nothing was installed


def test_as_root_the_missing_packages_are_installed(tmp_path):
    result = run(fake_bin(tmp_path / "bin", 0, {"apt-get": "exit 0"}))
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "bin" / "calls.log").read_text().splitlines()
    assert "apt-get update -qq" in calls
    assert f"apt-get install -y -qq {PACKAGES}" in calls


def test_with_passwordless_sudo_it_installs_through_sudo(tmp_path):
    folder = fake_bin(tmp_path / "bin", 1000, {"apt-get": "exit 0", "sudo": 'shift; "$@"'})
    result = run(folder)
    assert result.returncode == 0, result.stderr
    calls = (folder / "calls.log").read_text().splitlines()
    assert "sudo -n apt-get update -qq" in calls and f"apt-get install -y -qq {PACKAGES}" in calls


def test_nothing_to_do_when_everything_is_there(tmp_path):
    installed = ("bwrap", "chromium", "chromedriver", "slurmctld", "slurmd", "sbatch", "munged", "mungekey")
    folder = fake_bin(tmp_path / "bin", 1000, {command: "" for command in installed})
    result = run(folder)
    assert result.returncode == 0 and result.stdout == "" and result.stderr == ""


def test_only_the_missing_packages_are_named(tmp_path):
    """Slurm's daemons without munge: only munge is installed (and slurm-wlm is not asked for again)."""
    present = {"bwrap": "", "chromium": "", "chromedriver": "", "slurmctld": "", "slurmd": "", "sbatch": ""}
    folder = fake_bin(tmp_path / "bin", 0, {"apt-get": "exit 0", **present})
    result = run(folder)
    assert result.returncode == 0, result.stderr
    assert "apt-get install -y -qq munge" in (folder / "calls.log").read_text().splitlines()
