"""Fixtures shared by the test modules, and the rule that CI runs every sandbox, grading and book test."""

from __future__ import annotations

import os
from collections.abc import Generator
from pathlib import Path

import pytest
import torch
from PIL import Image
from torch import nn

from course_lib.models import ResNet18
from course_lib.weights import save_checkpoint

# Tests that need Debian packages (bubblewrap, chromium): they skip on a machine without them,
# but CI installs them, so a skip there means the packages went missing and must fail the run.
MUST_RUN_IN_CI = {
    "test_sandbox.py",
    "test_adversarial.py",
    "test_grade.py",
    "test_book.py",
    "test_slurm.py",
    "test_grading_cycle.py",
    "test_spanish_assignments.py",
}


PHOTO_CLASSES = ("bags", "pens", "phones")


@pytest.fixture(scope="session")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 8 photos per class, root/<class>/*.jpg, each class its own colour."""
    root = tmp_path_factory.mktemp("photos")
    generator = torch.Generator().manual_seed(0)
    for index, name in enumerate(PHOTO_CLASSES):
        (root / name).mkdir()
        for i in range(8):
            pixels = torch.randint(0, 60, (40, 40, 3), generator=generator, dtype=torch.uint8)
            pixels[..., index] += 180
            Image.fromarray(pixels.numpy()).save(root / name / f"{name}{i}.jpg")
    return root


@pytest.fixture(scope="session")
def pretrained_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 10-class 'pretrained' checkpoint made here, so that no test needs the shipped one. Its
    BatchNorm statistics are far from the defaults, so that a backbone that is not kept
    frozen (statistics included) shows in its outputs."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = ResNet18(num_classes=10)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(module.num_features, generator=generator) * 1.5 + 0.5)
    return save_checkpoint(tmp_path_factory.mktemp("weights") / "pretrained.pt", model, source="test")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Generator:
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI") and Path(str(item.fspath)).name in MUST_RUN_IN_CI:
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where it must run: {reason}"
