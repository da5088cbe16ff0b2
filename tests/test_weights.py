"""Checkpoint files and torchvision's ImageNet weights: round trips and every user error."""

import os
import urllib.error

import numpy
import pytest
import torch
import torchvision

from course_lib import CourseError, weights
from course_lib.models import PlainNet18, ResNet18
from course_lib.regimes import prepare_model


class NotATensor:
    pass


def randomised(model):
    """A model whose BatchNorm buffers and affine parameters are not the defaults."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if "running_var" in name or name.endswith("bn1.weight") or name.endswith("bn2.weight"):
                tensor.copy_(torch.rand(tensor.shape, generator=generator) + 0.5)
            elif "running_mean" in name or name.endswith(".bias"):
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.1)
            elif "num_batches_tracked" in name:
                tensor.fill_(7)
    return model


@pytest.fixture(scope="module")
def source_model():
    torch.manual_seed(0)
    return randomised(ResNet18(num_classes=10))


def test_round_trip_keeps_tensors_and_meta(tmp_path, source_model):
    path = weights.save_checkpoint(tmp_path / "c.pt", source_model, source="cifar10", image_size=32, val_accuracy=0.9)
    checkpoint = weights.load_checkpoint(path)
    assert checkpoint.meta["source"] == "cifar10"
    assert checkpoint.meta["image_size"] == 32
    assert checkpoint.meta["val_accuracy"] == 0.9
    assert checkpoint.meta["sha256"] == weights.weights_sha256(source_model.state_dict())
    assert checkpoint.num_classes == 10
    expected = source_model.state_dict()
    assert list(checkpoint.state_dict) == list(expected)
    for name, tensor in expected.items():
        assert torch.equal(checkpoint.state_dict[name], tensor), name
    raw = torch.load(path, weights_only=True)
    assert raw["format"] == weights.FORMAT and raw["arch"] == "resnet18"
    assert os.listdir(tmp_path) == ["c.pt"]  # the temporary file was renamed, not left behind


def test_half_precision_checkpoint_is_smaller_and_loads_as_float32(tmp_path, source_model):
    full = weights.save_checkpoint(tmp_path / "full.pt", source_model)
    half = weights.save_checkpoint(tmp_path / "half.pt", source_model, half=True)
    assert half.stat().st_size < 0.6 * full.stat().st_size
    stored = torch.load(half, weights_only=True)["state_dict"]
    assert stored["conv1.weight"].dtype == torch.float16
    assert stored["bn1.num_batches_tracked"].dtype == torch.int64
    loaded = weights.load_checkpoint(half).state_dict
    for name, tensor in source_model.state_dict().items():
        assert loaded[name].dtype == tensor.dtype, name
        # float16 keeps 11 significant bits: relative error at most 2**-11 (plus subnormals near 0).
        torch.testing.assert_close(loaded[name], tensor, rtol=2**-11, atol=1e-7)


def test_saving_over_an_existing_checkpoint_replaces_it(tmp_path, source_model):
    path = tmp_path / "c.pt"
    weights.save_checkpoint(path, source_model, source="first")
    weights.save_checkpoint(path, source_model.state_dict(), source="second")
    assert weights.load_checkpoint(path).meta["source"] == "second"
    assert sorted(os.listdir(tmp_path)) == ["c.pt"]


def test_metadata_is_stored_as_plain_values(tmp_path, source_model):
    with pytest.raises(CourseError, match=r"meta\['history'\]\[1\] is a NotATensor"):
        weights.save_checkpoint(tmp_path / "c.pt", source_model, history=[0.5, NotATensor()])
    assert not any(tmp_path.iterdir())
    path = weights.save_checkpoint(
        tmp_path / "c.pt",
        source_model,
        folder=tmp_path,
        accuracy=numpy.float32(0.75),
        epochs=numpy.int64(3),
        loss=torch.tensor(0.5),
        hardware={"threads": 2, "sizes": (32, 64)},
    )
    meta = weights.load_checkpoint(path).meta
    assert meta["folder"] == str(tmp_path)
    assert (meta["accuracy"], meta["epochs"], meta["loss"]) == (0.75, 3, 0.5)
    assert type(meta["epochs"]) is int
    assert meta["hardware"] == {"threads": 2, "sizes": (32, 64)}


def test_missing_file(tmp_path):
    with pytest.raises(CourseError, match="No checkpoint at .*nothing.pt"):
        weights.load_checkpoint(tmp_path / "nothing.pt")


def test_missing_default_checkpoint_says_how_to_make_it(tmp_path, monkeypatch):
    monkeypatch.setattr(weights, "DEFAULT_CHECKPOINT", tmp_path / "resnet18-cifar10.pt")
    with pytest.raises(CourseError, match="python -m course_lib pretrain"):
        weights.resolve(None)
    with pytest.raises(CourseError, match="python -m course_lib pretrain"):
        prepare_model("finetune", 3)


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_text("hello"), "not written by torch.save"),
        (lambda p: torch.save([1, 2, 3], p), "expected a dict with format"),
        (lambda p: torch.save({"model": NotATensor()}, p), "Python objects other than tensors"),
    ],
    ids=["text", "list", "pickled-object"],
)
def test_file_that_is_not_a_checkpoint(tmp_path, write, message):
    path = tmp_path / "thing.pt"
    write(path)
    with pytest.raises(CourseError, match=message) as info:
        weights.load_checkpoint(path)
    assert str(path) in str(info.value)
    assert info.value.__cause__ is None


def test_wrong_architecture_names_missing_and_unexpected_keys(tmp_path):
    state_dict = PlainNet18().state_dict()  # no projection shortcuts
    state_dict["extra.weight"] = torch.zeros(1)
    torch.save(state_dict, tmp_path / "plain.pt")
    with pytest.raises(CourseError, match="does not hold ResNet-18") as info:
        weights.load_checkpoint(tmp_path / "plain.pt")
    text = str(info.value)
    assert "missing keys layer2.0.downsample.0.weight" in text
    assert "unexpected keys extra.weight" in text
    with pytest.raises(CourseError, match="does not hold ResNet-18"):
        weights.save_checkpoint(tmp_path / "never.pt", state_dict)
    assert not (tmp_path / "never.pt").exists()


def test_wrong_shapes_are_named(tmp_path):
    state_dict = ResNet18().state_dict()
    state_dict["layer1.0.conv1.weight"] = torch.zeros(64, 64, 5, 5)
    expected = r"layer1.0.conv1.weight \(64, 64, 5, 5\) instead of \(64, 64, 3, 3\)"
    with pytest.raises(CourseError, match=expected):
        weights.resolve(state_dict)


def test_damaged_checkpoint_fails_its_hash(tmp_path, source_model):
    path = weights.save_checkpoint(tmp_path / "c.pt", source_model)
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["layer3.1.conv2.weight"][0, 0, 0, 0] += 1.0
    torch.save(payload, path)
    with pytest.raises(CourseError, match="damaged"):
        weights.load_checkpoint(path)


def test_bare_state_dict_file_is_accepted(tmp_path, source_model):
    torch.save(source_model.state_dict(), tmp_path / "bare.pth")
    checkpoint = weights.load_checkpoint(tmp_path / "bare.pth")
    assert torch.equal(checkpoint.state_dict["fc.weight"], source_model.fc.weight)


def test_head_of_another_size_is_dropped_and_the_new_head_kept(source_model):
    model = ResNet18(num_classes=3)
    fresh_head = model.fc.weight.detach().clone()
    note = weights.load_into(model, source_model.state_dict())
    assert "dropped its 10-class head" in note and "3-class head is freshly initialised" in note
    assert torch.equal(model.fc.weight, fresh_head)
    loaded = model.state_dict()
    for name, tensor in source_model.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(loaded[name], tensor), name


def test_head_of_the_same_size_is_loaded(source_model):
    model = ResNet18(num_classes=10)
    note = weights.load_into(model, weights.Checkpoint(source_model.state_dict(), {"source": "test"}))
    assert "head included" in note
    assert torch.equal(model.fc.weight, source_model.fc.weight)


def test_unsupported_weights_type():
    with pytest.raises(CourseError, match="weights must be None, 'imagenet'"):
        weights.resolve(42)


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    """An empty torch hub cache, and a network that always fails."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))

    def offline(url, *args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    return tmp_path / "torch"


def test_imagenet_offline_says_where_to_place_the_file(torch_home):
    expected = torch_home / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    assert weights.imagenet_cache_path() == expected
    with pytest.raises(CourseError) as info:
        weights.resolve("imagenet")
    text = str(info.value)
    assert f"place it at {expected}" in text
    assert torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url in text
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert "\n" not in text


def test_imagenet_from_the_torch_hub_cache(torch_home):
    """torchvision checks the hash in the file name only when downloading, so a stand-in works."""
    torch.manual_seed(1)
    stand_in = torchvision.models.resnet18().state_dict()
    path = weights.imagenet_cache_path()
    path.parent.mkdir(parents=True)
    torch.save(stand_in, path)

    checkpoint = weights.resolve("imagenet")
    assert checkpoint.meta["source"] == "imagenet"
    for name, tensor in stand_in.items():
        assert torch.equal(checkpoint.state_dict[name], tensor), name

    model, _ = prepare_model("finetune", 3, weights="imagenet")
    assert "dropped its 1000-class head" in model.weights_note
    assert torch.equal(model.layer4[1].conv2.weight, stand_in["layer4.1.conv2.weight"])


def test_imagenet_unreadable_cache_file(torch_home):
    path = weights.imagenet_cache_path()
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a download")
    with pytest.raises(CourseError, match="could not be read.*Delete it"):
        weights.resolve("imagenet")
