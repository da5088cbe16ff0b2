"""The instructor's HTML pages (report.html, similarity.html): one self-contained file each.

An instructor opens them offline, mails them, archives them with the grades; so they carry
their styles and plots inside (plots as inline SVG, drawn by matplotlib without pyplot's
global state) and link to nothing. The templates live in ``templates/`` beside this module and
are rendered with autoescaping: student names and answers are data, never markup.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["TEMPLATES", "render", "svg"]

TEMPLATES = Path(__file__).parent / "templates"


def render(template: str, **values: Any) -> str:
    """A page from one of the package's templates."""
    import jinja2

    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined
    )
    environment.filters["number"] = lambda value, digits=2: "" if value is None else f"{round(value, digits):g}"
    environment.filters["percent"] = lambda value: "" if value is None else f"{100 * value:.0f}%"
    return environment.get_template(template).render(**values)


def svg(draw: Callable[[Any], None], width: float = 4.0, height: float = 1.6) -> str:
    """A plot as an inline SVG element: ``draw(axes)`` draws it on a fresh figure."""
    import matplotlib
    from markupsafe import Markup
    from matplotlib.figure import Figure

    with matplotlib.rc_context({"svg.fonttype": "none", "font.size": 8, "svg.hashsalt": "course-grade"}):
        figure = Figure(figsize=(width, height), layout="constrained")
        draw(figure.add_subplot())
        buffer = io.StringIO()
        figure.savefig(buffer, format="svg")
    text = buffer.getvalue()
    return Markup(text[text.index("<svg") :])
