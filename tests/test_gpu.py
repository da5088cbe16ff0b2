"""The GPU path: tests that need CUDA, and scripts/gpu_check.sh on a machine without it.

Tests marked ``gpu`` run in ``scripts/gpu_check.sh`` (``pytest -m gpu``); without a CUDA
device they are reported as skipped, with the reason, never as passed. The script itself
is checked here on the CPU: with CUDA hidden it must say so and exit with status 3.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision

from course_lib import PROJECT_ROOT
from course_lib.data import ProductData, Split
from course_lib.distributed import Context
from course_lib.models import ResNet18

SCRIPT = PROJECT_ROOT / "scripts" / "gpu_check.sh"
BENCH = PROJECT_ROOT / "bench" / "resnet_throughput.py"
EXIT_USAGE, EXIT_NO_CUDA = 2, 3

needs_cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA GPU: run scripts/gpu_check.sh on a GPU machine"
)


def run_script(*args: str, hide_cuda: bool = True) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable)
    if hide_cuda:
        env["CUDA_VISIBLE_DEVICES"] = ""
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=300)


# --------------------------------------------------------------------------- the script on CPU


def test_gpu_check_without_cuda_says_so_and_skips_every_step(tmp_path):
    cifar = tmp_path / "cifar10-jpg.zip"
    cifar.write_bytes(b"")
    out = tmp_path / "out"
    done = run_script(str(out), str(cifar))
    assert done.returncode == EXIT_NO_CUDA, done.stdout + done.stderr
    assert "no CUDA device" in done.stdout and "Skipped every GPU step" in done.stdout
    assert (out / "summary.md").read_text().startswith("no CUDA device")
    assert "cuda available: False" in (out / "environment.txt").read_text()
    assert sorted(p.name for p in out.iterdir()) == ["environment.txt", "summary.md"]


def test_gpu_check_usage_errors_run_nothing(tmp_path):
    done = run_script()
    assert done.returncode == EXIT_USAGE
    assert "scripts/gpu_check.sh OUT_DIR CIFAR10_ZIP" in done.stderr
    out = tmp_path / "out"
    done = run_script(str(out), str(tmp_path / "missing.zip"))
    assert done.returncode == EXIT_USAGE
    assert "missing.zip" in done.stderr and "not found" in done.stderr
    assert not out.exists()


def test_throughput_benchmark_refuses_cuda_without_a_gpu():
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="")
    done = subprocess.run(
        [sys.executable, str(BENCH), "--device", "cuda"], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert "torch.cuda.is_available() is False" in done.stderr


# --------------------------------------------------------------------------- on a GPU


def twin_models() -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ours = ResNet18(num_classes=10)
    theirs = torchvision.models.resnet18(num_classes=10)
    theirs.load_state_dict(ours.state_dict())
    return ours.cuda(), theirs.cuda()


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("autocast", [False, True], ids=["fp32", "bf16"])
def test_ours_matches_torchvision_on_cuda(autocast):
    """Same weights, same batch: same outputs and gradients (channels_last, as fit runs on a GPU)."""
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    ours, theirs = twin_models()
    x = torch.randn(8, 3, 64, 64, device="cuda").contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (8,), device="cuda")
    results = []
    for model in (ours, theirs):
        model.to(memory_format=torch.channels_last).train()
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=autocast):
            logits = model(x)
            loss = F.cross_entropy(logits, y)
        loss.backward()
        results.append((logits.float(), model.conv1.weight.grad.float()))
    (a, grad_a), (b, grad_b) = results
    tolerance = dict(atol=5e-2, rtol=5e-2) if autocast else dict(atol=1e-4, rtol=1e-4)
    assert torch.allclose(a, b, **tolerance)
    assert torch.allclose(grad_a, grad_b, **tolerance)


def synthetic_photos() -> ProductData:
    """64 training and 16 validation and test photos of 64 px, random noise in three classes."""

    def split(n: int, seed: int) -> Split:
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, 3, 64, 64), generator=g, dtype=torch.uint8)
        return Split(images, torch.arange(n) % 3, [f"{i}.jpg" for i in range(n)])

    return ProductData(split(64, 1), split(16, 2), split(16, 3), ["a", "b", "c"], "super", 64, "synthetic")


@pytest.mark.gpu
@needs_cuda
def test_fit_trains_on_cuda():
    from course_lib.regimes import prepare_model
    from course_lib.train import TrainConfig, fit

    data = synthetic_photos()
    model, groups = prepare_model("fresh", 3)
    start = model.fc.weight.detach().clone()
    history = fit(model, groups, data, TrainConfig(epochs=2, batch_size=16, device="cuda"), progress=False)
    assert history.device.startswith("cuda") and len(history) == 2
    assert next(model.parameters()).is_cuda
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert not torch.allclose(model.fc.weight.detach().cpu(), start)
    assert history.peak_memory_bytes > 0


@pytest.mark.gpu
@needs_cuda
def test_compiled_training_matches_eager_training_on_cuda():
    """torch.compile (the pretraining recipe on a GPU) changes how fast, not what is learnt."""
    from course_lib.regimes import prepare_model
    from course_lib.runtime import seed_everything
    from course_lib.train import TrainConfig, fit

    data = synthetic_photos()
    losses = {}
    for compiled in (False, True):
        seed_everything(0)
        model, groups = prepare_model("fresh", 3)
        config = TrainConfig(epochs=2, batch_size=16, device="cuda", precision="fp32", compile=compiled)
        losses[compiled] = fit(model, groups, data, config, progress=False).column("train_loss")
    assert losses[True] == pytest.approx(losses[False], rel=1e-2)


@pytest.mark.gpu
@needs_cuda
def test_distributed_context_gives_each_rank_its_own_gpu():
    assert Context(rank=1, world_size=2, local_rank=1).device("cuda") == torch.device("cuda", 1)
    assert Context().device("cuda") == torch.device("cuda")


@pytest.mark.gpu
@needs_cuda
def test_throughput_benchmark_runs_on_cuda(tmp_path):
    spec = importlib.util.spec_from_file_location("resnet_throughput", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = tmp_path / "throughput.json"
    assert (
        bench.main(
            [
                "--device",
                "cuda",
                "--image-size",
                "64",
                "--batch-size",
                "8",
                "--steps",
                "1",
                "--repeats",
                "1",
                "--warmup",
                "1",
                "--variants",
                "fp32",
                "bf16",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    rows = json.loads(out.read_text())["rows"]
    assert [(r["variant"], r["mode"]) for r in rows] == [
        ("fp32", "train"),
        ("fp32", "inference"),
        ("bf16", "train"),
        ("bf16", "inference"),
    ]
    assert all(r["ours"] > 0 and r["torchvision"] > 0 for r in rows)
