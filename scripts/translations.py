"""The Spanish edition's translation catalogs: bring them up to date, and say what is missing.

The book is translated the way Sphinx projects are: each page's prose is cut into messages
(paragraphs, titles, list items, captions), collected by Sphinx's gettext builder into one
template per page (`_build/gettext/<page>.pot`), and merged by sphinx-intl into one catalog
per page (`locales/es/LC_MESSAGES/<page>.po`), where a translator writes each message's
Spanish. A paragraph changed in English comes back from the merge marked *fuzzy* (with the
old translation as a suggestion), a new one comes back untranslated; the Spanish edition shows
such messages in English until they are translated. Code cells, their outputs and display
math are not messages (book/_ext/editions.py); figures and tables are drawn in both
languages by the code itself (book/booksupport.py `bilingual`).

    python scripts/translations.py update         # gettext build + sphinx-intl update (make book runs it)
    python scripts/translations.py status         # one line per page: translated, fuzzy, untranslated
    python scripts/translations.py check          # exit 1 naming every page, catalog and message left to do
    python scripts/translations.py check book/01_problem book/appendix/glossary   # only these pages

`check` reports, per page: messages untranslated or fuzzy; a catalog that is missing or out of
date with the English text (run `update`); a translation that drops or changes a formula,
a code span, a citation, a glue value or a link target; and figures or tables that the page
still shows in English only (outputs not drawn with `bilingual`; read from the execution
cache, so after a build).

The assignments are translated the same way, one catalog per source notebook
(`locales/es/LC_MESSAGES/solutions/<assignment>/<notebook>.po`, made from the notebook's cells
by course_lib.grading.translations, no build needed); their Spanish releases are made from them
(scripts/release_exercises.py):

    python scripts/translations.py assignments update              # catalogs follow the English cells
    python scripts/translations.py assignments status
    python scripts/translations.py assignments check [ASSIGNMENT ...]   # exit 1 naming what is left to do
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from babel.messages.catalog import Catalog
from sphinx_intl.catalog import load_po

ROOT = Path(__file__).resolve().parent.parent
LANGUAGE = "es"
LOCALES = ROOT / "locales"
CATALOGS = LOCALES / LANGUAGE / "LC_MESSAGES"
TEMPLATES = ROOT / "_build" / "gettext"
COMMAND = "python scripts/translations.py"
ASSIGNMENTS = "solutions/"  # the assignments' catalogs under CATALOGS: see `assignments` below
SHOWN = 5  # messages quoted per page and kind in a report


def _script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # scripts/ is not a package
    spec.loader.exec_module(module)
    return module


def extract() -> None:
    """Write the message templates of every page from the English text (Sphinx's gettext builder).

    Captions live in the cells' outputs, so this reads the execution cache (and executes the
    chapters if the cache is empty)."""
    _script("build_book").run_sphinx("gettext", "en")


def update() -> None:
    """Templates from the English text, then sphinx-intl merges them into the catalogs."""
    extract()
    result = subprocess.run(
        [sys.executable, "-m", "sphinx_intl", "update", "--pot-dir", str(TEMPLATES)]
        + ["--locale-dir", str(LOCALES), "--language", LANGUAGE],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if result.returncode:
        sys.exit(f"sphinx-intl update failed:\n{result.stdout}{result.stderr}")
    changed = [line for line in result.stdout.splitlines() if not line.startswith("Not Changed")]
    print("\n".join(changed) if changed else "The catalogs were already up to date with the English text.")


# Markup a translation must keep exactly: formulas, code, substitutions, and roles other than
# links (citations, glue values). Link roles and Markdown links keep their target; their text
# may be translated.
LINK_ROLES = {"doc", "ref", "numref", "term", "download", "any"}
MARKUP = re.compile(
    r"\{\{.*?\}\}"  # {{ substitution }}
    r"|\{(?P<role>[\w:.-]+)\}`(?P<content>[^`]*)`"  # {role}`content`
    r"|(?<!\})`[^`]+`"  # `code`
    r"|\$\$.+?\$\$|(?<![\\$])\$[^$]+?(?<!\\)\$"  # $$math$$, $math$
    r"|\[[^\]]*\]\((?P<url>[^)]+)\)",  # [text](url)
    re.DOTALL,
)


def markup(text: str) -> Counter:
    found = Counter()
    for match in MARKUP.finditer(text):
        if match["role"] in LINK_ROLES:
            target = re.search(r"<([^>]+)>\s*$", match["content"])
            found[f"{{{match['role']}}}`{target[1] if target else match['content']}`"] += 1
        elif match["url"]:
            found[f"link to {match['url']}"] += 1
        else:
            found[match[0]] += 1
    return found


def markup_changes(message: str, translation: str) -> str | None:
    """What the translation loses or adds of the message's markup, or None when it keeps it."""
    source, target = markup(message), markup(translation)
    if source == target:
        return None
    lost, added = source - target, target - source
    parts = [f"lost {', '.join(lost)}" if lost else "", f"added {', '.join(added)}" if added else ""]
    return "; ".join(p for p in parts if p)


