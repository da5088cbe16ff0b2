"""fit(): determinism, resume, the cached-features path, History and its files."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib import CourseError
from course_lib.data import ProductData, Split
from course_lib.evaluation import confusion_matrix, evaluate, predict
from course_lib.head import WEIGHT_DECAYS
from course_lib.history import EpochRecord, History
from course_lib.regimes import count_trainable, prepare_model
from course_lib.runtime import seed_everything
from course_lib.train import TrainConfig, choose_path, fit

SIZE = 32


def tiny_split(per_class: int, seed: int, classes: int = 3) -> Split:
    """Noisy photos whose mean colour gives the class away: learnable in a few steps."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(classes).repeat_interleave(per_class)
    base = torch.zeros(len(labels), 3, SIZE, SIZE)
    base[torch.arange(len(labels)), labels] = 200.0
    noise = torch.randint(0, 56, base.shape, generator=generator).float()
    images = (base + noise).to(torch.uint8)
    return Split(images, labels, [f"photo{i}.jpg" for i in range(len(labels))])


def tiny_data(per_class: int = 8) -> ProductData:
    return ProductData(
        train=tiny_split(per_class, 1),
        val=tiny_split(3, 2),
        test=tiny_split(3, 3),
        classes=["Fruit", "Packages", "Vegetables"],
        task="super",
        image_size=SIZE,
        source="synthetic",
    )


def run(
    regime, pretrained_checkpoint, *, seed=0, epochs=2, init_seed=None, out=None, resume=False, on_epoch=None, **options
):
    seed_everything(seed if init_seed is None else init_seed)
    weights = None if regime == "fresh" else pretrained_checkpoint
    model, groups = prepare_model(regime, 3, weights=weights, lr=0.05)
    config = TrainConfig(epochs=epochs, seed=seed, device="cpu", **{"batch_size": 8, **options})
    history = fit(model, groups, tiny_data(), config, out=out, resume=resume, on_epoch=on_epoch)
    return model, history


@pytest.mark.parametrize("regime", ["fresh", "finetune", "feature_extraction"])
def test_each_regime_trains_one_epoch(regime, pretrained_checkpoint):
    model, history = run(regime, pretrained_checkpoint, epochs=1)
    (record,) = history.records
    assert record.epoch == 1
    assert math.isfinite(record.train_loss) and math.isfinite(record.val_loss)
    assert 0.0 <= record.val_accuracy <= 1.0
    assert record.seconds > 0 and record.images_per_second > 0
    assert history.peak_memory_bytes > 0
    assert history.device == "cpu" and "threads" in history.device_name
    assert history.cached_features == (regime == "feature_extraction")
    if regime == "feature_extraction":
        assert count_trainable(model) == 512 * 3 + 3


def test_same_seed_same_history(pretrained_checkpoint):
    _, first = run("finetune", pretrained_checkpoint, seed=7)
    _, second = run("finetune", pretrained_checkpoint, seed=7)
    assert first.without_timings() == second.without_timings()
    _, other = run("finetune", pretrained_checkpoint, seed=8)
    assert other.without_timings() != first.without_timings()


class Interrupted(Exception):
    pass


def stop_after(epoch):
    def on_epoch(record):
        if record.epoch == epoch:
            raise Interrupted

    return on_epoch


