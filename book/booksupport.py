"""Small helpers shared by the book's chapters: where results live, what hardware ran a cell, timing,
and figures and tables in both of the book's languages.

The chapters import ``course_lib`` for everything the course teaches; this module only
holds the bookkeeping that every chapter repeats.
"""

from __future__ import annotations

import base64
import io
import platform
import time
from collections.abc import Callable, Iterable, Sequence

import matplotlib.pyplot as plt
import torch
from IPython.display import Markdown
from markdown_it import MarkdownIt
from matplotlib.figure import Figure

from course_lib import PROJECT_ROOT
from course_lib.i18n import LANGUAGES
from course_lib.runtime import device_name

RESULTS = PROJECT_ROOT / "results"


def hardware() -> str:
    """The machine a cell ran on, for figure captions: CPU model and threads, PyTorch version."""
    return f"{device_name(torch.device('cpu'))}; PyTorch {torch.__version__}; Python {platform.python_version()}"


def fastest_seconds(function: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Wall-clock seconds of the fastest of ``repeats`` calls of ``function()``, after ``warmup`` calls.

    Other work on a shared machine only ever adds time to a call, so the fastest call is the
    best estimate of what the code itself costs.
    """
    for _ in range(warmup):
        function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def count(number: int | torch.Tensor) -> str:
    """A whole number as both editions may print it: no separator up to 9999, then groups of
    three digits split by a narrow space (2640, 12 345). Written the English way (2,640) it
    would read as a decimal in Spanish; this is the SI's rule, and the Real Academia Española's."""
    value = int(number)
    return str(value) if abs(value) < 10_000 else f"{value:,}".replace(",", "\u202f")


def table(rows: Iterable[Sequence], columns: Sequence[str], formats: dict[str, str] | None = None) -> Markdown:
    """A Markdown table for a notebook cell's output; ``formats`` maps a column to a format spec."""
    formats = formats or {}

    def cell(column: str, value: object) -> str:
        spec = formats.get(column)
        return format(value, spec) if spec else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, v) for c, v in zip(columns, row, strict=True)) + " |" for row in rows]
    return Markdown("\n".join(lines))


# How figures are written into a page: the resolution and margins of IPython's inline backend.
FIGURE_DPI = 100


def _figure_html(figure: Figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=FIGURE_DPI, bbox_inches="tight")
    plt.close(figure)  # a pyplot figure left open would also be shown, in one language only
    return f'<img src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}" alt="" />'


def _table_html(table: Markdown) -> str:
    return MarkdownIt("commonmark").enable("table").render(table.data).replace("<table>", '<table class="table">')


def _edition_style() -> str:
    """CSS that shows only the part in the page's language (``<html lang>``): the book's
    editions set it, Jupyter sets English. Carried by each output, so that it also works in a
    notebook opened outside the book."""
    default, *others = LANGUAGES
    rules = [f'html:not([lang|="{code}"]) [data-edition="{code}"]' for code in others]
    rules += [f'html[lang|="{code}"] [data-edition="{default}"]' for code in others]
    return "<style>" + ", ".join(rules) + " { display: none; }</style>"


class Bilingual:
    """One cell output holding the same figure or table in each of the book's languages.

    The book runs each chapter's code once and publishes the outputs in both editions, so a
    figure is drawn once per language from the same computed values; each edition shows
    its own (``data-edition``, see ``_edition_style``)."""

    def __init__(self, parts: dict[str, str], text: str) -> None:
        self.parts = parts
        self.text = text

    def _repr_html_(self) -> str:
        parts = "".join(f'<div data-edition="{code}" lang="{code}">{html}</div>' for code, html in self.parts.items())
        return f'<div class="bilingual">{_edition_style()}{parts}</div>'

    def __repr__(self) -> str:
        return self.text


def bilingual(draw: Callable[[str], Figure | Markdown]) -> Bilingual:
    """The figure or table ``draw(language)`` makes, in every language of the book.

    ``draw`` takes ``"en"`` or ``"es"`` and only draws: compute the values before (outside
    ``draw``), so that both languages show the same numbers and photos, and pass every word
    through ``course_lib.i18n`` (``translate``, ``class_name``; the plots of ``course_lib.plots``
    take ``language=``). Make figures with ``matplotlib.figure.Figure``, or close them."""
    parts, text = {}, ""
    for language in LANGUAGES:
        made = draw(language)
        if isinstance(made, Figure):
            parts[language], text = _figure_html(made), text or f"<figure in {', '.join(LANGUAGES)}>"
        elif isinstance(made, Markdown):
            parts[language], text = _table_html(made), text or made.data
        else:
            raise TypeError(f"bilingual: draw({language!r}) returned {type(made).__name__}, not a Figure or a table()")
    return Bilingual(parts, text)
