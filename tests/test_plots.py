"""The figures speak the reader's language: every plot function draws the same results with
English or Spanish words (``course_lib.i18n``), and the Spanish text is complete and consistent."""

from __future__ import annotations

import csv
import inspect
import string
from collections.abc import Callable

import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

from course_lib import PROJECT_ROOT, CourseError, plots
from course_lib.history import EpochRecord, History
from course_lib.i18n import CLASS_NAMES, LANGUAGES, SPANISH, MissingTranslation, class_name, translate

CLASSES = ["Fruit", "Packages", "Vegetables"]


def record(epoch: int, val_accuracy: float, cumulative: float) -> EpochRecord:
    return EpochRecord(epoch, 1.0, 0.5, 1.0, val_accuracy, 10.0, cumulative, 5.0, 1.0, 0.01)


def histories() -> dict[str, list[History]]:
    """Two seeds that reach 90 % (one only), and one regime that never does."""
    reached = History([record(1, 0.5, 10.0), record(2, 0.95, 20.0)])
    missed = History([record(1, 0.5, 30.0), record(2, 0.7, 60.0)])
    return {"finetune": [reached, missed], "fresh": [missed]}


def predictions() -> dict[str, object]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([0, 0, 1, 1, 2, 2])
    return {"images": images, "labels": labels, "predicted": {"fresh": torch.tensor([0, 1, 1, 1, 2, 0])}}


# One small call of each plot function, by name: a new plot function needs an entry here.
CALLS: dict[str, Callable[[str], Figure]] = {
    "plot_curves": lambda language: plots.plot_curves(histories(), language=language),
    "plot_time_to_target": lambda language: plots.plot_time_to_target(histories(), 0.9, language=language),
    "plot_predictions": lambda language: plots.plot_predictions(
        **predictions(), classes=CLASSES, count=3, language=language
    ),
    "plot_confusion": lambda language: plots.plot_confusion(
        {"fresh": torch.tensor([[5, 1, 0], [0, 4, 2], [1, 0, 6]])}, CLASSES, language=language
    ),
    "plot_probes": lambda language: plots.plot_probes(
        [("layer2", 128, 0.8), ("layer4", 512, 0.7)], baseline=0.45, language=language
    ),
}

PLOT_FUNCTIONS = sorted(name for name in plots.__all__ if name.startswith("plot_"))


def words(figure: Figure) -> list[str]:
    """Every text the figure shows once drawn: titles, labels, tick labels, legends, annotations."""
    figure.draw_without_rendering()
    return [text.get_text() for text in figure.findobj(Text) if text.get_visible() and text.get_text()]


@pytest.mark.parametrize("name", PLOT_FUNCTIONS)
def test_every_plot_function_takes_a_language(name: str) -> None:
    parameter = inspect.signature(getattr(plots, name)).parameters.get("language")
    assert parameter is not None, f"plots.{name} has no `language` parameter (see course_lib/i18n.py)"
    assert parameter.kind is inspect.Parameter.KEYWORD_ONLY and parameter.default == "en"
    assert name in CALLS, f"add a small call of plots.{name} to CALLS in tests/test_plots.py"


@pytest.mark.parametrize("name", PLOT_FUNCTIONS)
def test_spanish_figure_has_no_english_words(name: str) -> None:
    """Drawn in Spanish, a figure shows none of the English texts it shows in English, except
    those that are the same in both languages (numbers, regime names, untranslated class names)."""
    english, spanish = words(CALLS[name]("en")), words(CALLS[name]("es"))
    kept = set(english) & set(spanish)
    numbers = {text for text in kept if not any(c.isalpha() for c in text.replace("\\mathdefault", ""))}
    allowed = numbers | (kept & set(plots.REGIME_COLOURS))  # numbers (log-axis ticks too) and regime names
    assert kept <= allowed, f"plots.{name} shows English in Spanish: {sorted(kept - allowed)}"
    assert len(spanish) == len(english), "the Spanish figure should show the same number of texts"


def test_spanish_figures_show_spanish_labels_and_class_names() -> None:
    curves = words(CALLS["plot_curves"]("es"))
    assert "Exactitud (media ± desvío, 2 semillas)" in curves
    assert "época" in curves and "objetivo 90%" in curves and "entrenamiento (lotes aumentados)" in curves
    bars = words(CALLS["plot_time_to_target"]("es"))
    assert "Tiempo hasta 90% de exactitud de validación" in bars
    assert "no alcanzado en 60 s (mejor: 70.0%)" in bars
    assert any(text.endswith(", alcanzado en 1 de 2 semillas") for text in bars)
    confusion = words(CALLS["plot_confusion"]("es"))
    assert {"Fruta", "Envasados", "Verduras", "predicha", "real"} <= set(confusion)
    grid = words(CALLS["plot_predictions"]("es"))
    assert "real: Fruta" in grid and any(text.startswith("✓ predicho: ") for text in grid)


def test_english_is_the_default_and_unchanged() -> None:
    assert words(CALLS["plot_confusion"]("en")) == words(
        plots.plot_confusion({"fresh": torch.tensor([[5, 1, 0], [0, 4, 2], [1, 0, 6]])}, CLASSES)
    )
    assert "not reached in 60 s (best 70.0%)" in words(plots.plot_time_to_target(histories(), 0.9))


def test_unknown_language_is_a_course_error() -> None:
    with pytest.raises(CourseError, match="Unknown language 'fr'; choose from en, es"):
        plots.plot_curves(histories(), language="fr")


def test_a_message_without_spanish_raises_rather_than_showing_english() -> None:
    assert translate("a message nobody translated") == "a message nobody translated"
    with pytest.raises(MissingTranslation, match="add it to SPANISH in course_lib/i18n.py"):
        translate("a message nobody translated", "es")


def fields(template: str) -> list[tuple[str, str]]:
    return sorted((name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None)


@pytest.mark.parametrize("english", sorted(SPANISH))
def test_spanish_keeps_the_placeholders(english: str) -> None:
    assert fields(SPANISH[english]) == fields(english), f"{english!r} -> {SPANISH[english]!r}"


def test_every_class_name_the_book_shows_has_spanish() -> None:
    """The super-classes and the coarse classes (chapter 1 lists them) all have a Spanish name."""
    with open(PROJECT_ROOT / "data" / "grocery-store" / "manifest.csv", newline="") as manifest:
        rows = list(csv.DictReader(manifest))
    shown = {row["super_name"] for row in rows} | {row["coarse_name"] for row in rows}
    assert len(shown) == 3 + 43
    assert not shown - set(CLASS_NAMES["es"]), f"no Spanish name for {sorted(shown - set(CLASS_NAMES['es']))}"
    assert class_name("Granny-Smith", "es") == "Granny-Smith"  # fine classes (varieties, brands) stay as they are
    assert set(CLASS_NAMES) == set(LANGUAGES) - {"en"}
