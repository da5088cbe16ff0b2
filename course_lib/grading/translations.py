"""The assignments in other languages: the source notebooks' prose, translated through gettext catalogs.

``solutions/<assignment>/<notebook>.ipynb`` stays the only source of an assignment. Its prose is cut
into messages: each paragraph, heading, list or table of a markdown cell, and the comments and
docstrings of its code cells (test cells excepted: they stay as they are). The messages of a notebook
are kept, with their translations, in one catalog per language,
``locales/<language>/LC_MESSAGES/solutions/<assignment>/<notebook>.po`` (the book's catalogs are
beside it, under ``book/``), and :func:`translated_source` writes the notebook in that language: the
English notebook with each message replaced, and one locked cell added after the setup cell,
``checks.set_language(...)``, so that the checks' hints speak the language of the instructions. Code,
test cells, hidden tests, grade ids and points are the English notebook's, so the same tests grade
both, and the release of each language is made from its translated source by the same nbgrader step
(:mod:`course_lib.grading.releases`).

:func:`update_catalogs` brings the catalogs up to date with the English cells: a message whose English
changed comes back *fuzzy* (its old translation kept as a suggestion) and a new one untranslated;
:func:`problems` names both, and :func:`translated_source` refuses to write a notebook while any
remain, so that no release and no graded class ever shows English in place of a translation.
"""

from __future__ import annotations

import ast
import copy
import io
import json
import re
import shutil
import tokenize
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

from course_lib import PROJECT_ROOT
from course_lib.grading import GradingError
from course_lib.grading.assignment import SOLUTIONS, assignment_source
from course_lib.i18n import LANGUAGES, check_language

__all__ = [
    "LANGUAGE_CELL",
    "LOCALES",
    "SOURCE_LANGUAGE",
    "TranslationIncomplete",
    "catalog_path",
    "match_language_cell",
    "messages",
    "notebook_language",
    "problems",
    "source_language",
    "translate_notebook",
    "translated_source",
    "update_catalogs",
]

LOCALES = PROJECT_ROOT / "locales"
SOURCE_LANGUAGE = LANGUAGES[0]  # the language the sources are written in
LANGUAGE_CELL = "language"  # grade id of the cell that sets the checks' language
UPDATE = "python scripts/translations.py assignments update"
# Comments that belong to nbgrader, not to students: never messages.
NBGRADER_MARKERS = re.compile(r"(BEGIN|END) (SOLUTION|HIDDEN TESTS)|YOUR (CODE|ANSWER) HERE")
# A line that starts a Markdown structure (heading, list item, table row, quote): its block keeps its lines.
STRUCTURE = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d+[.)]\s|\||>)")
CODE_SPAN = re.compile(r"(`+)(.+?)\1", re.DOTALL)
LINK_TARGET = re.compile(r"\]\(([^)]+)\)")


class TranslationIncomplete(GradingError):
    """A notebook cannot be written in a language: messages are untranslated or stale (fuzzy)."""


@dataclass(frozen=True)
class Message:
    """One piece of prose of a source notebook: its English text, where it is, and what kind it is."""

    text: str
    cell: str  # the cell's grade id (or id)
    kind: str  # "markdown", "comment" or "docstring"


# ---------------------------------------------------------------- cutting notebooks into messages


def _cell_name(cell: dict) -> str:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.get("id", "")


def _source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def _is_test(cell: dict) -> bool:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return cell["cell_type"] == "code" and bool(meta.get("grade")) and not meta.get("solution")


def _block_message(block: str) -> str | None:
    """The message of a Markdown block: its text, a plain paragraph's lines joined into one (so that
    wrapping the English differently changes nothing); None when there is nothing to translate (a
    block of code spans and symbols only)."""
    if not re.search(r"[A-Za-z]", CODE_SPAN.sub("", block)):
        return None
    lines = block.strip("\n").splitlines()
    if any(STRUCTURE.match(line) for line in lines):
        return "\n".join(lines)
    return " ".join(line.strip() for line in lines)


def _markdown_parts(text: str) -> list[tuple[str, str | None]]:
    """The cell cut into (text, message) parts whose texts join into the cell again: blocks separated by
    blank lines, each with its message; blank lines and fenced code blocks have none."""
    parts: list[tuple[str, str | None]] = []
    block: list[str] = []
    fence = False

    def flush() -> None:
        if block:
            joined = "".join(block)
            parts.append((joined, None if fence else _block_message(joined)))
            block.clear()

    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if fence:
            block.append(line)
            if stripped.startswith("```"):
                flush()
                fence = False
        elif stripped.startswith("```"):
            flush()
            block.append(line)
            fence = True
        elif not stripped:
            flush()
            parts.append((line, None))
        else:
            block.append(line)
    flush()
    return parts