@dataclass
class PageReport:
    """What remains to translate on one page."""

    page: str
    total: int = 0
    untranslated: list[str] = field(default_factory=list)
    fuzzy: list[str] = field(default_factory=list)
    markup: list[str] = field(default_factory=list)
    catalog: list[str] = field(default_factory=list)  # a catalog missing or out of date
    english_outputs: int | None = 0  # None: the page's outputs are not in the execution cache

    @property
    def po(self) -> str:
        return (CATALOGS / f"{self.page}.po").relative_to(ROOT).as_posix()

    @property
    def complete(self) -> bool:
        return not (self.untranslated or self.fuzzy or self.markup or self.catalog or self.english_outputs)

    def summary(self) -> str:
        done = self.total - len(self.untranslated) - len(self.fuzzy)
        if self.complete:
            return f"{self.page}: complete ({self.total} messages)"
        parts = [f"{done} of {self.total} messages translated"]
        parts += [f"{len(self.untranslated)} untranslated"] if self.untranslated else []
        parts += [f"{len(self.fuzzy)} fuzzy (English changed since)"] if self.fuzzy else []
        parts += [f"{len(self.markup)} change the markup"] if self.markup else []
        parts += self.catalog
        if self.english_outputs is None:
            parts.append("outputs not built yet (make book)")
        elif self.english_outputs:
            parts.append(f"{self.english_outputs} figures or tables only in English")
        return f"{self.page}: " + ", ".join(parts)

    def details(self) -> list[str]:
        lines = []
        quoted = [("untranslated", list(map(_short, self.untranslated))), ("fuzzy", list(map(_short, self.fuzzy)))]
        for kind, messages in [*quoted, ("markup", self.markup)]:
            lines += [f"  {self.po}: {kind}: {m}" for m in messages[:SHOWN]]
            if len(messages) > SHOWN:
                lines.append(f"  {self.po}: ... and {len(messages) - SHOWN} more {kind}")
        if self.english_outputs:
            lines.append(f"  {self.page}.md: draw its figures and tables with booksupport.bilingual")
        return lines


def _short(text: str, width: int = 90) -> str:
    text = " ".join(text.split())
    return repr(text if len(text) <= width else text[: width - 1] + "…")


def _messages(catalog: Catalog) -> dict[str, object]:
    return {message.id: message for message in catalog if message.id}


def english_only_outputs(page: str, notebooks: ModuleType, config: dict) -> int | None:
    """How many figures and tables the page's executed cells show in one language only.

    Read from the execution cache: an image, Markdown or HTML output not made by
    ``booksupport.bilingual`` (whose HTML carries ``data-edition``). Printed text is the code's
    own output and stays as it is; glued values (``display=False``) are not shown as outputs."""
    from jupyter_cache import get_cache

    notebook = notebooks.read_page(ROOT / f"{page}.md", config)
    if not notebooks.has_code(notebook):
        return 0
    cache_path = ROOT / config["execute"]["cache"]
    if not cache_path.exists():
        return None
    try:
        _, notebook = get_cache(str(cache_path)).merge_match_into_notebook(notebook)
    except KeyError:
        return None
    hidden = {"remove-output", "remove-cell", "remove_output", "remove_cell"}
    return sum(
        one_language_only(output)
        for cell in notebook.cells
        if cell.cell_type == "code" and not set(cell.get("metadata", {}).get("tags", [])) & hidden
        for output in cell.get("outputs", [])
    )


def one_language_only(output: dict) -> bool:
    """Whether a cell output is a figure or a table drawn in one language (not by ``bilingual``)."""
    if output.get("output_type") not in ("display_data", "execute_result") or "scrapbook" in output.get("metadata", {}):
        return False
    data = output.get("data", {})
    if "data-edition=" in data.get("text/html", ""):
        return False
    return any(kind.startswith("image/") or kind in ("text/html", "text/markdown", "text/latex") for kind in data)


