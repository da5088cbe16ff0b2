"""The course website in a real browser: every page of both editions of the book (English
under en/, Spanish under es/) loads, shows its images and math, logs no console errors, links
only to pages and anchors that exist, loads nothing from outside the machine, its Colab and
Binder buttons open a notebook that exists in the repository, and its language switch leads to
the same page in the other edition. A screenshot of each page goes to
_build/screenshots/<edition>/.

The notebooks behind the launch buttons (``book/**/*.ipynb``, written by
``scripts/book_notebooks.py``) are checked without building the site: one per page with
code, each exactly what the script makes of the current page.

The book is built with the same command as ``make book`` when ``_build/html`` is missing or
older than its sources (jupyter-cache re-executes only the chapters that changed).
``test_spanish_edition_is_complete`` fails, page by page, while any of the book is left to
translate (``scripts/translations.py check``).
Needs Debian's ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``).
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import types
import urllib.error
import urllib.request
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urldefrag, urljoin, urlparse

import pytest

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
BUILT = ROOT / "_build" / "book-built.stamp"  # written after a `make book` that passed
BUILD_COMMAND = ["make", "book"]
BOOK_SOURCES = [
    "_config.yml",
    "_config.es.yml",
    "_toc.yml",
    "locales",
    "scripts/build_book.py",
    "scripts/translations.py",
    "book",
    "course_lib",
    "results",
    "data/weights",
    "grading/README.md",
    "grading/SANDBOX.md",
    "bench/README.md",
]
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--window-size=1280,1000",
]


def script(name: str) -> types.ModuleType:
    """scripts/<name>.py as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


NOTEBOOKS = script("book_notebooks")
TRANSLATIONS = script("translations")
EDITIONS = script("build_book").EDITIONS  # ("en", "es"): English first, the language of the sources
PAGES = NOTEBOOKS.toc_pages(ROOT)
CONFIG = NOTEBOOKS.load_config(ROOT)
REPOSITORY = CONFIG["repository"]["url"]
BRANCH = CONFIG["repository"]["branch"]


def has_code_cells(page: str) -> bool:
    return "```{code-cell}" in (ROOT / f"{page}.md").read_text()


def test_every_page_with_code_has_its_notebook():
    pages = [page for page in PAGES if has_code_cells(page)]
    assert len(pages) >= 10, f"expected the chapters to have code cells, found {pages}"
    missing = [f"{page}.ipynb" for page in pages if not (ROOT / f"{page}.ipynb").is_file()]
    assert not missing, f"no notebook for the launch buttons: {missing}; run python scripts/book_notebooks.py"


def test_notebooks_are_what_the_script_makes_of_the_pages():
    problems = NOTEBOOKS.problems(ROOT)
    assert not problems, "\n".join(problems + ["Regenerate them with: python scripts/book_notebooks.py"])


@pytest.mark.parametrize("page", [page for page in PAGES if has_code_cells(page)])
def test_notebook_has_no_outputs_and_starts_with_the_colab_cell(page):
    notebook = json.loads((ROOT / f"{page}.ipynb").read_text())
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert all(cell["outputs"] == [] and cell["execution_count"] is None for cell in code)
    first = "".join(code[0]["source"])
    assert '"google.colab" in sys.modules' in first and f'"{REPOSITORY}"' in first
    page_code = (ROOT / f"{page}.md").read_text().count("```{code-cell}")
    assert len(code) == page_code + 1, (
        f"{page}: {len(code) - 1} code cells besides the Colab cell, the page has {page_code}"
    )


