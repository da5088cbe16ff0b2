"""Where pretrained weights come from: checkpoint files, torchvision's ImageNet weights.

A checkpoint is one ``torch.save`` file holding a dict::

    {"format": "course_lib.checkpoint/1", "arch": "resnet18",
     "state_dict": {...}, "meta": {"sha256": ..., "source": ..., ...}}

``meta`` holds plain values only (strings, numbers, lists, dicts), so a checkpoint
loads with ``torch.load(..., weights_only=True)``: opening one never runs code.
``meta["sha256"]`` is the hash of the stored tensors (names, dtypes, shapes and
bytes), checked on every load so that a damaged file is caught before training.

The shipped checkpoint, ``DEFAULT_CHECKPOINT``, is ResNet-18 trained on CIFAR-10 by
``python -m course_lib pretrain``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from course_lib import PROJECT_ROOT
from course_lib.errors import CourseError
from course_lib.files import write_atomically
from course_lib.models import ResNet18

__all__ = [
    "ARCH",
    "DEFAULT_CHECKPOINT",
    "FORMAT",
    "HEAD_KEYS",
    "Checkpoint",
    "Weights",
    "imagenet_cache_path",
    "imagenet_state_dict",
    "load_checkpoint",
    "load_into",
    "resolve",
    "save_checkpoint",
    "weights_sha256",
]

FORMAT = "course_lib.checkpoint/1"
ARCH = "resnet18"
HEAD_KEYS = ("fc.weight", "fc.bias")
DEFAULT_CHECKPOINT = PROJECT_ROOT / "data" / "weights" / "resnet18-cifar10.pt"
PRETRAIN_HINT = "python -m course_lib pretrain"

log = logging.getLogger(__name__)

StateDict = dict[str, torch.Tensor]


@dataclass
class Checkpoint:
    """A state_dict and what is known about it (source dataset, image size, accuracy, sha256)."""

    state_dict: StateDict
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return self.state_dict["fc.weight"].shape[0]


Weights = None | str | os.PathLike | Mapping[str, torch.Tensor] | Checkpoint


def weights_sha256(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A hash of the tensors themselves (not of the file), so that it survives re-saving."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    model_or_state_dict: nn.Module | Mapping[str, torch.Tensor],
    *,
    half: bool = False,
    **meta: Any,
) -> Path:
    """Write a checkpoint atomically (a temporary file in the same folder, then a rename).

    ``half=True`` stores floating-point tensors as float16, halving the file (ResNet-18:
    about 22 MiB instead of 45 MiB); they load back as float32. ``meta`` takes plain
    values, for example ``source="cifar10", image_size=32, val_accuracy=0.91``.
    """
    path = Path(path)
    meta = {key: _plain(value, f"meta[{key!r}]") for key, value in meta.items()}
    state_dict = _state_dict_of(model_or_state_dict)
    _check_architecture(state_dict, f"the weights given to save_checkpoint for {path}")
    stored = {}
    for name, tensor in state_dict.items():
        tensor = tensor.detach().cpu()
        if half and tensor.is_floating_point():
            tensor = tensor.to(torch.float16)
        stored[name] = tensor.clone()
    meta = dict(meta, sha256=weights_sha256(stored), half=half)
    payload = {"format": FORMAT, "arch": ARCH, "state_dict": stored, "meta": meta}

    return write_atomically(path, lambda file: torch.save(payload, file), binary=True)


def load_checkpoint(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint (or a bare ResNet-18 state_dict file) and check it before use.

    Raises CourseError for a missing file, a file that is not a checkpoint, weights of
    another architecture (naming the missing and unexpected keys) and a hash mismatch.
    """
    path = Path(path)
    if not path.is_file():
        hint = f" Make it with `{PRETRAIN_HINT}`." if path.resolve() == DEFAULT_CHECKPOINT else ""
        raise CourseError(f"No checkpoint at {path}.{hint}")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CourseError(
            f"{path} is not a checkpoint: it holds Python objects other than tensors and "
            "plain values, and is not loaded, since unpickling them could run code."
        ) from None
    except Exception as error:
        reason = _first_line(error) if zipfile.is_zipfile(path) else "not written by torch.save"
        raise CourseError(f"{path} is not a checkpoint ({reason}).") from None

    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        if payload.get("arch") != ARCH:
            raise CourseError(f"{path} holds a {payload.get('arch')!r} model, not {ARCH!r}.")
        state_dict, meta = payload["state_dict"], dict(payload.get("meta", {}))
    elif _is_state_dict(payload):
        state_dict, meta = payload, {"source": f"state_dict file {path.name}"}
    else:
        raise CourseError(
            f"{path} is not a checkpoint: expected a dict with format {FORMAT!r} "
            "(written by course_lib.weights.save_checkpoint) or a bare state_dict."
        )

    _check_architecture(state_dict, str(path))
    expected = meta.get("sha256")
    if expected is not None and weights_sha256(state_dict) != expected:
        raise CourseError(
            f"{path} is damaged: its weights do not match the sha256 recorded when it was saved. "
            "Copy it again or re-create it."
        )
    state_dict = {name: _as_float32(tensor) for name, tensor in state_dict.items()}
    meta.setdefault("path", str(path))
    return Checkpoint(state_dict, meta)


