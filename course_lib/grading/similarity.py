"""Submissions whose answers are unusually alike, for a person to look at: ``similarity.html``.

Computed here, on this machine, with copydetect (winnowed k-gram fingerprints, the method of
MOSS): nothing is uploaded. Only what students wrote counts: the answer cells, with the
starter code of the release removed as boilerplate; code is compared after copydetect's
filtering (names, strings and comments do not matter, so renaming variables hides nothing),
written answers as plain text. A pair is flagged when either share of common material reaches
the threshold; nobody is penalised by it, the page only says where to look.

On exercises this formulaic, independently written correct answers already share much: in
this course's first assignment two independent solutions share about 40 % of their code,
one copied function out of four about 55 %, a copy with renamed variables 100 %; hence the
default threshold of 0.7, and the class's median on the page for comparison.
"""

from __future__ import annotations

import io
import itertools
import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from course_lib.files import write_atomically
from course_lib.grading.course import Course
from course_lib.grading.results import StudentResult

__all__ = ["THRESHOLD", "Pair", "answer_texts", "similar_pairs", "write_similarity"]

THRESHOLD = 0.7
SHOWN = 30  # pairs listed on the page besides the flagged ones, most alike first


@dataclass
class Pair:
    """Two students and how much of their answers they share (each share: of one student's material)."""

    first: str
    second: str
    code: tuple[float, float]
    text: tuple[float, float]
    highlighted: dict[str, tuple[str, str]]  # "code" / "text" -> both students' answers, common parts marked
    flagged: bool

    @property
    def similarity(self) -> float:
        """The largest share: what the flag compares with the threshold."""
        return max(*self.code, *self.text)


def answer_texts(notebook: dict, answer_ids: dict[str, str]) -> tuple[str, str]:
    """The code and the written text of a notebook's answer cells (``answer_ids``: grade id -> cell type)."""
    code, text = [], []
    for cell in notebook.get("cells", []):
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if grade_id in answer_ids and cell.get("cell_type") == answer_ids[grade_id]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            (code if answer_ids[grade_id] == "code" else text).append(source)
    return "\n\n".join(code), " ".join(" ".join(text).lower().split())


def _answer_ids(course: Course) -> dict[str, str]:
    """The answer cells of the assignment (grade id -> cell type), from its source notebooks."""
    ids = {}
    for path in sorted(course.source.glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("solution"):
                ids[meta["grade_id"]] = cell["cell_type"]
    return ids


def _fingerprints(documents: dict[str, str], boilerplate: str, code: bool) -> dict[str, Any]:
    """copydetect's fingerprints of each document, the boilerplate's removed."""
    import numpy as np
    from copydetect import CodeFingerprint, defaults

    k, window = defaults.NOISE_THRESHOLD, defaults.GUARANTEE_THRESHOLD - defaults.NOISE_THRESHOLD + 1
    name = "answers.py" if code else "answers.txt"
    starter = CodeFingerprint(name, k, 1, filter=code, fp=io.StringIO(boilerplate))
    known = np.unique(np.array(sorted(starter.hashes), dtype=np.int64))
    return {
        student: CodeFingerprint(name, k, window, boilerplate=known, filter=code, fp=io.StringIO(document))
        for student, document in documents.items()
    }


def similar_pairs(
    documents: dict[str, tuple[str, str]], starter: tuple[str, str], threshold: float = THRESHOLD
) -> list[Pair]:
    """Every pair of students (``documents``: student -> (code, text)), most alike first."""
    from copydetect import compare_files
    from copydetect.utils import highlight_overlap

    prints = [
        _fingerprints({s: d[kind] for s, d in documents.items()}, starter[kind], code=kind == 0) for kind in (0, 1)
    ]
    pairs = []
    for first, second in itertools.combinations(sorted(documents), 2):
        shares, highlighted = [], {}
        for kind, label in ((0, "code"), (1, "text")):
            a, b = prints[kind][first], prints[kind][second]
            _, share, slices = compare_files(a, b)
            shares.append((float(share[0]), float(share[1])))
            if slices[0].size:
                marked = [
                    highlight_overlap(fp.raw_code, s, "<mark>", "</mark>", escape_html=True)[0]
                    for fp, s in ((a, slices[0]), (b, slices[1]))
                ]
                highlighted[label] = (marked[0], marked[1])
        pairs.append(Pair(first, second, shares[0], shares[1], highlighted, max(*shares[0], *shares[1]) >= threshold))
    return sorted(pairs, key=lambda pair: (-pair.similarity, pair.first, pair.second))


def write_similarity(
    course: Course, results: list[StudentResult], out: Path, threshold: float = THRESHOLD
) -> tuple[Path, int]:
    """similarity.html for the graded submissions; return its path and how many pairs it flags."""
    import warnings

    from course_lib.grading.pages import render

    ids = _answer_ids(course)
    documents, starter = {}, ("", "")
    for name in course.notebooks:
        release = json.loads((course.path("release") / f"{name}.ipynb").read_text())
        code, text = answer_texts(release, ids)
        starter = (starter[0] + "\n\n" + code, starter[1] + " " + text)
    for result in results:
        folder = course.path("submitted", result.student)
        notebooks = sorted(folder.glob("*.ipynb")) if result.submitted else []
        if notebooks:
            texts = [answer_texts(json.loads(path.read_text()), ids) for path in notebooks]
            documents[result.student] = ("\n\n".join(c for c, _ in texts), " ".join(t for _, t in texts))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # copydetect warns about empty documents (blank submissions)
        pairs = similar_pairs(documents, starter, threshold)
    flagged = [p for p in pairs if p.flagged]
    page = render(
        "similarity.html.j2",
        assignment=course.assignment,
        threshold=threshold,
        students=len(documents),
        median=statistics.median([p.similarity for p in pairs]) if pairs else None,
        flagged=flagged,
        others=[p for p in pairs if not p.flagged][:SHOWN],
    )
    path = write_atomically(out / "similarity.html", lambda handle: handle.write(page))
    return path, len(flagged)