def test_stale_check_notices_a_changed_page(tmp_path):
    """The check above is not vacuous: a changed page, a missing and an orphaned notebook are all reported."""
    for name in ["_config.yml", "_toc.yml"]:
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("__pycache__"))
    NOTEBOOKS.write_notebooks(tmp_path)  # up to date, whatever the state of the working tree
    with open(tmp_path / "book" / "02_convolution.md", "a") as page:
        page.write("\n```{code-cell} ipython3\nprint('a new cell')\n```\n")
    (tmp_path / "book" / "04_cost_of_depth.ipynb").unlink()
    (tmp_path / "book" / "appendix" / "glossary.ipynb").write_text("{}")
    assert sorted(NOTEBOOKS.problems(tmp_path)) == [
        "book/02_convolution.ipynb is stale: it differs from what book/02_convolution.md and _config.yml give",
        "book/04_cost_of_depth.ipynb is missing",
        "book/appendix/glossary.ipynb belongs to no page with code in _toc.yml",
    ]
    NOTEBOOKS.write_notebooks(tmp_path)
    assert NOTEBOOKS.problems(tmp_path) == []
    assert "print('a new cell')" in (tmp_path / "book" / "02_convolution.ipynb").read_text()


def colab_setup_source() -> str:
    return "".join(json.loads((ROOT / "book" / "02_convolution.ipynb").read_text())["cells"][0]["source"])


def test_colab_cell_does_nothing_elsewhere(monkeypatch):
    ran = []
    monkeypatch.setattr(subprocess, "run", lambda *args, **kwargs: ran.append(args))
    path, cwd = list(sys.path), os.getcwd()
    exec(colab_setup_source(), {})
    assert ran == [] and sys.path == path and os.getcwd() == cwd


def test_colab_cell_clones_the_configured_repository(monkeypatch):
    commands, moved_to = [], []
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(subprocess, "run", lambda command, **kwargs: commands.append(command))
    monkeypatch.setattr(os, "chdir", moved_to.append)
    monkeypatch.setattr(sys, "path", list(sys.path))
    exec(colab_setup_source(), {})
    clone = commands[0]
    assert clone[:2] == ["git", "clone"] and REPOSITORY in clone and BRANCH in clone
    assert any("myst-nb" in part for part in commands[1]), "glue() needs myst-nb, which Colab lacks"
    assert sys.path[0] == clone[-1] and sys.path[1] == os.path.join(clone[-1], "book")
    assert moved_to == [os.path.join(clone[-1], "book")]


def launch_targets(links: list[str]) -> dict[str, tuple[str, str, str]]:
    """The Colab and Binder buttons among a page's links: service -> (repository URL, branch, file path)."""
    targets = {}
    for link in links:
        url = urlparse(link)
        if url.hostname == "colab.research.google.com":
            _, _, org, repo, _, branch, *path = url.path.split("/")
            targets["Colab"] = (f"https://github.com/{org}/{repo}", branch, "/".join(path))
        elif url.hostname == "mybinder.org":
            _, _, _, org, repo, branch = url.path.split("/")
            path = parse_qs(url.query)["urlpath"][0].split("/tree/", 1)[1]
            targets["Binder"] = (f"https://github.com/{org}/{repo}", branch, path)
    return targets


def newest_source_time() -> float:
    times = []
    for name in BOOK_SOURCES:
        path = ROOT / name
        if path.is_file():
            times.append(path.stat().st_mtime)
        elif path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    return max(times)


@pytest.fixture(scope="session")
def site() -> Path:
    """The built HTML site, rebuilt with ``make book`` unless this test built it since the sources last changed."""
    if not BUILT.exists() or BUILT.stat().st_mtime < newest_source_time():
        BUILT.unlink(missing_ok=True)
        result = subprocess.run(BUILD_COMMAND, cwd=ROOT, capture_output=True, text=True)
        assert result.returncode == 0, f"`make book` failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
        BUILT.touch()
    return HTML


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def server(site):
    """A local HTTP server on 127.0.0.1 serving the site; yields its base URL."""
    handler = functools.partial(QuietHandler, directory=str(site))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="session")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    profile = tempfile.TemporaryDirectory(prefix="book-chromium-")
    for flag in CHROME_FLAGS + [f"--user-data-dir={profile.name}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    yield driver
    driver.quit()
    profile.cleanup()


class IdCollector(HTMLParser):
    """The ``id`` attributes of a page: the anchors a link may point to."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)


@functools.cache
def fetch(url: str) -> tuple[int, frozenset[str]]:
    """HTTP status of a local URL and, for HTML, the ids on the page."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            body = response.read()
            status = response.status
            kind = response.headers.get_content_type()
    except urllib.error.HTTPError as error:
        return error.code, frozenset()
    ids = IdCollector()
    if kind == "text/html":
        ids.feed(body.decode("utf-8", errors="replace"))
    return status, frozenset(ids.ids)


def wait_for_math(driver) -> None:
    """Wait until MathJax has typeset the page (no-op on a page without MathJax)."""
    driver.execute_async_script(
        """const done = arguments[arguments.length - 1];
        const ready = () => (window.MathJax && MathJax.startup && MathJax.startup.promise)
            ? MathJax.startup.promise.then(() => done(true), () => done(false)) : done(null);
        if (document.readyState === 'complete') ready(); else window.addEventListener('load', ready);"""
    )


def screenshot(driver: WebDriver, edition: str, page: str) -> Path:
    (SCREENSHOTS / edition).mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, min(int(height), 12000)))
    path = SCREENSHOTS / edition / (page.replace("/", "__") + ".png")
    driver.save_screenshot(str(path))
    driver.set_window_size(1280, 1000)
    return path


