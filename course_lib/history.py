"""What a training run records: one ``EpochRecord`` per epoch, in a ``History``.

The History is the course's measurement: curves per epoch, and the headline "time to 90 %
validation accuracy" (:meth:`History.time_to`). It is saved as JSON (everything) and CSV
(one row per epoch) beside each run, and read back by the plots, the book and the
benchmarks, so it lives apart from the training loop that fills it.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from course_lib.errors import CourseError
from course_lib.files import write_atomically

__all__ = ["TIMING_FIELDS", "EpochRecord", "History"]


@dataclass
class EpochRecord:
    """What one epoch did. Accuracies are fractions in [0, 1]; seconds are wall-clock."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    seconds: float
    cumulative_seconds: float
    images_per_second: float
    eval_seconds: float
    lr: float


TIMING_FIELDS = ("seconds", "cumulative_seconds", "images_per_second", "eval_seconds")


@dataclass
class History:
    """Per-epoch records of one training run, and what it ran on.

    ``setup_seconds`` is the one-off cost counted into the first epoch's cumulative time
    (computing cached features); ``peak_memory_bytes`` is CUDA's peak allocation on a GPU
    and the process's peak resident memory elsewhere.
    """

    records: list[EpochRecord] = field(default_factory=list)
    device: str = ""
    device_name: str = ""
    peak_memory_bytes: int = 0
    setup_seconds: float = 0.0
    cached_features: bool = False
    settings: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.records)

    def column(self, name: str) -> list[float]:
        """One field of every epoch, e.g. ``history.column("val_accuracy")``."""
        return [getattr(record, name) for record in self.records]

    @property
    def best_val_accuracy(self) -> float | None:
        return max(self.column("val_accuracy"), default=None)

    @property
    def total_seconds(self) -> float:
        return self.records[-1].cumulative_seconds if self.records else 0.0

    @property
    def seconds_per_epoch(self) -> float | None:
        """Mean training seconds per epoch, without the one-off setup."""
        if not self.records:
            return None
        return (self.total_seconds - self.setup_seconds) / len(self.records)

    def time_to(self, accuracy: float) -> float | None:
        """Cumulative training seconds at the end of the first epoch whose validation
        accuracy reached ``accuracy`` (a fraction: 0.90 for 90 %); None when none did."""
        for record in self.records:
            if record.val_accuracy >= accuracy:
                return record.cumulative_seconds
        return None

    def epochs_to(self, accuracy: float) -> int | None:
        """The first epoch (counted from 1) whose validation accuracy reached ``accuracy``."""
        for record in self.records:
            if record.val_accuracy >= accuracy:
                return record.epoch
        return None

    def without_timings(self) -> list[dict]:
        """The records with the wall-clock fields left out: what must repeat exactly."""
        return [{k: v for k, v in asdict(record).items() if k not in TIMING_FIELDS} for record in self.records]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> History:
        values = dict(values)
        records = [EpochRecord(**record) for record in values.pop("records", [])]
        known = {f.name for f in fields(cls)}
        return cls(records=records, **{k: v for k, v in values.items() if k in known})

    def to_json(self, path: str | os.PathLike) -> Path:
        text = json.dumps(self.to_dict(), indent=2) + "\n"
        return write_atomically(path, lambda file: file.write(text))

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> History:
        path = Path(path)
        try:
            return cls.from_dict(json.loads(path.read_text()))
        except FileNotFoundError:
            raise CourseError(f"No history file at {path}.") from None
        except (ValueError, TypeError) as error:
            raise CourseError(f"{path} is not a training history ({error}).") from None

    def to_csv(self, path: str | os.PathLike) -> Path:
        """One row per epoch, one column per EpochRecord field."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        names = [f.name for f in fields(EpochRecord)]
        with open(path, "w", newline="") as file:
            writer = csv.DictWriter(file, fieldnames=names)
            writer.writeheader()
            for record in self.records:
                writer.writerow(asdict(record))
        return path

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        """The epochs of a CSV written by ``to_csv`` (the run's metadata lives in the JSON)."""
        with open(path, newline="") as file:
            rows = list(csv.DictReader(file))
        types = {f.name: (int if f.name == "epoch" else float) for f in fields(EpochRecord)}
        return cls(records=[EpochRecord(**{k: types[k](v) for k, v in row.items()}) for row in rows])
