"""The assignments in Spanish: complete catalogs, releases up to date with them, the same cells and tests as
the English releases, catalogs that follow a change of the English cells, and a Spanish class graded end to
end by the real pipeline in the sandbox (full marks for the solution, the Spanish hint for a mistake).
The checks' Spanish hints themselves are tested in test_checks_spanish.py."""

from __future__ import annotations

import ast
import copy
import csv
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po, write_po

from course_lib import PROJECT_ROOT
from course_lib.grading.assignment import graded_cells
from course_lib.grading.cli import GradeConfig
from course_lib.grading.pipeline import grade
from course_lib.grading.releases import release_folder, stale_releases
from course_lib.grading.translations import (
    LANGUAGE_CELL,
    TranslationIncomplete,
    catalog_path,
    match_language_cell,
    problems,
    source_language,
    translated_source,
    update_catalogs,
)

SOLUTIONS = PROJECT_ROOT / "solutions"
EXERCISES = PROJECT_ROOT / "exercises"
ASSIGNMENTS = sorted(p.name for p in SOLUTIONS.iterdir() if list(p.glob("*.ipynb")))
FAULTS = Path(__file__).parent / "submissions"


def release(assignment: str, language: str) -> dict:
    return json.loads(next((release_folder(language, EXERCISES) / assignment).glob("*.ipynb")).read_text())


def source(cell: dict) -> str:
    return "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]


def grade_id(cell: dict) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def code_without_prose(text: str) -> str:
    """A code cell's syntax tree without its docstrings (comments are not in it): what must not be translated."""
    tree = ast.parse(text)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                body[0].value.value = ""
    return ast.dump(tree)


# ---------------------------------------------------------------- the translation and the releases


def test_the_assignments_are_completely_translated() -> None:
    """Every message of every source notebook has a Spanish translation, none stale, markup intact
    (python scripts/translations.py assignments check)."""
    assert problems() == []


def test_spanish_releases_up_to_date() -> None:
    """exercises/es/ is what `python scripts/release_exercises.py` makes from solutions/ and the catalogs now."""
    assert stale_releases(ASSIGNMENTS, release_folder("es", EXERCISES), language="es") == {}


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_spanish_release_has_the_english_cells_and_tests(assignment: str) -> None:
    """The same cells in the same order, with the same grade ids, points and locks; test cells identical;
    code identical but for comments and docstrings; plus the locked cell that sets the checks' language."""
    english, spanish = release(assignment, "en"), release(assignment, "es")
    assert spanish["metadata"]["course_lib"] == {"language": "es"} and "course_lib" not in english["metadata"]
    names = [grade_id(cell) for cell in spanish["cells"]]
    language = spanish["cells"].pop(names.index(LANGUAGE_CELL))
    assert names.index(LANGUAGE_CELL) == names.index("setup") + 1
    assert source(language).endswith('checks.set_language("es")') and language["metadata"]["nbgrader"]["locked"]
    assert len(spanish["cells"]) == len(english["cells"])
    for mine, theirs in zip(spanish["cells"], english["cells"], strict=True):
        meta = {k: v for k, v in mine["metadata"]["nbgrader"].items() if k != "checksum"}
        assert (mine["cell_type"], mine.get("id"), meta) == (
            theirs["cell_type"],
            theirs.get("id"),
            {k: v for k, v in theirs["metadata"]["nbgrader"].items() if k != "checksum"},
        )
        if mine["cell_type"] == "code":
            if meta.get("grade") and not meta.get("solution"):
                assert source(mine) == source(theirs)  # a test cell: byte for byte
            assert code_without_prose(source(mine)) == code_without_prose(source(theirs))
        elif not meta.get("solution"):  # instructions (an answer cell is nbgrader's stub in both)
            assert source(mine) != source(theirs)
    text = json.dumps(spanish, ensure_ascii=False)
    assert "BEGIN SOLUTION" not in text and "HIDDEN TESTS" not in text and "YOUR ANSWER HERE" in text


def test_the_glossary_terms_at_first_use() -> None:
    """The Spanish terms of the course (book/appendix/glossary.md), with the English one beside them."""
    text = "\n".join(
        source(cell)
        for assignment in ASSIGNMENTS
        for cell in release(assignment, "es")["cells"]
        if cell["cell_type"] == "markdown"
    )
    for term in [
        "red neuronal convolucional (*convolutional neural network*)",
        "núcleo (*kernel*)",
        "relleno (*padding*)",
        "paso (*stride*)",
        "conexión residual (*skip connection*)",
        "red base (*backbone*)",
        "entrenamiento desde cero (*fresh*)",
        "ajuste fino (*fine-tuning*)",
        "extracción de características (*feature extraction*)",
    ]:
        assert term in text, term


