"""DistributedDataParallel on CPU: two Gloo processes train to the weights of one process.

The end-to-end test starts ``torchrun --nproc_per_node=2`` on a tiny synthetic dataset
(23 photos of 32 px, batch 12: two steps, the second split unevenly as 6 + 5) and
compares the weights, BatchNorm statistics and training loss with the same ``fit`` in
a single process, for the fresh and finetune regimes. They differ only by the order of
floating-point sums: about 2e-6 when measured, against 0.2 when BatchNorm is left
unsynchronised; the tolerance is 1e-4. Few steps, because a freshly initialised
ResNet-18 on random photos amplifies any rounding difference quickly (a relative
perturbation of 1e-7 of the weights grows to ~1e-3 within three steps).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.distributed import AllReduceBatchNorm2d, Context, convert_batchnorm, current, setup
from course_lib.models import ResNet18
from course_lib.weights import load_checkpoint

TOLERANCE = dict(atol=1e-4, rtol=1e-4)

WORKER = textwrap.dedent(
    """
    import sys
    import torch
    from course_lib.data import ProductData, Split
    from course_lib.distributed import current
    from course_lib.models import ResNet18
    from course_lib.regimes import prepare_model
    from course_lib.runtime import seed_everything
    from course_lib.train import TrainConfig, fit

    torch.set_num_threads(1)


    def split(n, seed):
        g = torch.Generator().manual_seed(seed)
        images = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
        labels = torch.arange(n) % 3
        return Split(images, labels, [f"{seed}-{i}.jpg" for i in range(n)])


    data = ProductData(split(23, 1), split(9, 2), split(3, 3), ["a", "b", "c"], "super", 32, "synthetic")
    results = {}
    for regime in ("fresh", "finetune"):
        seed_everything(0)
        weights = None if regime == "fresh" else ResNet18(num_classes=10).state_dict()
        model, groups = prepare_model(regime, 3, weights=weights, lr=0.01)
        start = {k: v.detach().clone() for k, v in model.state_dict().items()}
        history = fit(model, groups, data, TrainConfig(epochs=1, batch_size=12, device="cpu", seed=0), progress=False)
        results[regime] = {
            "start": start,
            "state": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "train_loss": history.records[0].train_loss,
            "train_accuracy": history.records[0].train_accuracy,
            "val_accuracy": history.records[0].val_accuracy,
        }
    context = current()
    results["world_size"] = context.world_size
    if context.is_main:
        torch.save(results, sys.argv[1])
    """
)


def run_worker(tmp_path, processes: int) -> dict:
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    out = tmp_path / f"result-{processes}.pt"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(name, None)
    if processes == 1:
        command = [sys.executable, str(script), str(out)]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc_per_node={processes}",
            str(script),
            str(out),
        ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return torch.load(out, weights_only=True)


@pytest.mark.slow
def test_two_gloo_processes_train_like_one(tmp_path):
    single = run_worker(tmp_path, 1)
    double = run_worker(tmp_path, 2)
    assert single["world_size"] == 1 and double["world_size"] == 2
    for regime in ("fresh", "finetune"):
        one, two = single[regime], double[regime]
        assert one["state"].keys() == two["state"].keys()
        for name, value in one["state"].items():
            assert torch.allclose(value.float(), two["state"][name].float(), **TOLERANCE), (regime, name)
        assert two["train_loss"] == pytest.approx(one["train_loss"], rel=1e-4)
        assert two["train_accuracy"] == pytest.approx(one["train_accuracy"])
        assert two["val_accuracy"] == pytest.approx(one["val_accuracy"])
        # Training really moved the weights and the BatchNorm statistics (by far more than the tolerance).
        for name in ("fc.weight", "bn1.running_mean"):
            assert (one["state"][name] - one["start"][name]).abs().max() > 1e-3, (regime, name)


def test_single_process_context_changes_nothing():
    context = setup("cpu")
    assert context == current() == Context()
    assert context.is_main and not context.enabled
    model = nn.Linear(4, 3)
    assert context.wrap(model) is model
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    assert context.shard(logits, labels) == (logits, labels)
    loss = F.cross_entropy(logits, labels)
    assert context.scale_loss(loss, 5, 5) is loss


def test_shards_cover_the_global_batch_in_order():
    batch = torch.arange(7)
    shards = [Context(rank, 3).shard(batch)[0] for rank in range(3)]
    assert [len(s) for s in shards] == [3, 2, 2]
    assert torch.equal(torch.cat(shards), batch)


def test_scaled_slice_losses_average_to_the_global_mean():
    """What DDP computes (the mean over ranks of the scaled slice losses) is the global mean loss."""
    logits, labels = torch.randn(7, 3), torch.randint(0, 3, (7,))
    world = 2
    losses, sums = [], []
    for rank in range(world):
        context = Context(rank, world)
        slice_logits, slice_labels = context.shard(logits, labels)
        loss = F.cross_entropy(slice_logits, slice_labels)
        losses.append(context.scale_loss(loss, len(slice_labels), 7))
        sums.append(loss * len(slice_labels))
    assert torch.allclose(sum(losses) / world, F.cross_entropy(logits, labels))
    assert torch.allclose(sum(sums), F.cross_entropy(logits, labels, reduction="sum"))


def test_convert_batchnorm_keeps_parameters_and_outputs():
    model = ResNet18(num_classes=3)
    parameters = [id(p) for p in model.parameters()]
    keys = list(model.state_dict())
    x = torch.randn(4, 3, 32, 32)
    model.eval()
    before = model(x)
    convert_batchnorm(model)
    assert isinstance(model.bn1, AllReduceBatchNorm2d)
    assert isinstance(model.layer2[0].downsample[1], AllReduceBatchNorm2d)
    assert not any(type(m) is nn.BatchNorm2d for m in model.modules())
    assert [id(p) for p in model.parameters()] == parameters
    assert list(model.state_dict()) == keys
    assert torch.allclose(model(x), before)
    # Without a process group it trains exactly like BatchNorm2d.
    bn, reference = AllReduceBatchNorm2d(8), nn.BatchNorm2d(8)
    y = torch.randn(6, 8, 5, 5)
    assert torch.allclose(bn(y), reference(y))
    assert torch.allclose(bn.running_var, reference.running_var)


@pytest.mark.slow
def test_pretraining_on_two_gloo_processes_writes_once_and_trains_like_one(tmp_path):
    """torchrun runs pretrain in every process: each trains its share, the first alone writes.

    Without augmentation: augmented noise photos make near-ties in max pooling and ReLU whose
    winner float rounding decides, so one and two processes then part by more than rounding."""
    sys.path.insert(0, str(Path(__file__).parent))
    from test_pretrain import BATCH, make_cifar_zip

    data = make_cifar_zip(tmp_path / "cifar.zip")
    outputs = {}
    for processes in (1, 2):
        out = tmp_path / f"p{processes}" / "w.pt"
        launcher = (
            [sys.executable]
            if processes == 1
            else [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}"]
        )
        options = f"--epochs 2 --image-size 32 --batch-size {BATCH} --lr 0.01 --augmentation none --device cpu".split()
        command = [*launcher, "-m", "course_lib", "pretrain", "--data", str(data), *options, "--out", str(out)]
        command += ["--run-dir", str(out.parent / "run")]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
            env.pop(name, None)
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        log = out.with_name("w.log").read_text()
        assert log.count("# started") == 1 and log.count("test accuracy") == 1  # one writer
        assert len(out.with_name("w-history.csv").read_text().splitlines()) == 1 + 2
        outputs[processes] = load_checkpoint(out).state_dict
    for name, value in outputs[1].items():
        assert torch.allclose(value.float(), outputs[2][name].float(), atol=2e-3, rtol=2e-3), name
