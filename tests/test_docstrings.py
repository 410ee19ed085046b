"""Every public function and class of braintools says what it does and which notebook introduces it, with type hints."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "braintools"
MODULES = sorted(PACKAGE.rglob("*.py"))


def public_definitions(path: Path) -> list[ast.FunctionDef | ast.ClassDef]:
    """Top-level functions and classes of a module whose names do not start with an underscore."""
    tree = ast.parse(path.read_text())
    return [node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_definitions_have_a_docstring_naming_their_notebook(path):
    missing = []
    for node in public_definitions(path):
        first_paragraph = (ast.get_docstring(node) or "").split("\n\n")[0].lower()
        if "notebook" not in first_paragraph:
            missing.append(node.name)
    assert not missing, f"{path.name}: no docstring naming its notebook (or 'no notebook'): {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_functions_have_type_hints(path):
    missing = []
    for node in public_definitions(path):
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            if node.returns is None or any(a.annotation is None for a in arguments if a.arg not in ("self", "cls")):
                missing.append(node.name)
    assert not missing, f"{path.name}: public functions without full type hints: {missing}"