# ---------------------------------------------------------------- catalogs follow the English source


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project reduced to assignment 02: its source, its Spanish catalog and the script."""
    shutil.copytree(SOLUTIONS / "02-residual-block", tmp_path / "solutions" / "02-residual-block")
    catalog = catalog_path("02-residual-block", "residual_block", "es", PROJECT_ROOT / "locales")
    target = catalog_path("02-residual-block", "residual_block", "es", tmp_path / "locales")
    target.parent.mkdir(parents=True)
    shutil.copy(catalog, target)
    (tmp_path / "scripts").mkdir()
    shutil.copy(PROJECT_ROOT / "scripts" / "translations.py", tmp_path / "scripts")
    return tmp_path


def script(tree: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(tree / "scripts" / "translations.py"), "assignments", *args],
        cwd=tree,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_changed_cell_makes_its_translation_stale_until_translated(tree: Path) -> None:
    where = {"solutions": tree / "solutions", "locales": tree / "locales"}
    catalog = catalog_path("02-residual-block", "residual_block", "es", tree / "locales")
    po = "locales/es/LC_MESSAGES/solutions/02-residual-block/residual_block.po"
    assert script(tree, "check").returncode == 0
    # One paragraph changed in English, one added.
    path = tree / "solutions" / "02-residual-block" / "residual_block.ipynb"
    notebook = json.loads(path.read_text())
    shapes = next(cell for cell in notebook["cells"] if grade_id(cell) == "q-shapes")
    old = "A block that keeps the shape, and one that doubles the channels and halves the size."
    changed = "A block that keeps its shape, and one that doubles the channels and halves the size."
    assert old in source(shapes)
    shapes["source"] = source(shapes).replace(old, changed) + "\n\nA paragraph nobody has translated yet."
    path.write_text(json.dumps(notebook, indent=1))

    result = script(tree, "check", "02-residual-block")
    assert result.returncode == 1
    assert f"{po}: catalog out of date: 2 messages new in English, 1 gone (run " in result.stdout
    with pytest.raises(TranslationIncomplete, match="2 messages have no es translation"):
        translated_source("02-residual-block", "es", tree / "out", **where)

    # After the update the changed paragraph is fuzzy, its old Spanish kept as a suggestion; the new one untranslated.
    assert script(tree, "update").returncode == 0
    messages = {m.id: m for m in read_po(open(catalog, "rb")) if m.id}
    paragraph = next(text for text in messages if text.startswith("A block that keeps its shape"))
    assert messages[paragraph].fuzzy and messages[paragraph].string.startswith("Un bloque que conserva la forma")
    assert messages["A paragraph nobody has translated yet."].string == ""
    result = script(tree, "check")
    assert result.returncode == 1
    assert f"{po}: untranslated: 'A paragraph nobody has translated yet.'" in result.stdout.splitlines()
    assert any(line.startswith(f"{po}: fuzzy: 'A block that keeps its shape") for line in result.stdout.splitlines())
    assert "13 of 15 messages translated, 1 fuzzy" in script(tree, "status").stdout

    # Translated (and a translation that loses a code span is named), then complete.
    spanish = read_po(open(catalog, "rb"))
    spanish[paragraph].string = spanish[paragraph].string.replace("`downsample = None`", "downsample = None")
    spanish[paragraph].flags.discard("fuzzy")
    spanish["A paragraph nobody has translated yet."].string = "Un párrafo que nadie tradujo todavía."
    with open(catalog, "wb") as handle:
        write_po(handle, spanish, width=76)
    result = script(tree, "check")
    assert f"{po}: markup: lost `downsample = None` in " in result.stdout
    spanish[paragraph].string = spanish[paragraph].string.replace("(downsample = None)", "(`downsample = None`)")
    with open(catalog, "wb") as handle:
        write_po(handle, spanish, width=76)
    assert script(tree, "check").stdout.strip() == "The assignments are complete in Spanish."
    assert update_catalogs(**where) == []  # nothing left to merge: the file is not rewritten
    written = json.loads((translated_source("02-residual-block", "es", tree / "out", **where) / path.name).read_text())
    shapes = next(cell for cell in written["cells"] if grade_id(cell) == "q-shapes")
    assert source(shapes).endswith("\n\nUn párrafo que nadie tradujo todavía.")


def test_the_class_language_cell_is_added_or_removed() -> None:
    """A submission graded in the class's language whichever release it came from."""
    spanish, english = release("02-residual-block", "es"), release("02-residual-block", "en")
    from_english = copy.deepcopy(english)
    match_language_cell(from_english, spanish)
    names = [grade_id(cell) for cell in from_english["cells"]]
    assert names.index(LANGUAGE_CELL) == names.index("setup") + 1 and len(names) == len(english["cells"]) + 1
    from_spanish = copy.deepcopy(spanish)
    match_language_cell(from_spanish, english)
    assert [grade_id(cell) for cell in from_spanish["cells"]] == [grade_id(cell) for cell in english["cells"]]
    unchanged = copy.deepcopy(spanish)
    match_language_cell(unchanged, spanish)
    assert unchanged == spanish