def edition_url(server: str, edition: str, page: str) -> str:
    return urljoin(server, f"{edition}/{page}.html")


@pytest.mark.parametrize("page", PAGES)
@pytest.mark.parametrize("edition", EDITIONS)
def test_page_in_browser(edition: str, page: str, server: str, browser: WebDriver) -> None:
    url = edition_url(server, edition, page)
    assert fetch(url)[0] == 200, f"{edition}/{page}.html was not built"
    browser.get_log("browser")  # drop messages from earlier pages
    browser.get(url)
    wait_for_math(browser)
    title = browser.title
    assert title and "404" not in title, f"{edition}/{page}: no page title ({title!r})"
    assert browser.execute_script("return document.documentElement.lang") == edition

    switches = browser.execute_script(
        "return [...document.querySelectorAll('a.edition-switch')].map(a => [a.hreflang, a.href])"
    )
    others = [other for other in EDITIONS if other != edition]
    assert switches == [[other, edition_url(server, other, page)] for other in others], (
        f"{edition}/{page}: the language switch should lead to the same page in {others}: {switches}"
    )

    unrendered = browser.execute_script(
        "return [...document.querySelectorAll('article pre')].filter(p => p.textContent.startsWith('<Figure "
        "size')).length"
    )
    assert unrendered == 0, f"{page}: {unrendered} figures shown as text instead of images"

    broken_images = browser.execute_script(
        "return [...document.images].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)"
    )
    assert not broken_images, f"{page}: images that did not load: {broken_images}"

    math = browser.execute_script(
        """return {source: document.querySelectorAll('article .math').length,
                   rendered: document.querySelectorAll('article mjx-container').length,
                   errors: document.querySelectorAll('article mjx-merror').length}"""
    )
    assert math["rendered"] >= math["source"], f"{page}: math left unrendered: {math}"
    assert math["errors"] == 0, f"{page}: MathJax reported errors in {math['errors']} formulas"

    errors = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert not errors, f"{page}: console errors: {errors}"

    resources = browser.execute_script(
        "return performance.getEntriesByType('resource').map(r => r.name).concat([location.href])"
    )
    outside = [r for r in resources if urlparse(r).hostname not in ("127.0.0.1", None)]
    assert not outside, f"{page}: loaded from outside the machine: {outside}"

    links = browser.execute_script("return [...document.querySelectorAll('a[href]')].map(a => a.href)")
    broken = []
    for link in links:
        if urlparse(link).netloc != urlparse(server).netloc:
            continue
        target, fragment = urldefrag(link)
        status, ids = fetch(target)
        if status != 200 or (fragment and target.endswith(".html") and fragment not in ids):
            broken.append(link)
    assert not broken, f"{page}: broken internal links: {broken}"

    if has_code_cells(page):
        targets = launch_targets(links)
        assert set(targets) == {"Colab", "Binder"}, f"{page}: launch buttons found: {sorted(targets)}"
        for service, (repository, branch, path) in targets.items():
            assert (repository, branch) == (REPOSITORY, BRANCH), f"{page}: {service} opens {repository} at {branch}"
            assert path == f"{page}.ipynb" and (ROOT / path).is_file(), f"{page}: {service} opens {path}"

    assert screenshot(browser, edition, page).stat().st_size > 0


