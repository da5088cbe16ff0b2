"""Where to cut: a linear head on the pooled output of each stage of the pretrained backbone.

``python -m course_lib probe`` runs the feature_extraction regime once per stage (``--cut``
layer1 ... layer4), with the convex head of :mod:`course_lib.head`, and tests each head. The
head is the solution of a convex problem with its weight decay chosen on validation, so one
run per stage says all there is: a seed changes nothing. The results folder::

    probes.csv       stage, features, validation and test accuracy, chosen weight decay, seconds
    where_to_cut.png test accuracy per stage, with the accuracy of always guessing the largest class
    summary.md       the table and how it was made
    settings.json    command, hardware, the starting weights and every option

Yosinski et al. (2014) measured how transferable features are layer by layer: the first
layers learn features general enough to serve any image task, the last ones features specific
to the task they were trained on. Which stage serves the product photos best depends on how
far they are from the source dataset; this command measures it for ours.
"""

from __future__ import annotations

import csv
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from course_lib import PROJECT_ROOT, plots
from course_lib.data import TASKS, load_products
from course_lib.errors import CourseError
from course_lib.experiment import ExperimentConfig, RegimeRun, train_regime
from course_lib.models import STAGE_NAMES, STAGES
from course_lib.options import option, to_argv
from course_lib.runtime import provenance, read_record, resolve_device, warm_up, write_record
from course_lib.weights import DEFAULT_CHECKPOINT, resolve

__all__ = ["ProbeConfig", "Probe", "probe", "read_probes", "run"]


@dataclass
class ProbeConfig:
    """The options of ``python -m course_lib probe``, each declared once, here."""

    weights: str | None = option(
        None,
        "the pretrained weights to probe: a checkpoint file or imagenet",
        metavar="PATH|imagenet",
        default_text=f"the shipped checkpoint {DEFAULT_CHECKPOINT.relative_to(PROJECT_ROOT)}",
    )
    stages: list[str] = option(list(STAGE_NAMES), "stages whose pooled output is probed", many=True, metavar="STAGE")
    image_size: int = option(64, "pixels per side (the resolution the shipped weights were trained at)")
    task: str = option("super", "label level: super (3 classes), coarse or fine", choices=TASKS)
    data: str | None = option(None, "dataset folder", metavar="PATH", default_text="the embedded copy")
    epochs: int = option(10, "L-BFGS epochs (ten iterations each over the whole training split)")
    device: str = option("auto", "auto (CUDA, then MPS, then CPU), cpu, cuda or mps")
    out: str = option("results/probes", "results folder")

    def __post_init__(self) -> None:
        unknown = [s for s in self.stages if s not in STAGE_NAMES]
        if unknown or not self.stages:
            raise CourseError(f"Unknown stage {', '.join(unknown) or '(none)'}; choose from {', '.join(STAGE_NAMES)}.")
        self.stages = [s for s in STAGE_NAMES if s in self.stages]

    def regime(self, stage: str) -> ExperimentConfig:
        """The feature_extraction run that probes ``stage``."""
        return ExperimentConfig(
            regimes=["feature_extraction"],
            cut=stage,
            task=self.task,
            image_size=self.image_size,
            data=self.data,
            weights=self.weights,
            epochs={"feature_extraction": self.epochs},
            device=self.device,
            out=self.out,
        )


@dataclass
class Probe:
    """The linear head on one stage's features, and how well it did."""

    stage: str
    features: int
    val_accuracy: float
    test_accuracy: float
    weight_decay: float
    seconds: float