def imagenet_state_dict() -> StateDict:
    """torchvision's ResNet-18 ImageNet weights (IMAGENET1K_V1), through its own API and cache.

    The file lives in the torch hub cache ($TORCH_HOME/hub/checkpoints). Offline, a
    CourseError says which file to download and where to put it.
    """
    from torchvision.models import ResNet18_Weights

    entry = ResNet18_Weights.IMAGENET1K_V1
    target = imagenet_cache_path()
    try:
        state_dict = entry.get_state_dict(progress=False, check_hash=True, map_location="cpu", weights_only=True)
    except Exception as error:
        if target.is_file():
            raise CourseError(
                f"The ImageNet weights file {target} could not be read ({_first_line(error)}). Delete it and try again."
            ) from None
        raise CourseError(
            f"Could not download torchvision's ImageNet ResNet-18 weights ({_first_line(error)}). "
            f"Offline, download {entry.url} elsewhere and place it at {target}."
        ) from None
    _check_architecture(state_dict, str(target))
    return state_dict


def imagenet_cache_path() -> Path:
    """Where torchvision keeps (or expects) the ImageNet ResNet-18 file."""
    from torchvision.models import ResNet18_Weights

    url = ResNet18_Weights.IMAGENET1K_V1.url
    return Path(torch.hub.get_dir()) / "checkpoints" / url.rsplit("/", 1)[-1]


def resolve(weights: Weights) -> Checkpoint:
    """Turn any accepted form of ``weights`` into a Checkpoint.

    None means the shipped checkpoint; ``"imagenet"`` torchvision's ImageNet weights;
    any other string or path a checkpoint file; a dict a state_dict.
    """
    if weights is None:
        return load_checkpoint(DEFAULT_CHECKPOINT)
    if isinstance(weights, Checkpoint):
        _check_architecture(weights.state_dict, "the Checkpoint given")
        return weights
    if isinstance(weights, str) and weights.lower() == "imagenet":
        return Checkpoint(imagenet_state_dict(), {"source": "imagenet"})
    if isinstance(weights, (str, os.PathLike)):
        return load_checkpoint(weights)
    if isinstance(weights, Mapping) and _is_state_dict(weights):
        _check_architecture(weights, "the state_dict given")
        return Checkpoint(dict(weights), {"source": "state_dict"})
    raise CourseError(
        f"weights must be None, 'imagenet', a checkpoint path, a state_dict or a Checkpoint, "
        f"not {type(weights).__name__}."
    )