@pytest.mark.parametrize("regime", ["fresh", "feature_extraction"])
def test_resume_equals_uninterrupted(regime, pretrained_checkpoint, tmp_path):
    whole_model, whole = run(regime, pretrained_checkpoint, epochs=3, out=tmp_path / "whole")

    with pytest.raises(Interrupted):
        run(regime, pretrained_checkpoint, epochs=3, out=tmp_path / "cut", on_epoch=stop_after(2))
    assert len(History.from_json(tmp_path / "cut" / "history.json")) == 2
    # Another random head before resuming: resuming must load every weight it needs.
    resumed_model, resumed = run(
        regime, pretrained_checkpoint, init_seed=99, epochs=3, out=tmp_path / "cut", resume=True
    )

    assert resumed.without_timings() == whole.without_timings()
    for (name, a), b in zip(whole_model.state_dict().items(), resumed_model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name


def test_resume_refuses_other_settings(pretrained_checkpoint, tmp_path):
    with pytest.raises(Interrupted):
        run("fresh", pretrained_checkpoint, epochs=2, out=tmp_path, on_epoch=stop_after(1))
    with pytest.raises(CourseError, match="other settings.*batch_size 8 -> 4"):
        run("fresh", pretrained_checkpoint, epochs=2, out=tmp_path, resume=True, batch_size=4)


def test_resume_without_run_folder_is_an_error(pretrained_checkpoint):
    with pytest.raises(CourseError, match="run folder"):
        run("fresh", pretrained_checkpoint, epochs=1, resume=True)


def test_cached_features_match_plain_path(pretrained_checkpoint):
    """Same batches, same head updates: the two paths agree to float32 round-off.

    Tolerance: 1e-5 on losses and weights (the backbone runs in batches of 256 on one
    path and of 8 on the other, which changes the order of some float sums)."""
    cached_model, cached = run(
        "feature_extraction", pretrained_checkpoint, epochs=3, augment="none", feature_cache=True, head="sgd"
    )
    plain_model, plain = run("feature_extraction", pretrained_checkpoint, epochs=3, augment="none", feature_cache=False)
    assert cached.cached_features and not plain.cached_features
    for a, b in zip(cached.records, plain.records, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, abs=1e-5)
        assert a.val_loss == pytest.approx(b.val_loss, abs=1e-5)
        assert a.train_accuracy == b.train_accuracy
        assert a.val_accuracy == b.val_accuracy
    torch.testing.assert_close(cached_model.fc.weight, plain_model.fc.weight, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        cached_model.state_dict()["layer4.1.bn2.running_mean"],
        plain_model.state_dict()["layer4.1.bn2.running_mean"],
        atol=0,
        rtol=0,
    )


def test_cached_features_need_a_frozen_backbone(pretrained_checkpoint):
    with pytest.raises(CourseError, match="frozen backbone"):
        run("finetune", pretrained_checkpoint, epochs=1, feature_cache=True)


def test_training_learns_the_tiny_task(pretrained_checkpoint):
    model, history = run("fresh", pretrained_checkpoint, epochs=4)
    assert history.records[-1].train_loss < history.records[0].train_loss
    predictions = predict(model, tiny_data().test)
    assert predictions.accuracy == evaluate(model, tiny_data().test).accuracy
    assert predictions.probabilities.sum(1).allclose(torch.ones(9))


def record(epoch, val_accuracy, cumulative):
    return EpochRecord(epoch, 1.0, 0.5, 1.0, val_accuracy, 10.0, cumulative, 5.0, 1.0, 0.01)


def test_time_to_is_first_cumulative_time_at_target():
    history = History([record(1, 0.80, 10.0), record(2, 0.90, 20.0), record(3, 0.85, 30.0), record(4, 0.95, 40.0)])
    assert history.time_to(0.90) == 20.0  # reached exactly counts
    assert history.epochs_to(0.90) == 2
    assert history.time_to(0.80) == 10.0
    assert history.time_to(0.95) == 40.0
    assert history.time_to(0.96) is None
    assert History().time_to(0.5) is None
    assert history.best_val_accuracy == 0.95


def test_history_round_trips_through_json_and_csv(tmp_path):
    history = History(
        [record(1, 0.8, 10.0), record(2, 0.9, 20.0)],
        device="cpu",
        device_name="x",
        setup_seconds=1.5,
        settings={"lr": {"head": 0.1}},
    )
    assert History.from_json(history.to_json(tmp_path / "h.json")) == history
    from_csv = History.from_csv(history.to_csv(tmp_path / "h.csv"))
    assert from_csv.records == history.records
    assert json.loads((tmp_path / "h.json").read_text())["settings"] == {"lr": {"head": 0.1}}
    with pytest.raises(CourseError, match="No history"):
        History.from_json(tmp_path / "missing.json")


def test_confusion_matrix_rows_are_true_classes():
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    predicted = torch.tensor([0, 1, 1, 2, 0, 2])
    assert confusion_matrix(labels, predicted, 3).tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 2]]


def test_label_smoothing_is_the_criterion_of_every_step(pretrained_checkpoint):
    model, groups = prepare_model("finetune", 3, weights=pretrained_checkpoint)
    config = TrainConfig(epochs=1, label_smoothing=0.1, device="cpu")
    path = choose_path(model, groups, tiny_data(), config, torch.device("cpu"))
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    assert torch.equal(path.step.criterion(logits, labels), F.cross_entropy(logits, labels, label_smoothing=0.1))
    _, smoothed = run("finetune", pretrained_checkpoint, epochs=1, label_smoothing=0.1)
    _, plain = run("finetune", pretrained_checkpoint, epochs=1)
    assert smoothed.settings["label_smoothing"] == 0.1
    assert smoothed.records[0].train_loss != plain.records[0].train_loss  # the run used the smoothed criterion


def test_convex_head_is_the_same_for_every_seed_and_records_its_weight_decay(pretrained_checkpoint):
    first_model, first = run("feature_extraction", pretrained_checkpoint, seed=0, epochs=3)
    other_model, other = run("feature_extraction", pretrained_checkpoint, seed=5, init_seed=9, epochs=3)
    assert "L-BFGS" in first.settings["optimizer"]
    assert first.settings["head_weight_decay"] in WEIGHT_DECAYS
    assert first.without_timings() == other.without_timings()
    torch.testing.assert_close(first_model.fc.weight, other_model.fc.weight)
    assert first.setup_seconds > 0  # features and the weight decay search are counted in the training time


@pytest.mark.parametrize("cut", ["layer2", "layer3"])
def test_cached_features_match_plain_path_for_every_cut(pretrained_checkpoint, cut):
    def train(cache: bool):
        seed_everything(0)
        model, groups = prepare_model("feature_extraction", 3, weights=pretrained_checkpoint, lr=0.05, cut=cut)
        config = TrainConfig(epochs=2, batch_size=8, device="cpu", augment="none", feature_cache=cache, head="sgd")
        return model, fit(model, groups, tiny_data(), config)

    (cached_model, cached), (plain_model, plain) = train(True), train(False)
    for a, b in zip(cached.records, plain.records, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, abs=1e-5) and a.val_accuracy == b.val_accuracy
    torch.testing.assert_close(cached_model.fc.weight, plain_model.fc.weight, atol=1e-5, rtol=0)