def _code_parts(source: str) -> list[tuple[int, int, str, str, str]]:
    """The comments and one-line docstrings of a code cell: (start, end, prefix, message, suffix), where
    ``source[start:end]`` is ``prefix + message + suffix``. A cell that is not Python has none."""
    try:
        tree = ast.parse(source)
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (SyntaxError, tokenize.TokenError):
        return []
    docstring_rows = {
        node.body[0].lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    }
    starts = [0]
    for line in source.splitlines(keepends=True):
        starts.append(starts[-1] + len(line))
    found = []
    for token in tokens:
        (row, col), (end_row, end_col) = token.start, token.end
        start, end = starts[row - 1] + col, starts[end_row - 1] + end_col
        if token.type == tokenize.COMMENT and not NBGRADER_MARKERS.search(token.string):
            prefix = re.match(r"#+\s*", token.string)[0]
            if re.search(r"[A-Za-z]", token.string):
                found.append((start, end, prefix, token.string[len(prefix) :], ""))
        elif token.type == tokenize.STRING and row in docstring_rows and row == end_row:
            quote = token.string[:3]
            if quote in ('"""', "'''") and token.string.endswith(quote) and len(token.string) > 6:
                found.append((start, end, quote, token.string[3:-3], quote))
    return found


def messages(notebook: dict) -> list[Message]:
    """The prose of a source notebook, in order: what a translator translates."""
    found = []
    for cell in notebook["cells"]:
        if cell["cell_type"] == "markdown":
            for _, message in _markdown_parts(_source(cell)):
                if message is not None:
                    found.append(Message(message, _cell_name(cell), "markdown"))
        elif cell["cell_type"] == "code" and not _is_test(cell):
            for _, _, prefix, message, _ in _code_parts(_source(cell)):
                found.append(Message(message, _cell_name(cell), "comment" if prefix.startswith("#") else "docstring"))
    return found


# ---------------------------------------------------------------- catalogs


def catalog_path(assignment: str, notebook: str, language: str, locales: Path = LOCALES) -> Path:
    """Where the translation of ``solutions/ASSIGNMENT/NOTEBOOK.ipynb`` into ``language`` is kept."""
    return locales / language / "LC_MESSAGES" / "solutions" / assignment / f"{notebook}.po"


KIND_NOTES = {
    "markdown": "Markdown: keep the code spans, link targets, headings, list items and table rows.",
    "comment": "A code comment: one line.",
    "docstring": "A one-line docstring: one line, no triple quotes.",
}


def _template(path: Path, language: str) -> Catalog:
    """The catalog of a source notebook's messages, untranslated; one entry per distinct text."""
    catalog = Catalog(locale=language, project="course_lib assignments", creation_date=datetime.now(UTC))
    for message in messages(json.loads(path.read_text())):
        location = (f"{path.name}#{message.cell}", None)
        if message.text in catalog:
            catalog[message.text].locations.append(location)
        else:
            catalog.add(message.text, locations=[location], auto_comments=[KIND_NOTES[message.kind]])
    return catalog


def _read(path: Path) -> Catalog:
    with open(path, "rb") as handle:
        return read_po(handle)


def _render(catalog: Catalog) -> bytes:
    buffer = io.BytesIO()
    write_po(buffer, catalog, width=76, ignore_obsolete=True)
    return buffer.getvalue()


def _without_dates(text: bytes) -> bytes:
    """A catalog's text without its header's dates: to write a file only when what it says changes."""
    return re.sub(rb'"(POT-Creation-Date|PO-Revision-Date): [^"]*"', b"", text)


def _source_notebooks(assignments: list[str] | None, solutions: Path) -> list[Path]:
    names = assignments or sorted(p.name for p in solutions.iterdir() if list(p.glob("*.ipynb")))
    return [path for name in names for path in sorted(assignment_source(name, solutions).glob("*.ipynb"))]


def update_catalogs(
    assignments: list[str] | None = None,
    languages: tuple[str, ...] = LANGUAGES[1:],
    solutions: Path = SOLUTIONS,
    locales: Path = LOCALES,
) -> list[Path]:
    """Bring each notebook's catalogs up to date with its English cells; return the files written.

    A message whose English changed is matched to its old text and marked fuzzy with the old
    translation as a suggestion (gettext's merge, as sphinx-intl does for the book); a new one is
    added untranslated; messages no longer in the notebook are dropped.
    """
    written = []
    for path in _source_notebooks(assignments, solutions):
        for language in languages:
            target = catalog_path(path.parent.name, path.stem, language, locales)
            template = _template(path, language)
            catalog = template
            if target.exists():
                catalog = _read(target)
                catalog.update(template, update_header_comment=False)
            text = _render(catalog)
            if target.exists() and _without_dates(target.read_bytes()) == _without_dates(text):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(text)
            written.append(target)
    return written