def reports(pages: list[str] | None = None, outputs: bool = True) -> list[PageReport]:
    """One report per page of ``_toc.yml`` (or of ``pages``), from the templates in ``_build/gettext``."""
    notebooks = _script("book_notebooks")
    config = notebooks.load_config(ROOT)
    found = []
    for page in pages or notebooks.toc_pages(ROOT):
        report = PageReport(page)
        template, catalog = TEMPLATES / f"{page}.pot", CATALOGS / f"{page}.po"
        english = _messages(load_po(template)) if template.exists() else {}
        report.total = len(english)
        if english and not catalog.exists():
            report.catalog.append(f"no catalog {report.po} (run {COMMAND} update)")
            report.untranslated = list(english)
        elif catalog.exists():
            spanish = _messages(load_po(catalog))
            new, gone = set(english) - set(spanish), set(spanish) - set(english)
            if new or gone:
                report.catalog.append(
                    f"catalog out of date: {len(new)} messages new in English, {len(gone)} gone (run {COMMAND} update)"
                )
            for message_id in english:
                message = spanish.get(message_id)
                if message is None or not message.string:
                    report.untranslated.append(message_id)
                elif message.fuzzy:
                    report.fuzzy.append(message_id)
                elif change := markup_changes(message_id, message.string):
                    report.markup.append(f"{change} in {_short(message_id, 60)}")
        if outputs:
            report.english_outputs = english_only_outputs(page, notebooks, config)
        found.append(report)
    known = {f"{page}.po" for page in notebooks.toc_pages(ROOT)}
    if pages is None:
        for orphan in sorted(CATALOGS.rglob("*.po")):
            name = orphan.relative_to(CATALOGS).as_posix()
            if name not in known and not name.startswith(ASSIGNMENTS):
                report = PageReport(name.removesuffix(".po"))
                report.catalog.append(
                    f"a catalog for no page of _toc.yml ({orphan.relative_to(ROOT)}): move or delete it"
                )
                found.append(report)
    return found


def print_status(pages: list[str] | None = None) -> list[PageReport]:
    found = reports(pages)
    for report in found:
        print(report.summary())
    complete = sum(report.complete for report in found)
    print(f"{complete} of {len(found)} pages complete in Spanish")
    return found


def check(pages: list[str] | None = None) -> list[str]:
    """Every problem, one line each (a page's summary, then its catalog and messages); empty when complete."""
    problems = []
    for report in reports(pages):
        if not report.complete:
            problems += [report.summary(), *report.details()]
    return problems


def assignments(command: str, names: list[str]) -> int:
    """The assignments' catalogs (course_lib.grading.translations), for the notebooks of this tree's solutions/."""
    from course_lib.grading import translations

    where = {"languages": (LANGUAGE,), "solutions": ROOT / "solutions", "locales": LOCALES}
    if command == "update":
        written = translations.update_catalogs(names or None, **where)
        for path in written:
            print(f"updated {path.relative_to(ROOT)}")
        print(f"{len(written)} catalogs updated" if written else "The catalogs already follow the English cells.")
        return 0
    if command == "status":
        for report in translations.reports(names or None, **where):
            print(report.summary())
        return 0
    problems = translations.problems(names or None, **where)
    print("\n".join(problems) if problems else "The assignments are complete in Spanish.")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("update", help="bring the catalogs up to date with the English text (gettext, sphinx-intl)")
    for name, text in [("status", "one line per page"), ("check", "exit 1 unless the translation is complete")]:
        command = commands.add_parser(name, help=text)
        command.add_argument("pages", nargs="*", help="pages as in _toc.yml (book/01_problem); default: all")
        command.add_argument("--no-extract", action="store_true", help="use the templates already in _build/gettext")
    tasks = commands.add_parser("assignments", help="the assignments' catalogs (solutions/): update, status, check")
    tasks.add_argument("task", choices=["update", "status", "check"])
    tasks.add_argument("names", nargs="*", help="assignments (01-convolution); default: all")
    args = parser.parse_args(argv)
    if args.command == "assignments":
        return assignments(args.task, args.names)
    if args.command == "update":
        update()
        return 0
    if not args.no_extract:
        extract()
    if args.command == "status":
        print_status(args.pages or None)
        return 0
    problems = check(args.pages or None)
    print("\n".join(problems) if problems else "The Spanish edition is complete.")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
