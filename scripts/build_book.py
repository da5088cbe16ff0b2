"""Build the course website: the book in English and in Spanish, side by side, from one execution.

    python scripts/build_book.py                 # both editions: _build/html/en/, _build/html/es/
    python scripts/build_book.py --english-only  # the English edition alone (quicker, while writing)

What `make book` runs. In order:

1. the English edition (`_config.yml`): every chapter is executed, or its outputs are taken from
   the execution cache (`_build/.jupyter_cache`) when its code has not changed;
2. the translation catalogs (`locales/es/LC_MESSAGES/**.po`) are brought up to date with the
   English text (`scripts/translations.py update`): a new or changed paragraph becomes a new
   or a fuzzy (out of date) message, which the Spanish edition shows in English until translated;
3. the Spanish edition: the same sources built with `_config.es.yml` on top of `_config.yml`
   (`language: es`), the same execution cache (nothing is executed again: each figure and
   table was drawn in both languages, see `book/booksupport.py`) and the catalogs;
4. the site: each edition under `_build/html/<language>/`, and `_build/html/index.html`, which
   sends a reader to the edition of their browser's language (English otherwise);
5. a summary of what is not yet translated, per page (`scripts/translations.py status`). An
   incomplete translation does not stop the build; `scripts/translations.py check` and the
   test `test_spanish_edition_is_complete` fail on it.

Every edition is built with warnings as errors, like `jupyter-book build -W -n --keep-going`.
Each Sphinx run is a separate process (`python scripts/build_book.py sphinx BUILDER EDITION`):
Sphinx and docutils keep global state that one build should not leave to the next.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"
SITE = BUILD / "html"
EDITIONS = ("en", "es")  # English first: the language of the sources
CONFIG = "_config.yml"
ROOT_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<title>{title}</title>
<script>
  // The edition of the reader's first preferred language among the book's, else English.
  const editions = {editions};
  const preferred = (navigator.languages || [navigator.language || "en"]).map((l) => l.slice(0, 2).toLowerCase());
  const edition = preferred.find((l) => editions.includes(l)) || editions[0];
  location.replace(edition + "/index.html");
</script>
<noscript><meta http-equiv="refresh" content="0; url={default}/index.html" /></noscript>
</head>
<body>
<p>{links}</p>
</body>
</html>
"""


def merged(base: dict, overrides: dict) -> dict:
    """``base`` with ``overrides`` on top: mappings are merged key by key, anything else replaced."""
    result = dict(base)
    for key, value in overrides.items():
        result[key] = (
            merged(result[key], value) if isinstance(value, dict) and isinstance(result.get(key), dict) else value
        )
    return result


def edition_config(edition: str) -> Path:
    """The Jupyter Book configuration of one edition: `_config.yml`, under `_config.<edition>.yml` if any.

    The merged file is written under `_build/<edition>/`; Jupyter Book resolves the
    `local_extensions` folders against the configuration file's folder, so they are made absolute.
    """
    overrides = ROOT / f"_config.{edition}.yml"
    if not overrides.exists():
        return ROOT / CONFIG
    config = merged(yaml.safe_load((ROOT / CONFIG).read_text()), yaml.safe_load(overrides.read_text()))
    extensions = config.get("sphinx", {}).get("local_extensions") or {}
    for name, folder in extensions.items():
        extensions[name] = str((ROOT / folder).resolve())
    path = BUILD / edition / CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    text = f"# Made by scripts/build_book.py from {CONFIG} and {overrides.name}; do not edit.\n"
    text += yaml.safe_dump(config, allow_unicode=True, sort_keys=False)
    if not path.exists() or path.read_text() != text:
        path.write_text(text)
    return path


def output_folder(builder: str, edition: str) -> Path:
    """Where one Sphinx run writes; the catalog templates (gettext) come from the English text alone."""
    return BUILD / "gettext" if builder == "gettext" else BUILD / edition / builder


def sphinx(builder: str, edition: str) -> int:
    """One Sphinx run, in this process, through Jupyter Book's own configuration and build function."""
    from jupyter_book.sphinx import build_sphinx

    strict = builder != "gettext"  # the English html build already reports every warning of the sources
    config = edition_config(edition)
    overrides = {"latex_individualpages": False, "nitpicky": strict}
    if builder == "gettext":  # the name the catalogs' headers give the project
        overrides["project"] = yaml.safe_load(config.read_text()).get("title", "")
    result = build_sphinx(
        str(ROOT),
        str(output_folder(builder, edition)),
        noconfig=True,
        path_config=str(config),
        doctreedir=str(BUILD / ".doctrees" / (builder if builder == "gettext" else edition)),
        confoverrides=overrides,
        builder=builder,
        warningiserror=strict,
        keep_going=strict,
        quiet=not strict,
    )
    return result if isinstance(result, int) else 1


def run_sphinx(builder: str, edition: str) -> None:
    """``sphinx(builder, edition)`` in a child process; stops the build when it fails."""
    print(f"\n=== {builder} build of the {edition} edition ===", flush=True)
    code = subprocess.run([sys.executable, __file__, "sphinx", builder, edition], cwd=ROOT).returncode
    if code:
        sys.exit(f"The {builder} build of the {edition} edition failed (exit status {code}).")


def translations_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("translations", ROOT / "scripts" / "translations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # scripts/ is not a package; dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def publish(editions: tuple[str, ...]) -> None:
    """Copy each edition's pages under `_build/html/<edition>/` and write the site's root page."""
    SITE.mkdir(parents=True, exist_ok=True)
    for entry in SITE.iterdir():  # pages of an earlier layout, or of an edition no longer built
        if entry.name not in editions and entry.name != "index.html":
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
    for edition in editions:
        target = SITE / edition
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(output_folder("html", edition), target)
    config = yaml.safe_load((ROOT / CONFIG).read_text())
    names = {"en": "English", "es": "Español"}
    links = " · ".join(
        f'<a href="{code}/index.html" hreflang="{code}">{names.get(code, code)}</a>' for code in editions
    )
    page = ROOT_PAGE.format(
        title=config.get("title", ""), editions=json.dumps(editions), default=editions[0], links=links
    )
    (SITE / "index.html").write_text(page)


def build(editions: tuple[str, ...]) -> None:
    """Every step in order; the seconds each took are printed at the end (where a build's time goes)."""
    english, *translated = editions
    seconds: dict[str, float] = {}

    def step(name: str, action: Callable[[], object]) -> None:
        start = time.perf_counter()
        action()
        seconds[name] = time.perf_counter() - start

    step(f"{english} edition", lambda: run_sphinx("html", english))
    translations = translations_script() if translated else None
    if translations:
        step("catalogs", translations.update)
        for edition in translated:
            step(f"{edition} edition", lambda edition=edition: run_sphinx("html", edition))
    step("site", lambda: publish(editions))
    print(f"\nThe site: {SITE.relative_to(ROOT)}/ ({', '.join(e + '/' for e in editions)} and index.html)")
    print("Seconds per step: " + ", ".join(f"{name} {value:.0f}" for name, value in seconds.items()))
    if translations:
        print("\nTranslation status (python scripts/translations.py status):")
        translations.print_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command")
    one = commands.add_parser("sphinx", help="one Sphinx run (what the build runs in a child process)")
    one.add_argument("builder", choices=["html", "gettext"])
    one.add_argument("edition", choices=EDITIONS)
    parser.add_argument("--english-only", action="store_true", help="build the English edition alone")
    args = parser.parse_args(argv)
    if args.command == "sphinx":
        return sphinx(args.builder, args.edition)
    build(EDITIONS[:1] if args.english_only else EDITIONS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