def markup_changes(message: str, translation: str) -> str | None:
    """What the translation changes of the message's markup (code spans, link targets, the block's
    heading level, list items and table shape, one line for code prose), or None when it keeps it."""
    changes = []
    spans = (Counter(m[0] for m in CODE_SPAN.finditer(message)), Counter(m[0] for m in CODE_SPAN.finditer(translation)))
    if spans[0] != spans[1]:
        lost, added = spans[0] - spans[1], spans[1] - spans[0]
        changes += [f"lost {', '.join(lost)}"] if lost else []
        changes += [f"added {', '.join(added)}"] if added else []
    if Counter(LINK_TARGET.findall(message)) != Counter(LINK_TARGET.findall(translation)):
        changes.append("link targets differ")
    shape = [(_structure(line), line.count("|")) for line in message.splitlines() if STRUCTURE.match(line)]
    if shape != [(_structure(line), line.count("|")) for line in translation.splitlines() if STRUCTURE.match(line)]:
        changes.append("heading, list or table structure differs")
    if "\n" not in message and "\n" in translation:
        changes.append("more lines than the English")
    return "; ".join(changes) or None


def _structure(line: str) -> str:
    marker = STRUCTURE.match(line)[1]
    return re.sub(r"\d+", "1", marker.strip())


def _translations(catalog: Catalog) -> dict[str, str]:
    """The catalog's usable translations: translated and not fuzzy."""
    return {m.id: m.string for m in catalog if m.id and m.string and not m.fuzzy}


@dataclass
class NotebookReport:
    """What remains to translate in one notebook's catalog for one language."""

    catalog: str
    total: int = 0
    untranslated: list[str] | None = None
    fuzzy: list[str] | None = None
    markup: list[str] | None = None
    stale: str | None = None  # the catalog is missing or out of date with the English cells

    def lines(self) -> list[str]:
        """Nothing when complete, else one line per problem, each naming the catalog."""
        found = [f"{self.catalog}: {self.stale}"] if self.stale else []
        for kind, texts in (("untranslated", self.untranslated), ("fuzzy", self.fuzzy)):
            found += [f"{self.catalog}: {kind}: {_short(text)}" for text in texts or []]
        return found + [f"{self.catalog}: markup: {change}" for change in self.markup or []]

    def summary(self) -> str:
        left = len(self.untranslated or []) + len(self.fuzzy or [])
        return f"{self.catalog}: {self.total - left} of {self.total} messages translated" + (
            f", {len(self.fuzzy or [])} fuzzy (English changed since)" if self.fuzzy else ""
        )


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def reports(
    assignments: list[str] | None = None,
    languages: tuple[str, ...] = LANGUAGES[1:],
    solutions: Path = SOLUTIONS,
    locales: Path = LOCALES,
) -> list[NotebookReport]:
    """One report per source notebook and language."""
    found = []
    for path in _source_notebooks(assignments, solutions):
        english = list(dict.fromkeys(m.text for m in messages(json.loads(path.read_text()))))
        for language in languages:
            target = catalog_path(path.parent.name, path.stem, language, locales)
            name = target.relative_to(locales.parent).as_posix() if target.is_relative_to(locales.parent) else target
            report = NotebookReport(str(name), total=len(english), untranslated=[], fuzzy=[], markup=[])
            if not target.exists():
                report.stale, report.untranslated = f"no catalog (run {UPDATE})", english
                found.append(report)
                continue
            catalog = {m.id: m for m in _read(target) if m.id}
            new, gone = set(english) - set(catalog), set(catalog) - set(english)
            if new or gone:
                report.stale = (
                    f"catalog out of date: {len(new)} messages new in English, {len(gone)} gone (run {UPDATE})"
                )
            for text in english:
                message = catalog.get(text)
                if message is None or not message.string:
                    report.untranslated.append(text)
                elif message.fuzzy:
                    report.fuzzy.append(text)
                elif change := markup_changes(text, message.string):
                    report.markup.append(f"{change} in {_short(text, 60)}")
            found.append(report)
    return found


def problems(
    assignments: list[str] | None = None,
    languages: tuple[str, ...] = LANGUAGES[1:],
    solutions: Path = SOLUTIONS,
    locales: Path = LOCALES,
) -> list[str]:
    """Every problem with the assignments' translations, one line each; empty when they are complete."""
    return [line for report in reports(assignments, languages, solutions, locales) for line in report.lines()]


# ---------------------------------------------------------------- translated notebooks


