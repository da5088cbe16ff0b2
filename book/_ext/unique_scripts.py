"""Drop repeated inline <script> blocks from every page.

sphinx-thebe 0.3.1 registers its inline configuration script with ``filename=None``;
Sphinx 7.4 stores it once as ``None`` and once as ``""``, so each page declared
``const THEBE_JS_URL`` twice and the browser logged a SyntaxError. Keeping the first
of each identical script removes the error without changing what the page loads.
"""

from typing import Any

from docutils import nodes
from sphinx.application import Sphinx


def keep_first_of_each_script(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: nodes.document | None
) -> None:
    seen = set()
    unique = []
    for script in context.get("script_files", []):
        key = (script.filename or "", tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"][:] = unique


def setup(app: Sphinx) -> dict[str, bool]:
    app.connect("html-page-context", keep_first_of_each_script, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
