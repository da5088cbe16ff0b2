"""Re-execute every chapter when what the chapters read has changed, not only their own code.

jupyter-cache keys a chapter's outputs on the chapter's code alone, so a chapter whose code is
unchanged would keep showing numbers computed with an older ``course_lib``, older results or
an older checkpoint. Before anything is executed, this extension fingerprints those inputs;
when the fingerprint differs from the one stored after the last successful build, it empties
the execution cache and marks every page for re-reading, so all outputs are computed afresh.

Several builds share the cache (the English and the Spanish edition, the translation
catalogs; see scripts/build_book.py), and the first of them empties it. So each build also
remembers in its own environment the inputs its pages were read with, and re-reads every page
when they differ, even if another build has already refilled the cache. The book's own
extensions (book/_ext) count among those inputs too: they change the pages as they are read,
but not what a chapter computes, so a change there re-reads the pages without re-executing them.
"""

import hashlib
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.environment import BuildEnvironment

INPUTS = ["course_lib", "book/booksupport.py", "data/weights", "data/grocery-store/manifest.csv", "results"]
READING = ["book/_ext"]  # what changes the pages read from the cached outputs, not the outputs
STAMP = "inputs.sha256"


def fingerprint(root: Path, inputs: list[str] = INPUTS) -> str:
    digest = hashlib.sha256()
    for name in inputs:
        path = root / name
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(hashlib.sha256(file.read_bytes()).digest())
    return digest.hexdigest()


def _cache_dir(app: Sphinx) -> Path:
    return Path(app.srcdir) / app.config.nb_execution_cache_path


def clear_cache_if_inputs_changed(app: Sphinx) -> None:
    app.book_inputs = fingerprint(Path(app.srcdir))
    app.book_reading = fingerprint(Path(app.srcdir), INPUTS + READING)
    stamp = _cache_dir(app) / STAMP
    if (not stamp.exists() or stamp.read_text() != app.book_inputs) and _cache_dir(app).exists():
        shutil.rmtree(_cache_dir(app))


def reread_all_if_inputs_changed(
    app: Sphinx, env: BuildEnvironment, added: set[str], changed: set[str], removed: set[str]
) -> list[str]:
    return sorted(env.found_docs) if getattr(env, "book_reading", None) != app.book_reading else []


def _warnings(app: Sphinx) -> int:
    return getattr(app, "_warncount", 0)  # with --keep-going, Sphinx sets statuscode only later


def remember_inputs(app: Sphinx, env: BuildEnvironment) -> None:
    """Once every page is read without a warning, the environment records the inputs it was read with."""
    if not _warnings(app):
        env.book_reading = app.book_reading


def store_fingerprint(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and not _warnings(app) and _cache_dir(app).exists():
        (_cache_dir(app) / STAMP).write_text(app.book_inputs)


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("builder-inited", clear_cache_if_inputs_changed, priority=100)
    app.connect("env-get-outdated", reread_all_if_inputs_changed)
    app.connect("env-updated", remember_inputs)
    app.connect("build-finished", store_fingerprint)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
