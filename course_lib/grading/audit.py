"""Reading answer code for constructs that can fool or escape the tests.

nbgrader runs the test cells in the student's own Python process, so an answer can reach
the test machinery (IPython, the checks, the interpreter) and pass without doing the work.
The sandbox cannot see this; reading the code can. A submission with findings is graded as
usual but held for a person's review (see :mod:`course_lib.grading.pipeline`).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable

from IPython.core.inputtransformer2 import TransformerManager

__all__ = ["audit_code", "audit_notebook", "protected_names"]

SUSPICIOUS_NAMES = {
    "get_ipython": "reaches into IPython, which runs the tests",
    "IPython": "reaches into IPython, which runs the tests",
    "ipykernel": "reaches into the kernel, which runs the tests",
    "vars": "rewrites names through their dictionary",
    "__builtins__": "changes Python's built-in functions",
    "builtins": "changes Python's built-in functions",
    "exec": "runs code built at run time",
    "eval": "runs code built at run time",
    "compile": "runs code built at run time",
    "__import__": "imports modules indirectly",
    "importlib": "imports modules indirectly",
    "setattr": "changes attributes by name",
    "delattr": "deletes attributes by name",
    "globals": "rewrites the notebook's names",
    "ctypes": "calls C code directly",
    "gc": "walks the interpreter's objects",
    "inspect": "walks the interpreter's frames",
    "signal": "changes signal handling",
    "subprocess": "starts other programs",
    "multiprocessing": "starts other processes",
    "socket": "opens network connections",
    "sqlite3": "opens databases",
    "exit": "stops the kernel",
    "quit": "stops the kernel",
}
SUSPICIOUS_ATTRIBUTES = {
    "modules": "edits sys.modules",
    "_exit": "kills the kernel",
    "exit": "stops the kernel",
    "system": "runs shell commands",
    "popen": "runs shell commands",
    "fork": "starts processes",
    "kill": "sends signals",
    "_getframe": "walks the interpreter's frames",
    "settrace": "traces the tests",
    "setprofile": "traces the tests",
    "input_transformers_cleanup": "rewrites later cells",
    "input_transformers_post": "rewrites later cells",
    "ast_transformers": "rewrites later cells",
    "showtraceback": "hides errors",
    "events": "hooks into cell execution",
    "get_ipython": "reaches into IPython, which runs the tests",
    "__dict__": "rewrites names through their dictionary",
    "__globals__": "rewrites the notebook's names",
    "__code__": "rewrites a function's code",
}
SUSPICIOUS_METHODS = {
    "__eq__",
    "__ne__",
    "__bool__",
    "__hash__",
    "__instancecheck__",
    "__subclasscheck__",
    "__getattribute__",
    "__class__",
}


def imported_binding(node: ast.Import | ast.ImportFrom, alias: ast.alias) -> tuple[str, str]:
    """The name an import binds and the dotted path of what it binds to it."""
    if isinstance(node, ast.Import):
        if alias.asname:
            return alias.asname, alias.name
        return alias.name.split(".")[0], alias.name.split(".")[0]
    return alias.asname or alias.name, f"{node.module}.{alias.name}"


def module_aliases(tree: ast.AST, modules: set[str]) -> set[str]:
    """Names a cell binds to the protected modules (or any library module) by import."""
    aliases: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                name, module = imported_binding(node, alias)
                if module in modules or module.split(".")[0] in ("course_lib", "torch", "numpy"):
                    aliases.add(name)
    return aliases


def protected_names(sources: Iterable[str]) -> dict[str, str]:
    """Names that locked cells bind by import or def, mapped to what they are bound to."""
    names: dict[str, str] = {}
    for source in sources:
        try:
            tree = ast.parse(TransformerManager().transform_cell(source))
        except (SyntaxError, ValueError):
            continue
        for node in tree.body:
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    name, module = imported_binding(node, alias)
                    names[name] = module
            elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                names[node.name] = "def"
    return names


def audit_code(source: str, protected: dict[str, str] | None = None) -> list[str]:
    """Constructs in one cell of student code that can fool or escape the tests.

    Returns short findings ("line 3: get_ipython (reaches into IPython, ...)"). The tests
    run in the student's own process, so code like this can make them pass without
    doing the work: such a submission deserves a person's look, not points. ``protected``
    maps the names the locked cells bind (``checks``, ``torch``...; see
    ``protected_names``) that answers must not rebind or modify. Code that does not parse
    is left to the tests to fail.
    """
    protected = protected or {}
    try:
        tree = ast.parse(TransformerManager().transform_cell(source))
    except (SyntaxError, ValueError):
        return []
    guarded = set(protected) | module_aliases(tree, set(protected.values()))
    findings = [
        f"line {getattr(node, 'lineno', '?')}: {what} ({why})"
        for node in ast.walk(tree)
        for what, why in _suspicious(node, protected, guarded)
    ]
    return list(dict.fromkeys(findings))


def _suspicious(node: ast.AST, protected: dict[str, str], guarded: set[str]) -> list[tuple[str, str]]:
    """What one syntax node does that can fool the tests, as (what, why) pairs."""
    if isinstance(node, ast.Name) and node.id in SUSPICIOUS_NAMES:
        return [(node.id, SUSPICIOUS_NAMES[node.id])]
    if isinstance(node, ast.Attribute) and node.attr in SUSPICIOUS_ATTRIBUTES:
        return [("." + node.attr, SUSPICIOUS_ATTRIBUTES[node.attr])]
    if isinstance(node, (ast.Import, ast.ImportFrom)):
        return _suspicious_import(node, protected)
    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        if node.name in SUSPICIOUS_METHODS:
            return [(f"def {node.name}", "changes how objects compare")]
        if node.name in protected:
            return [(f"def {node.name}", "rebinds a name the tests use")]
        return []
    if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign, ast.Delete)):
        return _suspicious_assignment(node, guarded)
    return []


def _suspicious_import(node: ast.Import | ast.ImportFrom, protected: dict[str, str]) -> list[tuple[str, str]]:
    """Imports of modules that reach the test machinery, and imports that rebind a protected name."""
    found = []
    modules = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
    for module in modules:
        if module.split(".")[0] in SUSPICIOUS_NAMES:
            found.append((f"import {module}", SUSPICIOUS_NAMES[module.split(".")[0]]))
    for alias in node.names:
        name, module = imported_binding(node, alias)
        if name in protected and protected[name] != module:
            found.append((f"import as {name}", "rebinds a name the tests use"))
    return found


def _suspicious_assignment(
    node: ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete, guarded: set[str]
) -> list[tuple[str, str]]:
    """Assignments and deletions that rebind or modify a guarded name, or set a comparison method."""
    found = []
    targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
    for target in targets:
        for part in ast.walk(target):
            root = part
            while isinstance(root, (ast.Attribute, ast.Subscript)):
                root = root.value
            if isinstance(root, ast.Name) and root.id in guarded:
                found.append((root.id, "rebinds or modifies a name the tests use"))
                break
            if isinstance(part, ast.Name) and part.id in SUSPICIOUS_METHODS:
                found.append((part.id, "changes how objects compare"))
    return found


def cell_text(cell: dict) -> str:
    """A notebook cell's source as one string (nbformat stores it as a string or a list of lines)."""
    source = cell.get("source", "")
    return "".join(source) if isinstance(source, list) else str(source)


def audit_notebook(submitted: dict, source: dict) -> list[str]:
    """``audit_code`` findings for every code cell of a submitted notebook that nbgrader
    will not restore from the source (answers and cells the student added).

    Both notebooks are nbformat 4 dicts; locked cells of the source (setup, tests) are
    skipped because grading puts their source back, and define the protected names.
    """
    locked: dict[str, dict] = {}
    for cell in source.get("cells", []):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("locked") and meta.get("grade_id"):
            locked[meta["grade_id"]] = cell
    protected = protected_names(cell_text(cell) for cell in locked.values() if cell.get("cell_type") == "code")
    findings = []
    for index, cell in enumerate(submitted.get("cells", [])):
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {}).get("nbgrader", {})
        grade_id = meta.get("grade_id") if isinstance(meta, dict) else None
        if grade_id in locked:
            continue
        name = grade_id or f"cell {index + 1}"
        findings += [f"{name}, {finding}" for finding in audit_code(cell_text(cell), protected)]
    return findings
