"""The package's layout, read as text: what a built wheel holds, and which way imports go.

Every install the other tests run is editable, so they cannot see a module or data file that
a built package would leave out; `make test-wheel` builds and installs one. These checks are
the fast part of it: every folder of Python modules is a package `find_packages` finds, every
other file is matched by `package_data`, and the engine (no QIIME 2) imports no framework,
no plugin and nothing above itself, without import circles.
"""
import ast
import glob
import os
from pathlib import Path

import pytest
from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "q2_taxdistill"
ENGINE = PACKAGE / "engine"
# what the engine may never import: the framework (named rachis after the rename), plugins,
# and the QIIME 2 adapter above it
FORBIDDEN = ("qiime2", "rachis", "q2cli", "q2templates")


def _setup_keywords():
    """`packages` and `package_data` as setup.py gives them (its call read, not run)."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", None) == "setup")
    return {k.arg: k.value for k in call.keywords}


def _package_files():
    return [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts
            and p.suffix not in (".py", ".pyc")]


def test_every_module_folder_is_a_package_that_setup_finds():
    exclude = ast.literal_eval(_setup_keywords()["packages"].keywords[0].value)
    found = set(find_packages(str(ROOT), exclude=exclude))
    folders = {p.parent for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    missing_init = sorted(str(f.relative_to(ROOT)) for f in folders
                          if not (f / "__init__.py").is_file())
    assert not missing_init, f"folders of modules without __init__.py: {missing_init}"
    names = {".".join(f.relative_to(ROOT).parts) for f in folders}
    assert names <= found, f"not found by find_packages: {sorted(names - found)}"


def test_every_data_file_is_package_data():
    patterns = ast.literal_eval(_setup_keywords()["package_data"])["q2_taxdistill"]
    matched = {Path(p).resolve() for pattern in patterns
               for p in glob.glob(os.path.join(PACKAGE, pattern))}
    left_out = sorted(str(p.relative_to(PACKAGE)) for p in _package_files()
                      if p.resolve() not in matched)
    assert not left_out, f"files of q2_taxdistill no package_data pattern matches: {left_out}"


def _module_name(path):
    return ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")


def _imports(path):
    """Absolute names of the modules `path` imports, at any depth (a function's imports count:
    a circle through them is still a circle)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = ".".join(base[:len(base) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module
            names.add(base)
            # `from . import x` and `from .teacher import projection` may name modules
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def _engine_graph():
    modules = {_module_name(p): p for p in ENGINE.rglob("*.py") if "__pycache__" not in p.parts}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for imported in _imports(path):
            # importing a.b.c runs a, a.b and a.b.c: each one in the engine is an edge
            parts = imported.split(".")
            targets.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        graph[name] = {t for t in targets if t in modules and t != name
                       and not name.startswith(t + ".")}  # a package's own parents run first
    return graph, modules


def _cycle(graph):
    """One import circle as a list of module names, or None."""
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = "done"
        stack.pop()
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_the_engine_has_no_import_circle():
    graph, _ = _engine_graph()
    assert "q2_taxdistill.engine.workflow" in graph
    circle = _cycle(graph)
    assert circle is None, "import circle: " + " -> ".join(circle)


def test_the_cycle_finder_finds_one():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("path", sorted(ENGINE.rglob("*.py")), ids=lambda p: str(p.relative_to(ENGINE)))
def test_the_engine_imports_no_framework_nor_the_adapter(path):
    bad = set()
    for imported in _imports(path):
        top = imported.split(".")[0]
        if top in FORBIDDEN or (top.startswith("q2_") and top != "q2_taxdistill"):
            bad.add(imported)
        elif top == "q2_taxdistill" and not imported.startswith("q2_taxdistill.engine"):
            bad.add(imported)  # the top package or an adapter module
    assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_loading_the_plugin_imports_neither_torch_nor_matplotlib():
    """q2cli loads every installed plugin for every command (`qiime tools import` too): torch
    (~1.4 s, ~180 MB resident) and matplotlib come in only when an action needs them. What
    the framework and q2-types import first is theirs (scikit-bio 0.6 and later imports torch
    itself where it is installed), so only what loading this plugin adds is checked."""
    import subprocess
    import sys

    heavy = "('torch', 'matplotlib', 'transformers', 'faiss')"
    code = ("import sys\n"
            "from q2_taxdistill._framework import plugin_api\n"
            "import q2_types.feature_data, q2_types.feature_table\n"
            f"before = {{m for m in {heavy} if m in sys.modules}}\n"
            "import q2_taxdistill.plugin_setup\n"
            f"print(' '.join(m for m in {heavy} if m in sys.modules and m not in before))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "", f"loading the plugin imported {done.stdout.strip()}"