def load_into(model: ResNet18, weights: Weights) -> str:
    """Copy pretrained weights into ``model``; return a one-line note of what was loaded.

    The backbone must match exactly. A pretrained head of another size (1000 ImageNet
    or 10 CIFAR-10 classes for a 3-class task) is dropped on purpose and the model
    keeps its own freshly initialised head; the note says so.
    """
    checkpoint = resolve(weights)
    source = checkpoint.meta.get("source", "checkpoint")
    where = checkpoint.meta.get("path")
    origin = f"{source} ({where})" if where else str(source)
    head_shapes = {name: tuple(model.state_dict()[name].shape) for name in HEAD_KEYS}
    loaded_shapes = {name: tuple(checkpoint.state_dict[name].shape) for name in HEAD_KEYS}
    if head_shapes == loaded_shapes:
        model.load_state_dict(checkpoint.state_dict, strict=True)
        note = f"Loaded all weights from {origin}, head included."
    else:
        backbone = {k: v for k, v in checkpoint.state_dict.items() if k not in HEAD_KEYS}
        model.load_state_dict(backbone, strict=False)
        note = (
            f"Loaded the backbone from {origin}; dropped its {checkpoint.num_classes}-class head, "
            f"the new {model.fc.out_features}-class head is freshly initialised."
        )
    log.info(note)
    return note


def _state_dict_of(model_or_state_dict: nn.Module | Mapping[str, torch.Tensor]) -> StateDict:
    if isinstance(model_or_state_dict, nn.Module):
        return model_or_state_dict.state_dict()
    if isinstance(model_or_state_dict, Checkpoint):
        return model_or_state_dict.state_dict
    if isinstance(model_or_state_dict, Mapping) and _is_state_dict(model_or_state_dict):
        return dict(model_or_state_dict)
    raise CourseError(f"save_checkpoint needs a model or a state_dict, not {type(model_or_state_dict).__name__}.")


_PLAIN = (str, int, float, bool, type(None))


def _plain(value: Any, where: str) -> Any:
    """``value`` as something ``torch.load(weights_only=True)`` reads back.

    Paths become strings and NumPy or 0-d tensor scalars Python numbers; other objects
    raise CourseError, before any training time is lost to an unreadable checkpoint.
    """
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(item, f"{where}[{index}]") for index, item in enumerate(value))
    if isinstance(value, dict):
        return {_plain(key, f"a key of {where}"): _plain(item, f"{where}[{key!r}]") for key, item in value.items()}
    if hasattr(value, "item") and getattr(value, "ndim", None) == 0:
        return _plain(value.item(), where)
    raise CourseError(
        f"{where} is a {type(value).__name__}; checkpoint metadata holds plain values only "
        "(str, int, float, bool, None, and lists or dicts of them)."
    )


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


@functools.cache
def _reference_shapes() -> dict[str, tuple[int, ...]]:
    return {name: tuple(t.shape) for name, t in ResNet18().state_dict().items()}


def _check_architecture(state_dict: Mapping[str, torch.Tensor], what: str) -> None:
    """Raise CourseError unless ``state_dict`` is a ResNet-18 (any head size)."""
    reference = _reference_shapes()
    missing = sorted(set(reference) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(reference))
    if missing or unexpected:
        raise CourseError(
            f"{what} does not hold ResNet-18 weights: missing keys {_few(missing)}; unexpected keys {_few(unexpected)}."
        )
    wrong = [
        f"{name} {tuple(state_dict[name].shape)} instead of {shape}"
        for name, shape in reference.items()
        if name not in HEAD_KEYS and tuple(state_dict[name].shape) != shape
    ]
    head = state_dict["fc.weight"].shape
    if state_dict["fc.bias"].shape != head[:1] or head[1:] != (512,):
        wrong.append(f"head fc.weight {tuple(head)} / fc.bias {tuple(state_dict['fc.bias'].shape)}")
    if wrong:
        raise CourseError(f"{what} does not hold ResNet-18 weights: wrong shapes {_few(wrong)}.")


def _as_float32(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.float() if tensor.is_floating_point() else tensor


def _few(items: list[str], limit: int = 5) -> str:
    if not items:
        return "none"
    shown = ", ".join(items[:limit])
    return shown if len(items) <= limit else f"{shown} and {len(items) - limit} more"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__