def _language_cell(language: str) -> dict:
    """The locked cell that makes the checks speak ``language``: the same in Jupyter and when graded."""
    return {
        "cell_type": "code",
        "execution_count": None,
        "id": LANGUAGE_CELL,
        "metadata": {
            "nbgrader": {
                "grade": False,
                "grade_id": LANGUAGE_CELL,
                "locked": True,
                "schema_version": 3,
                "solution": False,
                "task": False,
            }
        },
        "outputs": [],
        "source": f'from course_lib import checks\n\nchecks.set_language("{language}")',
    }


def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def translate_notebook(notebook: dict, translations: dict[str, str], language: str) -> dict:
    """``notebook`` (an English source) in ``language``: each message replaced by its translation, and
    the language cell after the setup cell. Raises :class:`TranslationIncomplete` naming what is missing."""
    check_language(language)
    missing = [m.text for m in messages(notebook) if m.text not in translations]
    if missing:
        raise TranslationIncomplete(
            f"{len(missing)} messages have no {language} translation, e.g. {_short(missing[0])} "
            f"(python scripts/translations.py assignments status)"
        )
    result = copy.deepcopy(notebook)
    for cell in result["cells"]:
        text = _source(cell)
        if cell["cell_type"] == "markdown":
            pieces = []
            for part, message in _markdown_parts(text):
                trailing = part[len(part.rstrip("\n")) :]
                pieces.append(part if message is None else translations[message] + trailing)
            cell["source"] = _lines("".join(pieces))
        elif cell["cell_type"] == "code" and not _is_test(cell):
            for start, end, prefix, message, suffix in reversed(_code_parts(text)):
                text = text[:start] + prefix + translations[message] + suffix + text[end:]
            cell["source"] = _lines(text)
    names = [_cell_name(cell) for cell in result["cells"]]
    position = names.index("setup") + 1 if "setup" in names else 0
    result["cells"].insert(position, _language_cell(language))
    result.setdefault("metadata", {})["course_lib"] = {"language": language}
    return result


def notebook_language(notebook: dict) -> str:
    """The language a source or released notebook is written in (its metadata; English by default)."""
    return notebook.get("metadata", {}).get("course_lib", {}).get("language", SOURCE_LANGUAGE)


def source_language(folder: Path) -> str:
    """The language of an assignment's notebooks in ``folder`` (they share one); English for an English source."""
    languages = {notebook_language(json.loads(path.read_text())) for path in sorted(folder.glob("*.ipynb"))}
    if len(languages) > 1:
        raise GradingError(f"The notebooks in {folder} are in different languages ({', '.join(sorted(languages))}).")
    return languages.pop() if languages else SOURCE_LANGUAGE


def translated_source(
    assignment: str, language: str, target: Path, solutions: Path = SOLUTIONS, locales: Path = LOCALES
) -> Path:
    """Write the assignment's source in ``language`` into ``target`` (its notebooks translated, its other
    files as they are) and return ``target``; for English, a copy of the source."""
    source = assignment_source(assignment, solutions)
    check_language(language)
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if language == SOURCE_LANGUAGE:
        return target
    for path in sorted(source.glob("*.ipynb")):
        catalog = catalog_path(assignment, path.stem, language, locales)
        if not catalog.exists():
            raise TranslationIncomplete(
                f"No {language} translation of {assignment}/{path.name}: {catalog} is missing (run {UPDATE})."
            )
        try:
            notebook = translate_notebook(json.loads(path.read_text()), _translations(_read(catalog)), language)
        except TranslationIncomplete as error:
            raise TranslationIncomplete(f"{assignment}/{path.name} in {language}: {error}") from None
        (target / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n")
    return target


def _grade_id(cell: object) -> str | None:
    """A submitted cell's grade id, whatever shape a student left its metadata in."""
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbgrader = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbgrader.get("grade_id") if isinstance(nbgrader, dict) else None


def _language_cells(notebook: dict) -> list[int]:
    return [index for index, cell in enumerate(notebook.get("cells", [])) if _grade_id(cell) == LANGUAGE_CELL]


def match_language_cell(notebook: dict, release: dict) -> None:
    """Give a submitted notebook the language cell of the class's release, so that its checks speak the
    class's language whichever release the student worked in: added after the setup cell when the
    release has one and the notebook not (nbgrader then restores its locked source from the gradebook),
    removed when the release has none."""
    wanted = [release["cells"][index] for index in _language_cells(release)]
    present = _language_cells(notebook)
    if wanted and not present:
        names = [_grade_id(cell) for cell in notebook["cells"]]
        position = names.index("setup") + 1 if "setup" in names else 0
        notebook["cells"].insert(position, copy.deepcopy(wanted[0]))
    elif present and not wanted:
        for index in reversed(present):
            del notebook["cells"][index]