def probe(config: ProbeConfig, *, command: str = "", log=print) -> list[Probe]:
    """Probe every stage of ``config``; write the results folder; return the probes in stage order."""
    device = resolve_device(config.device)
    record = provenance(device, command)
    started = time.perf_counter()
    pretrained = resolve(config.weights)
    data = load_products(config.data, task=config.task, image_size=config.image_size)
    warm_up(device, config.image_size)
    probes = []
    for stage in config.stages:
        result = train_regime(
            "feature_extraction", 0, data, config.regime(stage).for_device(device), weights=pretrained
        )
        probes.append(_probe(stage, result))
        log(f"{stage}: {probes[-1].features} features, test accuracy {probes[-1].test_accuracy:.1%}")
    majority = torch.bincount(data.test.labels).max().item() / len(data.test)
    record.update(
        wall_seconds=round(time.perf_counter() - started, 1),
        weights=str(pretrained.meta.get("path", config.weights)).replace(f"{PROJECT_ROOT}/", ""),
        weights_sha256=pretrained.meta.get("sha256"),
        majority_class_accuracy=majority,
        options=asdict(config),
    )
    _write(Path(config.out), probes, record)
    return probes


def _probe(stage: str, result: RegimeRun) -> Probe:
    history = result.history
    return Probe(
        stage=stage,
        features=STAGES[STAGE_NAMES.index(stage)][0],
        val_accuracy=history.records[-1].val_accuracy,
        test_accuracy=result.predictions.accuracy,
        weight_decay=history.settings["head_weight_decay"],
        seconds=history.total_seconds,
    )


def _write(out: Path, probes: list[Probe], record: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "probes.csv", "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(asdict(probes[0])))
        writer.writeheader()
        writer.writerows(asdict(p) for p in probes)
    plots.plot_probes(
        [(p.stage, p.features, p.test_accuracy) for p in probes],
        baseline=record["majority_class_accuracy"],
        path=out / "where_to_cut.png",
    )
    write_record(out, record)
    (out / "summary.md").write_text(_summary(probes, record))


def _summary(probes: list[Probe], record: dict) -> str:
    lines = [
        "# Where to cut: a linear head on each stage's features",
        "",
        "| stage | features | validation accuracy | test accuracy | weight decay | training seconds |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {p.stage} | {p.features} | {100 * p.val_accuracy:.1f} % | {100 * p.test_accuracy:.1f} % "
            f"| {p.weight_decay:g} | {p.seconds:.1f} |"
            for p in probes
        ),
        "",
        f"Always answering the largest class scores {100 * record['majority_class_accuracy']:.1f} % on the test split.",
        "Each head: standardised pooled features, multinomial logistic regression by L-BFGS, weight decay chosen",
        "on the validation split; the seconds include computing the features and choosing the weight decay.",
        "",
        "## How it was made",
        "",
        f"- Command: `{record['command']}`",
        f"- Date: {record['date']}; wall time {record['wall_seconds']:.0f} s",
        f"- Device: `{record['device']}`, {record['device_name']}; torch {record['torch']}",
        f"- Weights: `{record['weights']}` (sha256 {record['weights_sha256']})",
        f"- Photos: {record['options']['image_size']} px, task `{record['options']['task']}`",
        "",
    ]
    return "\n".join(lines)


def read_probes(folder: str | Path) -> tuple[list[Probe], dict]:
    """The probes and the settings record that ``python -m course_lib probe`` wrote to ``folder``."""
    folder = Path(folder)
    record = read_record(folder, "python -m course_lib probe")
    with open(folder / "probes.csv", newline="") as file:
        probes = [
            Probe(
                stage=row["stage"],
                features=int(row["features"]),
                val_accuracy=float(row["val_accuracy"]),
                test_accuracy=float(row["test_accuracy"]),
                weight_decay=float(row["weight_decay"]),
                seconds=float(row["seconds"]),
            )
            for row in csv.DictReader(file)
        ]
    return probes, record


def run(config: ProbeConfig) -> int:
    """``python -m course_lib probe``: the command recorded is the one that repeats the run."""
    probe(config, command=shlex.join(["python", "-m", "course_lib", "probe", *to_argv(config)]))
    print(f"Results in {config.out}/ (summary.md, probes.csv, where_to_cut.png)")
    return 0
