"""Every public function and class of braintools says what it does (and, generated, which notebook uses it first), with
type hints."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "braintools"
MODULES = sorted(PACKAGE.rglob("*.py"))


def public_definitions(path: Path) -> list[ast.FunctionDef | ast.ClassDef]:
    """Top-level functions and classes of a module whose names do not start with an underscore."""
    tree = ast.parse(path.read_text())
    return [node for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_definitions_have_a_docstring(path):
    missing = [node.name for node in public_definitions(path) if not (ast.get_docstring(node) or "").strip()]
    assert not missing, f"{path.name}: public definitions without a docstring: {missing}"


def test_notebook_tags_are_generated_from_the_notebooks():
    """Each tag "(notebook NN)" names the first notebook that uses the definition (scripts/notebook_tags.py)."""
    check = subprocess.run([sys.executable, str(ROOT / "scripts" / "notebook_tags.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, f"run python scripts/notebook_tags.py:\n{check.stdout}{check.stderr}"


def test_notebook_tags_follow_the_first_notebook_that_uses_a_definition(tmp_path):
    spec = importlib.util.spec_from_file_location("notebook_tags", ROOT / "scripts" / "notebook_tags.py")
    tags = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tags)
    first = tags.first_uses()
    assert first[("braintools.data.download", "get_dataset")] == 1  # notebook 01 calls it first
    assert first[("braintools.training.train", "fit")] == 4
    assert ("braintools.synthetic.generator", "make_case") not in first  # no notebook calls it: no tag
    docstring = '"""Return the thing.\n    Introduced in notebook 07."""'
    assert tags.tagged(docstring, 3, "    ") == '"""Return the thing (notebook 03)."""'
    assert tags.tagged('"""Return the thing (notebook 05)."""', None, "") == '"""Return the thing."""'


@pytest.mark.parametrize("path", MODULES, ids=lambda path: str(path.relative_to(PACKAGE)))
def test_public_functions_have_type_hints(path):
    missing = []
    for node in public_definitions(path):
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
            if node.returns is None or any(a.annotation is None for a in arguments if a.arg not in ("self", "cls")):
                missing.append(node.name)
    assert not missing, f"{path.name}: public functions without full type hints: {missing}"
