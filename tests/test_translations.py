"""The Spanish edition's machinery, without building the book: the catalogs follow the English
text (a changed paragraph turns fuzzy, a new one untranslated, and the check names both), the
check notices a translation that breaks markup, and what ``booksupport.bilingual`` writes is
what the editions extension reads. Whether the whole book is translated is
``tests/test_book.py::test_spanish_edition_is_complete``."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
from matplotlib.figure import Figure
from sphinx_intl.catalog import dump_po, load_po

from course_lib import PROJECT_ROOT as ROOT

GLOSSARY = "book/appendix/glossary"
CATALOG = f"locales/es/LC_MESSAGES/{GLOSSARY}.po"


def load(path: Path) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


TRANSLATIONS = load(ROOT / "scripts" / "translations.py")


@pytest.fixture
def glossary_book(tmp_path: Path) -> Path:
    """A copy of the book reduced to the glossary (no code to run), with its Spanish catalog and the scripts."""
    for name in ["_config.yml", "_config.es.yml", "book/references.bib", f"{GLOSSARY}.md", CATALOG]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    for folder in ["book/_ext", "book/_static"]:
        shutil.copytree(ROOT / folder, tmp_path / folder, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / "scripts").mkdir()
    for script in ["build_book.py", "translations.py", "book_notebooks.py"]:
        shutil.copy(ROOT / "scripts" / script, tmp_path / "scripts" / script)
    (tmp_path / "book" / "index.md").write_text("# A book\n\nIts glossary.\n")
    (tmp_path / "_toc.yml").write_text(f"format: jb-book\nroot: book/index\nchapters:\n  - file: {GLOSSARY}\n")
    return tmp_path


def translations(book: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(book / "scripts" / "translations.py"), *args],
        cwd=book,
        capture_output=True,
        text=True,
        timeout=300,
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def test_a_changed_paragraph_makes_the_translation_stale_and_the_check_fail(glossary_book: Path) -> None:
    page = glossary_book / f"{GLOSSARY}.md"
    catalog = glossary_book / CATALOG
    result = translations(glossary_book, "check", GLOSSARY)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "The Spanish edition is complete." in result.stdout

    # One paragraph changed and one added in English: until the catalog is updated, it is out of date.
    changed = "One pass of training over all the training photos."
    edit(page, "  One pass of training over every training photo.\n", f"  {changed}\n")
    added = "A paragraph that nobody has translated yet."
    edit(page, "```{glossary}\n", f"{added}\n\n```{{glossary}}\n")
    result = translations(glossary_book, "check", GLOSSARY)
    assert result.returncode == 1
    assert "catalog out of date: 2 messages new in English, 1 gone (run python scripts/translations.py update)" in (
        result.stdout
    )

    # After the update, the changed paragraph is fuzzy (its old translation kept as a suggestion),
    # the new one untranslated; the check names the page, the catalog and each message.
    result = translations(glossary_book, "update")
    assert result.returncode == 0, result.stdout + result.stderr
    messages = {message.id: message for message in load_po(catalog) if message.id}
    assert messages[changed].fuzzy and messages[changed].string.startswith("Una pasada de entrenamiento")
    assert not messages[added].string
    result = translations(glossary_book, "check", GLOSSARY, "--no-extract")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[0] == f"{GLOSSARY}: 24 of 26 messages translated, 1 untranslated, 1 fuzzy (English changed since)"
    assert f"  {CATALOG}: untranslated: {added!r}" in lines
    assert f"  {CATALOG}: fuzzy: {changed!r}" in lines

    # Translated again, the page is complete.
    spanish = load_po(catalog)
    spanish[changed].string = "Una pasada de entrenamiento por todas las fotos de entrenamiento."
    spanish[changed].flags.discard("fuzzy")
    spanish[added].string = "Un párrafo que nadie tradujo todavía."
    dump_po(str(catalog), spanish, width=76)
    result = translations(glossary_book, "check", GLOSSARY, "--no-extract")
    assert result.returncode == 0, result.stdout


def test_the_check_names_a_translation_that_breaks_markup(glossary_book: Path) -> None:
    catalog = glossary_book / CATALOG
    spanish = load_po(catalog)
    residual = next(m for m in spanish if m.id.startswith("A block that computes $y = F(x) + x$"))
    residual.string = residual.string.replace("una corrección $F$", "una corrección F")
    dump_po(str(catalog), spanish, width=76)
    result = translations(glossary_book, "check", GLOSSARY)
    assert result.returncode == 1
    assert f"{GLOSSARY}: 25 of 25 messages translated, 1 change the markup" in result.stdout.splitlines()
    assert f"  {CATALOG}: markup: lost $F$ in 'A block that computes $y = F(x) + x$:" in result.stdout


def test_markup_a_translation_must_keep() -> None:
    changes = TRANSLATIONS.markup_changes
    message = "See {doc}`the chapter <../02_convolution>` and {cite}`he2016deep`: $y = F(x) + x$, `fc`, {glue:text}`n`."
    assert changes(message, "Ver {doc}`el capítulo <../02_convolution>` y {cite}`he2016deep`: $y = F(x) + x$, `fc`, "
                   "{glue:text}`n`.") is None  # fmt: skip
    assert changes("{doc}`../01_problem`", "{doc}`../02_convolution`") == (
        "lost {doc}`../01_problem`; added {doc}`../02_convolution`"
    )
    assert changes("{glue:text}`n_train` photos", "{glue:text}`n_val` fotos") == (
        "lost {glue:text}`n_train`; added {glue:text}`n_val`"
    )
    assert changes("[the data](https://example.org/data)", "[los datos](https://example.org/data)") is None
    assert changes("uses `load_products`", "usa load_products") == "lost `load_products`"


def booksupport() -> types.ModuleType:
    sys.path.insert(0, str(ROOT / "book"))
    try:
        return load(ROOT / "book" / "booksupport.py")
    finally:
        sys.path.remove(str(ROOT / "book"))


def test_bilingual_output_is_what_the_editions_extension_reads() -> None:
    """A bilingual figure carries one PNG per language in the form book/_ext/editions.py takes
    apart, and a table one HTML table per language; ``draw`` is called once per language."""
    support = booksupport()
    editions = load(ROOT / "book" / "_ext" / "editions.py")
    asked = []

    def draw(language: str) -> Figure:
        asked.append(language)
        figure = Figure(figsize=(2, 1))
        figure.subplots().set_title({"en": "photos", "es": "fotos"}[language])
        return figure

    html = support.bilingual(draw)._repr_html_()
    assert asked == ["en", "es"]
    assert html.startswith(editions.BILINGUAL)
    parts = {match["language"]: match["html"] for match in editions.PART.finditer(html)}
    assert set(parts) == {"en", "es"} and parts["en"] != parts["es"]
    assert all(editions.PNG.match(part) for part in parts.values())

    table = support.bilingual(
        lambda language: support.table([(1, "x")], ["n", {"en": "name", "es": "nombre"}[language]])
    )
    parts = {match["language"]: match["html"] for match in editions.PART.finditer(table._repr_html_())}
    assert "<th>name</th>" in parts["en"] and "<th>nombre</th>" in parts["es"]
    assert parts["es"].startswith('<table class="table">')
    with pytest.raises(TypeError, match="not a Figure or a table"):
        support.bilingual(lambda language: "text")


def test_numbers_read_the_same_in_both_languages() -> None:
    """No thousands separator up to 9999, then a narrow no-break space: never a comma, a decimal in Spanish."""
    count = booksupport().count
    assert [count(2640), count(12345), count(-12345), count(1234567)] == [
        "2640",
        "12\u202f345",
        "-12\u202f345",
        "1\u202f234\u202f567",
    ]


def test_what_counts_as_a_figure_or_table_in_one_language() -> None:
    one_language_only = TRANSLATIONS.one_language_only
    figure = nbformat.v4.new_output("display_data", {"image/png": "iVBOR", "text/plain": "<Figure size 640x480>"})
    table = nbformat.v4.new_output("execute_result", {"text/markdown": "| a |\n|---|\n| 1 |"}, execution_count=1)
    both = nbformat.v4.new_output("display_data", {"text/html": '<div class="bilingual"><div data-edition="en">'})
    glued = nbformat.v4.new_output("display_data", {"text/plain": "'41%'"}, metadata={"scrapbook": {"name": "x"}})
    printed = nbformat.v4.new_output("stream", name="stdout", text="train: 2240 photos\n")
    assert [one_language_only(o) for o in (figure, table, both, glued, printed)] == [True, True, False, False, False]