# ---------------------------------------------------------------- a Spanish class, graded end to end

ASSIGNMENT = "02-residual-block"


def answers(assignment: str) -> dict[str, str]:
    """The solution's answer cells (what a student who knows the solution writes)."""
    notebook = json.loads(next((SOLUTIONS / assignment).glob("*.ipynb")).read_text())
    return {
        grade_id(cell): re.sub(r"[ ]*### (BEGIN|END) SOLUTION\n?", "", source(cell))
        for cell in notebook["cells"]
        if cell.get("metadata", {}).get("nbgrader", {}).get("solution")
    }


def filled(notebook: dict, replace: dict[str, str]) -> dict:
    notebook = copy.deepcopy(notebook)
    for cell in notebook["cells"]:
        if grade_id(cell) in replace:
            cell["source"] = replace[grade_id(cell)]
    return notebook


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="needs bubblewrap (.ci/run installs it)")
def test_a_spanish_class_is_graded_like_an_english_one(tmp_path: Path) -> None:
    """The real pipeline, in the sandbox, on the Spanish source: the solution gets full marks, a typical mistake
    loses exactly its points and its feedback gives the Spanish hint; a student who worked in the English
    release gets the Spanish hints too, and a later run keeps the class's language."""
    fault = json.loads((FAULTS / ASSIGNMENT / "relu-before-add.json").read_text())
    solution = answers(ASSIGNMENT)
    students = {
        "solucion": filled(release(ASSIGNMENT, "es"), solution),
        "relu-antes": filled(release(ASSIGNMENT, "es"), {**solution, **fault["replace"]}),
        "en-ingles": filled(release(ASSIGNMENT, "en"), {**solution, **fault["replace"]}),
    }
    for student, notebook in students.items():
        path = tmp_path / "submissions" / student / "residual_block.ipynb"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(notebook, indent=1))
    out = tmp_path / "out"
    grade(GradeConfig(assignment=ASSIGNMENT, submissions=tmp_path / "submissions", out=out, language="es"))

    rows = {row["student_id"]: row for row in _csv(out / "grades.csv")}
    points = {cell.name: cell.points for cell in graded_cells(SOLUTIONS / ASSIGNMENT) if cell.kind == "auto"}
    full = sum(points.values())
    assert (float(rows["solucion"]["auto_score"]), float(rows["solucion"]["auto_max_score"])) == (full, full)
    lost = sum(points[name] - kept for name, kept in fault["expected"].items())
    for student in ("relu-antes", "en-ingles"):
        assert float(rows[student]["auto_score"]) == full - lost, rows[student]["problems"]
        page = (out / "feedback" / student / ASSIGNMENT / "residual_block.html").read_text()
        assert "suma el atajo antes de la ReLU final, no después." in page  # test_reference, visible
        assert "la ReLU está antes de la suma" in page  # test_identity, its hidden part
        assert "add the shortcut" not in page
    page = (out / "feedback" / "solucion" / ASSIGNMENT / "residual_block.html").read_text()
    assert "Trabajo práctico 2: el bloque residual" in page and "el bloque conserva la forma" in page
    assert source_language(out / "source" / ASSIGNMENT) == "es"

    grade(GradeConfig(assignment=ASSIGNMENT, out=out))  # after manual grading: no --language, the class's is kept
    assert source_language(out / "source" / ASSIGNMENT) == "es"


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
