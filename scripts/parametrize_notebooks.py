"""Write copies of notebooks with parameters set the way users set them, for the tests of the users' routes.

- ``--inject`` (as papermill does): a cell tagged ``injected-parameters`` right after the ``parameters`` cell, holding
  ``NAME = value`` lines; the parameters cell itself is unchanged.
- ``--edit`` (as a Kaggle or Colab user does, README: "Run in Colab or Kaggle"): the line ``NAME = ...`` of the
  ``parameters`` cell is rewritten in place; a notebook without that line is an error.

    python scripts/parametrize_notebooks.py --inject --out build/ci-notebooks PROFILE=ci notebooks/*.ipynb

Values are Python literals (``PROFILE='"ci"'``); a bare word is taken as a string (``PROFILE=ci``). The copies keep
their file names; write them inside the course checkout (e.g. under ``build/``) so that their Setup cell finds the
course by looking upward from the notebook's folder.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

INJECTED_TAG = "injected-parameters"  # papermill's tag for the cell it adds


def parse_assignment(text: str) -> tuple[str, str]:
    """``NAME=value`` -> (``NAME``, the Python source of the value); a bare word becomes a string literal."""
    name, sep, value = text.partition("=")
    if not sep or not name.isidentifier():
        raise ValueError(f"expected NAME=value, got {text!r}")
    try:
        ast.literal_eval(value)
    except (ValueError, SyntaxError):
        value = repr(value)
    return name, value


def _parameters_index(notebook: dict, path: Path) -> int:
    for index, cell in enumerate(notebook["cells"]):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            return index
    raise ValueError(f"{path}: no cell tagged 'parameters'")


def inject(notebook: dict, values: dict[str, str], path: Path) -> dict:
    """Insert papermill's ``injected-parameters`` cell after the ``parameters`` cell."""
    index = _parameters_index(notebook, path)
    lines = ["# Parameters\n"] + [f"{name} = {value}\n" for name, value in values.items()]
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": [INJECTED_TAG]}, "outputs": [],
            "source": lines}
    if any("id" in other for other in notebook["cells"]):
        cell["id"] = "injected-parameters"
    notebook["cells"].insert(index + 1, cell)
    return notebook


def edit(notebook: dict, values: dict[str, str], path: Path) -> dict:
    """Rewrite the ``NAME = ...`` line of the ``parameters`` cell, keeping its comment."""
    cell = notebook["cells"][_parameters_index(notebook, path)]
    text = "".join(cell["source"])
    for name, value in values.items():
        text, count = re.subn(rf"^{name} = [^#\n]*?(\s*#.*)?$", lambda m, n=name, v=value: f"{n} = {v}{m[1] or ''}",
                              text, count=1, flags=re.MULTILINE)
        if count != 1:
            raise ValueError(f"{path}: the parameters cell has no line {name} = ...")
    cell["source"] = text.splitlines(keepends=True)
    return notebook


def main(argv: list[str] | None = None) -> int:
    """Write the parametrised copies; print one line per notebook."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group(required=True)
    how.add_argument("--inject", action="store_true", help="add papermill's injected-parameters cell")
    how.add_argument("--edit", action="store_true", help="rewrite the lines of the parameters cell")
    parser.add_argument("--out", type=Path, required=True, help="folder for the copies (created)")
    parser.add_argument("items", nargs="+", help="NAME=value ... then the notebooks")
    args = parser.parse_args(argv)
    values = dict(parse_assignment(item) for item in args.items if not item.endswith(".ipynb"))
    notebooks = [Path(item) for item in args.items if item.endswith(".ipynb")]
    if not values or not notebooks:
        parser.error("give at least one NAME=value and one notebook")
    args.out.mkdir(parents=True, exist_ok=True)
    change = inject if args.inject else edit
    for path in notebooks:
        notebook = change(json.loads(path.read_text(encoding="utf-8")), values, path)
        (args.out / path.name).write_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{args.out / path.name}: {', '.join(f'{k} = {v}' for k, v in values.items())}"
              f" ({'injected' if args.inject else 'edited'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