@pytest.mark.parametrize("edition", EDITIONS)
def test_math_is_rendered_somewhere(edition: str, server: str, browser: WebDriver) -> None:
    """The per-page math check is not vacuous: the convolution chapter has formulas and MathJax renders them."""
    browser.get(edition_url(server, edition, "book/02_convolution"))
    wait_for_math(browser)
    rendered = browser.execute_script("return document.querySelectorAll('article mjx-container').length")
    assert rendered >= 5
    source = re.findall(r"mathjax/tex-chtml\.js", (HTML / edition / "book" / "02_convolution.html").read_text())
    assert source, "MathJax is not served from the site's own _static folder"


def article_text(browser: WebDriver) -> str:
    return browser.execute_script("return document.querySelector('article').innerText")


@pytest.mark.parametrize("page", ["book/01_problem", "book/appendix/glossary"])
def test_language_switch_leads_to_the_same_page(page: str, server: str, browser: WebDriver) -> None:
    """Clicking the switch on a page of one edition opens that page in the other, and back."""
    browser.get(edition_url(server, "en", page))
    english = article_text(browser)
    browser.find_element("css selector", "a.edition-switch").click()
    assert browser.current_url == edition_url(server, "es", page)
    assert browser.execute_script("return document.documentElement.lang") == "es"
    spanish = article_text(browser)
    assert spanish != english
    browser.find_element("css selector", "a.edition-switch").click()
    assert browser.current_url == edition_url(server, "en", page) and article_text(browser) == english


def test_translated_pages_read_in_spanish(server: str, browser: WebDriver) -> None:
    """The model chapter and the glossary are translated: headings, prose, captions and glued numbers."""
    browser.get(edition_url(server, "es", "book/01_problem"))
    text = article_text(browser)
    for spanish in ["El problema: productos a partir de fotos", "Balance de clases", "Tenemos ", "Figura 1.1"]:
        assert spanish in text, f"{spanish!r} is not on the Spanish page"
    assert "Our data" not in text and "Class balance" not in text
    glued = browser.execute_script("return [...document.querySelectorAll('article .pasted-text')].length")
    assert glued >= 8, "the values glued into the translated paragraphs are missing"
    browser.get(edition_url(server, "es", "book/appendix/glossary"))
    text = article_text(browser)
    assert "Glosario" in text and "Skip connection" in text and "conexión residual" in text


def test_figures_are_drawn_in_each_language(server: str, browser: WebDriver) -> None:
    """Chapter 1 draws its figures once per language: each edition shows its own images, the
    Spanish ones with Spanish labels (the plots' words come from course_lib.i18n)."""
    images = {}
    for edition in EDITIONS:
        browser.get(edition_url(server, edition, "book/01_problem"))
        images[edition] = browser.execute_script(
            "return [...document.querySelectorAll('article figure img')].map(i => i.src.split('/').pop())"
        )
    assert len(images["en"]) == len(images["es"]) == 2
    assert not set(images["en"]) & set(images["es"]), "the Spanish edition shows the English figures"


def test_site_root_sends_readers_to_their_edition(server: str, browser: WebDriver) -> None:
    """The site's root page opens the edition of the browser's first language, English otherwise."""
    browser.get(server)
    assert browser.current_url == edition_url(server, "en", "book/index")
    agent = browser.execute_script("return navigator.userAgent")
    browser.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "es-AR,es"})
    try:
        browser.get(server)
        assert browser.current_url == edition_url(server, "es", "book/index")
    finally:
        browser.execute_cdp_cmd("Network.setUserAgentOverride", {"userAgent": agent, "acceptLanguage": "en-US,en"})


def test_spanish_edition_is_complete(site: Path) -> None:
    """Fails while any page is left to translate: messages untranslated or fuzzy (their English
    changed), catalogs out of date, translations that break markup, figures or tables shown in
    English only. The report names each page, its catalog and the messages (scripts/translations.py)."""
    problems = TRANSLATIONS.check()
    assert not problems, "The Spanish edition is incomplete:\n" + "\n".join(problems)
