"""The book's editions, one per language, built from the same sources (``scripts/build_book.py``).

Each edition is its own Sphinx build (``language`` ``en`` or ``es``) published side by side,
``en/`` and ``es/``, so that a page has the same path in both. This extension adds what the
editions share:

- a link in every page's header to the same page in the other edition (and ``hreflang``
  links in the page head, so that search engines pair them);
- each edition's own copy of the figures and tables that ``booksupport.bilingual`` drew in
  every language: the cell ran once and its output holds all of them (see ``Bilingual``); an
  edition keeps its language's part, figures becoming image files like any other output, so a
  page carries neither the other language's figures nor images inlined as text;
- the rule that only prose is translated: code-cell outputs (numbers computed at build time,
  figures and tables that ``booksupport.bilingual`` already draws in both languages) and
  display math are kept out of the gettext catalogs, so that the catalogs change only when
  the English text changes, never when a result does. Figure captions (written in the cell
  metadata) are prose and stay translatable. Glossary terms are written in both languages in
  the source (English, then Spanish), so they too stay as written, and so do their anchors;
- values glued into the prose (``{glue:text}`key```) in translated messages too: Sphinx parses a
  translation as a document of its own, which lacks the page's glued values, so there a glue
  role reads them as myst-nb reads another page's (``path::key``), from the page itself.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from myst_nb.ext.glue.roles import PasteRoleAny, PasteTextRole
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.transforms import SphinxTransform

TEMPLATES = Path(__file__).resolve().parent / "templates"
SWITCH = "edition-switch.html"
BUTTONS = "article-header-buttons.html"
# What booksupport.Bilingual writes: one part per language, a figure as an inlined PNG.
BILINGUAL = '<div class="bilingual">'
PART = re.compile(r'<div data-edition="(?P<language>[\w-]+)" lang="[\w-]+">(?P<html>.*?)</div>', re.DOTALL)
PNG = re.compile(r'^<img src="data:image/png;base64,(?P<data>[A-Za-z0-9+/=]+)" alt="(?P<alt>[^"]*)" />$')


def _is_output(node: nodes.Node) -> bool:
    return isinstance(node, nodes.container) and node.get("nb_element") == "cell_code_output"


def _in_caption(node: nodes.Node, output: nodes.Node) -> bool:
    while node is not None and node is not output:
        if isinstance(node, (nodes.caption, nodes.legend)):
            return True
        node = node.parent
    return False


class KeepOutputsAndMathUntranslated(SphinxTransform):
    """Mark cell outputs (captions excepted), display math and glossary terms as not translatable.

    Runs before Sphinx's i18n transforms (priority 10 and 20), which both extract messages for
    the catalogs and replace them with their translations.
    """

    default_priority = 5

    def apply(self, **kwargs: Any) -> None:
        for output in list(self.document.findall(_is_output)):
            for node in output.findall(nodes.TextElement):
                if not _in_caption(node, output):
                    node["translatable"] = False
        for node in self.document.findall(nodes.math_block):
            node["translatable"] = False
        for glossary in self.document.findall(addnodes.glossary):
            for term in glossary.findall(nodes.term):
                term["translatable"] = False


class KeepThisEditionsOutputs(SphinxTransform):
    """Replace each bilingual output by its part in this edition's language (English when it
    has none), a figure by an image file in myst-nb's output folder, which Sphinx copies to
    ``_images/`` as it does for every figure a cell shows. Runs before the outputs are marked
    untranslated, which then covers the nodes it makes."""

    default_priority = 4

    def apply(self, **kwargs: Any) -> None:
        language = self.config.language or "en"
        for raw in list(self.document.findall(nodes.raw)):
            text = raw.astext()
            if raw.get("format") != "html" or not text.startswith(BILINGUAL):
                continue
            parts = {match["language"]: match["html"] for match in PART.finditer(text)}
            part = parts.get(language, parts.get("en", ""))
            png = PNG.match(part.strip())
            if png:
                raw.replace_self(nodes.image(uri=self._write_png(base64.b64decode(png["data"])), alt=png["alt"]))
            else:
                raw.replace_self(nodes.raw("", part, format="html", classes=raw["classes"]))

    def _write_png(self, data: bytes) -> str:
        """The PNG saved under its hash; a URI relative to the source folder, as myst-nb makes."""
        folder = Path(self.env.mystnb_config.output_folder)
        path = folder / f"{hashlib.sha256(data).hexdigest()}.png"
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return "/" + os.path.relpath(path.resolve(), self.app.srcdir)


def _this_page(document: nodes.document) -> str:
    env = document.settings.env
    return "/" + Path(env.doc2path(env.docname, False)).as_posix()


class TranslatedPasteAny(PasteRoleAny):
    """``{glue}`key``` that also works in a translated message (see the module's docstring)."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        if "nb_renderer" not in self.document and "::" not in self.text:
            self.text = f"{_this_page(self.document)}::{self.text}"
        return super().run()


class TranslatedPasteText(PasteTextRole):
    """``{glue:text}`key``` that also works in a translated message (see the module's docstring)."""

    def run(self) -> tuple[list[nodes.Node], list[nodes.system_message]]:
        if "nb_renderer" not in self.document and "::" not in self.text:
            # myst-nb splits off a format spec first, so a reference needs one: "s" leaves the text as it is
            self.text = f"{_this_page(self.document)}::{self.text}" + ("" if ":" in self.text else ":s")
        return super().run()


def add_switch_template(app: Sphinx, config: Config) -> None:
    """Put the switch first among the buttons at the top of each page: the template replaces
    sphinx-book-theme's ``article-header-buttons.html`` in ``article_header_end`` and includes it."""
    config.templates_path.append(str(TEMPLATES))
    options = config.html_theme_options
    end = [item for item in options.get("article_header_end", [BUTTONS]) if item not in (BUTTONS, SWITCH)]
    options["article_header_end"] = [*end, SWITCH]


def add_edition_links(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: nodes.document | None
) -> None:
    """``edition_links``: the other editions' copies of this page, as relative URLs.

    The editions are sibling folders, so the same page elsewhere is up to the site's root,
    then down into the other edition along the same path."""
    here = app.config.language or "en"
    up = "../" * (pagename.count("/") + 1)
    links = [
        {"language": code, "name": name, "url": f"{up}{code}/{pagename}.html"}
        for code, name in app.config.book_editions.items()
        if code != here
    ]
    context["edition_links"] = links
    alternates = "".join(
        f'<link rel="alternate" hreflang="{link["language"]}" href="{link["url"]}" />\n' for link in links
    )
    context["metatags"] = context.get("metatags", "") + alternates


def setup(app: Sphinx) -> dict[str, Any]:
    # language code -> the edition's name in its own language, in the order of the switch
    app.add_config_value("book_editions", {"en": "English", "es": "Español"}, "html", types=[dict])
    app.add_transform(KeepOutputsAndMathUntranslated)
    app.add_transform(KeepThisEditionsOutputs)
    for name, role in [("", TranslatedPasteAny()), ("any", TranslatedPasteAny()), ("text", TranslatedPasteText())]:
        app.add_role_to_domain("glue", name, role, override=True)
    app.connect("config-inited", add_switch_template)
    app.connect("html-page-context", add_edition_links)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
