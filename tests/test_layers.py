"""The package's layers: a module imports only from its own layer and those below it.

From the bottom: `atomic` (files written whole), `model` (the paper), `experiment` (one run),
`workbench` (many runs), `book` (the chapters' helpers), `cli` (the commands).
"""

import ast
from pathlib import Path

import cvgad

LAYERS = ("atomic", "model", "experiment", "workbench", "book", "cli")
PACKAGE = Path(cvgad.__file__).parent


def layer_of(module: str) -> int | None:
    """The layer of a dotted cvgad module name (None for the package itself)."""
    parts = module.split(".")
    if parts[0] != "cvgad" or len(parts) == 1 or parts[1] in ("__init__", "__main__"):
        return None
    return LAYERS.index(parts[1])


def module_name(path: Path) -> str:
    return ".".join(("cvgad", *path.relative_to(PACKAGE).with_suffix("").parts))


def imported(path: Path) -> list[str]:
    """Every cvgad module `path` imports, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cvgad"):
            names += [f"cvgad.{a.name}" for a in node.names] if node.module == "cvgad" else [node.module]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names if a.name.startswith("cvgad")]
    return names


def upward_imports() -> list[str]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = layer_of(module_name(path))
        if own is None:
            continue
        for name in imported(path):
            other = layer_of(name)
            if other is not None and other > own:
                found.append(f"{module_name(path)} imports {name} ({LAYERS[own]} < {LAYERS[other]})")
    return found


def test_every_module_has_a_layer():
    modules = [module_name(p) for p in PACKAGE.rglob("*.py")]
    assert all(layer_of(m) is not None or m in ("cvgad.__init__", "cvgad.__main__") for m in modules)


def test_no_module_imports_from_a_layer_above_its_own():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import(tmp_path):
    module = tmp_path / "trainer.py"
    module.write_text("def f():\n    from cvgad.workbench import report\n")
    assert imported(module) == ["cvgad.workbench"]
    assert layer_of(imported(module)[0]) > layer_of("cvgad.model.algorithm1")
