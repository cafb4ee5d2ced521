r"""The import graph of ``pyg_ham/``, read from the source with :mod:`ast`: no cycles, and no
arrow that points up a layer (README's "Layout" section and CONTRIBUTING.md show the layers).

Every ``import`` / ``from ... import`` statement counts: at module level, inside functions and
under ``TYPE_CHECKING``. ``from package import submodule`` is an edge to the submodule's file,
``from package import name`` an edge to the package's ``__init__.py``.
"""
import ast
from pathlib import Path
from typing import Dict, List, Optional, Set

import pytest

ROOT = Path(__file__).resolve().parents[1] / "pyg_ham"

#: Bottom to top; a file may import its own layer and those below, never above. The top-level
#: module or package of a file (``pyg_ham/<name>``) decides its layer; ``pyg_ham/__init__.py``
#: (which re-exports the optimizer) and the entry points are on top.
LAYERS = [
    {"errors", "validation", "_version"},
    {"sampling", "optim", "sparse"},
    {"config"},
    {"models", "datasets", "results"},
    {"train"},
    {"cli", "__main__", "__init__", "compare", "vision", "llm"},
]


def module_files() -> Dict[str, Path]:
    """Dotted module name -> file, for every ``.py`` file under ``pyg_ham/``."""
    files = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        files[".".join(parts)] = path
    return files


def is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def imports_of(module: str, path: Path, modules: Dict[str, Path]) -> Set[str]:
    """The pyg_ham modules that :obj:`module`'s import statements name (all of them, anywhere)."""
    found: Set[str] = set()
    package = module if is_package(path) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            for alias in node.names:
                sub = f"{source}.{alias.name}"
                found.add(sub if sub in modules else source)  # a submodule, else a name of the package
    return {name for name in found if name in modules and name != module}


def graph() -> Dict[str, Set[str]]:
    modules = module_files()
    return {name: imports_of(name, path, modules) for name, path in modules.items()}


def layer_of(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    for index, names in enumerate(LAYERS):
        if top in names:
            return index
    raise AssertionError(f"pyg_ham/{top} has no layer; add it to LAYERS (and to README's and CONTRIBUTING's)")


def find_cycle(edges: Dict[str, Set[str]]) -> Optional[List[str]]:
    """One cycle of :obj:`edges` as a list of modules (first == last), or ``None``."""
    state: Dict[str, int] = {}  # 1: on the stack, 2: done
    stack: List[str] = []

    def visit(node: str) -> Optional[List[str]]:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_find_cycle_and_edge_rules_on_known_graphs(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"a"}}) == ["a", "a"]
    modules = {"pyg_ham.pkg": tmp_path / "__init__.py", "pyg_ham.pkg.sub": tmp_path / "sub.py",
               "pyg_ham.pkg.other": tmp_path / "other.py", "pyg_ham.errors": tmp_path / "errors.py"}
    (tmp_path / "sub.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from pyg_ham.pkg import other\n"          # a submodule: its file
        "if TYPE_CHECKING:\n    from pyg_ham.pkg import Name\n"  # a name: the package
        "def f():\n    import pyg_ham.errors\n")   # function-local
    assert imports_of("pyg_ham.pkg.sub", tmp_path / "sub.py", modules) == {
        "pyg_ham.pkg.other", "pyg_ham.pkg", "pyg_ham.errors"}
    (tmp_path / "__init__.py").write_text("from .sub import x\nfrom . import other\n")
    assert imports_of("pyg_ham.pkg", tmp_path / "__init__.py", modules) == {"pyg_ham.pkg.sub", "pyg_ham.pkg.other"}


def test_the_graph_is_read_from_the_real_source():
    edges = graph()
    assert len(edges) > 50
    assert "pyg_ham.optim.ham" in edges["pyg_ham.optim"]  # from pyg_ham.optim.ham import HAM, ...
    assert "pyg_ham.errors" in edges["pyg_ham.optim.ham"]


def test_no_import_cycles():
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_no_import_points_up_a_layer():
    up = [f"{module} (layer {layer_of(module)}) -> {dep} (layer {layer_of(dep)})"
          for module, deps in sorted(graph().items()) for dep in sorted(deps) if layer_of(dep) > layer_of(module)]
    assert not up, "imports that point up a layer:\n" + "\n".join(up)


def test_layer_check_catches_an_upward_import():
    assert layer_of("pyg_ham.optim.ham") < layer_of("pyg_ham.config") < layer_of("pyg_ham.datasets.recipes")
    assert layer_of("pyg_ham") == layer_of("pyg_ham.cli") == len(LAYERS) - 1
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("pyg_ham.unknown")
