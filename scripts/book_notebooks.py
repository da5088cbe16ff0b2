"""Write a Jupyter notebook beside each executable page of the book, for its launch buttons.

The pages are MyST Markdown notebooks (``book/*.md``). Colab opens only ``.ipynb`` files, and
sphinx-book-theme points its Colab and Binder buttons at an ``.ipynb`` of the same name when
one lies beside the page. So every page of ``_toc.yml`` with code cells gets one, without
outputs, read with the parser the build itself uses (myst-nb). Each notebook starts with a cell
that, on Colab only, clones the repository named in ``_config.yml`` and makes it importable.
The build ignores these notebooks (``exclude_patterns`` in ``_config.yml``).

    python scripts/book_notebooks.py           # write them (and delete ones no page needs)
    python scripts/book_notebooks.py --check   # exit 1 when one is missing, stale or orphaned
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import nbformat
import yaml
from myst_nb.core.read import read_myst_markdown_notebook
from myst_parser.config.main import MdParserConfig

ROOT = Path(__file__).resolve().parent.parent
BOOK = "book"
COMMAND = "python scripts/book_notebooks.py"
CLONE_DIR = "/content/resnet-course"

COLAB_SETUP = """\
# On Google Colab: fetch the course repository and make its code importable.
# Anywhere else (Binder, a clone of the repository) this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import os
    import subprocess

    REPOSITORY, BRANCH, CLONE = {repository}, {branch}, {clone}
    if not os.path.isdir(CLONE):
        subprocess.run(["git", "clone", "--quiet", "--depth", "1", "--branch", BRANCH, REPOSITORY, CLONE], check=True)
    # PyTorch comes with Colab; myst-nb provides the glue() the chapters call.
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "myst-nb>=1,<2"], check=True)
    sys.path[:0] = [CLONE, os.path.join(CLONE, "book")]
    os.chdir(os.path.join(CLONE, {page_dir}))"""


def load_config(root: Path = ROOT) -> dict:
    return yaml.safe_load((root / "_config.yml").read_text())


def toc_pages(root: Path = ROOT) -> list[str]:
    """Every page of ``_toc.yml`` in reading order, as docnames (``book/02_convolution``)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]

    def walk(entries: list[dict]) -> None:
        for entry in entries:
            if "file" in entry:
                pages.append(entry["file"])
            walk(entry.get("sections", []))

    for part in toc.get("parts", []):
        walk(part.get("chapters", []))
    walk(toc.get("chapters", []))
    return pages


def read_page(page: Path, config: dict) -> nbformat.NotebookNode:
    """The page as the build reads it: myst-nb's parser with the book's MyST extensions."""
    extensions = set(config.get("parse", {}).get("myst_enable_extensions", []))
    return read_myst_markdown_notebook(page.read_text(), MdParserConfig(enable_extensions=extensions), path=page)


def has_code(notebook: nbformat.NotebookNode) -> bool:
    return any(cell.cell_type == "code" for cell in notebook.cells)


def colab_setup_cell(config: dict, page_dir: str) -> nbformat.NotebookNode:
    repository = config["repository"]
    values = {
        "repository": repository["url"],
        "branch": repository.get("branch", "main"),
        "clone": CLONE_DIR,
        "page_dir": page_dir,
    }
    source = COLAB_SETUP.format(**{name: json.dumps(value) for name, value in values.items()})
    return nbformat.v4.new_code_cell(source)


def notebook_text(page: Path, config: dict, root: Path = ROOT) -> str:
    """The ``.ipynb`` for one page: its cells without outputs, after the Colab set-up cell."""
    notebook = read_page(page, config)
    notebook.cells.insert(0, colab_setup_cell(config, page.parent.relative_to(root).as_posix()))
    for number, cell in enumerate(notebook.cells):
        cell.id = f"cell-{number}"  # fixed ids, so that regenerating an unchanged page changes nothing
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["language_info"] = {"name": "python"}
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def expected_notebooks(root: Path = ROOT) -> dict[Path, str]:
    """Every notebook the book needs, mapped to its text."""
    config = load_config(root)
    notebooks = {}
    for docname in toc_pages(root):
        page = root / f"{docname}.md"
        if page.exists() and has_code(read_page(page, config)):
            notebooks[page.with_suffix(".ipynb")] = notebook_text(page, config, root)
    return notebooks


def existing_notebooks(root: Path = ROOT) -> set[Path]:
    return {p for p in (root / BOOK).rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts}


def problems(root: Path = ROOT) -> list[str]:
    """What is wrong with the committed notebooks, one line each; empty when they are up to date."""
    expected = expected_notebooks(root)
    found = []
    for path, text in expected.items():
        name = path.relative_to(root)
        if not path.exists():
            found.append(f"{name} is missing")
        elif path.read_text() != text:
            found.append(f"{name} is stale: it differs from what {name.with_suffix('.md')} and _config.yml give")
    for path in sorted(existing_notebooks(root) - set(expected)):
        found.append(f"{path.relative_to(root)} belongs to no page with code in _toc.yml")
    return found


def write_notebooks(root: Path = ROOT) -> None:
    expected = expected_notebooks(root)
    for path, text in expected.items():
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(root)}")
    for path in sorted(existing_notebooks(root) - set(expected)):
        path.unlink()
        print(f"deleted {path.relative_to(root)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report notebooks that are out of date")
    args = parser.parse_args(argv)
    if not args.check:
        write_notebooks()
        return 0
    found = problems()
    for line in found:
        print(line)
    if found:
        print(f"Regenerate them with: {COMMAND}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
