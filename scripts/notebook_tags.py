"""Write into each docstring of braintools which notebook first uses that function or class: generated, never kept by
hand, so the back-references cannot drift.

A public function or class that a notebook calls, imports or shows (``inspect.getsource``) gets ``(notebook NN)`` at
the end of the first line of its docstring (or, when that line is full, a second line ``Introduced in notebook NN.``),
NN being the first notebook that uses it; one that no notebook uses gets no tag.

    python scripts/notebook_tags.py           # rewrite the tags
    python scripts/notebook_tags.py --check   # change nothing; list the definitions whose tag is stale, exit 1

``tests/test_docstrings.py`` runs the check.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "braintools"
LINE_LENGTH = 120
_TAGS = [re.compile(r" \(notebooks? \d\d(?:[-,] ?\d\d)*\)(?=\.?(?:\n|$|\"\"\"))"),
         re.compile(r" \(0[1-8](?:[-,] ?0[1-8])*\)(?=\.?(?:\n|$|\"\"\"))"),
         re.compile(r"\n[ \t]*Introduced in notebooks? \d\d(?:-\d\d)?\.(?=\n|\"\"\"|$)")]


def module_name(path: Path) -> str:
    """``braintools/data/io.py`` -> ``braintools.data.io``."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def public_definitions(path: Path) -> list[ast.FunctionDef | ast.ClassDef]:
    """Top-level functions and classes whose names do not start with an underscore."""
    return [node for node in ast.parse(path.read_text(encoding="utf-8")).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")]


def package_modules() -> dict[str, Path]:
    """Every public module of braintools by dotted name (``_private`` left out: no notebook imports it)."""
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py")) if "_private" not in path.parts}


def notebook_code(path: Path) -> str:
    """The code cells of a notebook as one Python source (IPython magics and shell lines blanked)."""
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = "\n".join("".join(cell["source"]) for cell in cells if cell["cell_type"] == "code")
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in code.splitlines())


def uses(code: str, modules: dict[str, Path]) -> set[tuple[str, str]]:
    """(module, name) pairs a notebook's code refers to: names imported from a module, and ``alias.name``."""
    tree = ast.parse(code)
    found, aliases = set(), {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("braintools"):
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if dotted in modules:
                    aliases[alias.asname or alias.name] = dotted
                else:
                    found.add((node.module, alias.name))
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            found.add((aliases[node.value.id], node.attr))
    return found


def first_uses(root: Path = ROOT) -> dict[tuple[str, str], int]:
    """(module, name) -> the number of the first notebook that uses it."""
    modules, first = package_modules(), {}
    for notebook in sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = int(notebook.name[:2])
        for pair in uses(notebook_code(notebook), modules):
            first.setdefault(pair, number)
    return first


def tagged(segment: str, number: int | None, indent: str) -> str:
    """A docstring's source with every notebook tag removed, then the one for ``number`` (if any) added."""
    for pattern in _TAGS:
        segment = pattern.sub("", segment)
    if number is None:
        return segment
    quote = segment[:3]
    body = segment[3:]
    first_end = body.find("\n")
    first_line = body if first_end < 0 else body[:first_end]
    rest = "" if first_end < 0 else body[first_end:]
    closing = first_line.endswith(quote)
    text = first_line[: -3] if closing else first_line
    tag = f" (notebook {number:02d})"
    stem, period = (text[:-1], ".") if text.endswith(".") else (text, "")
    candidate = f"{stem}{tag}{period}"
    if len(indent) + 3 + len(candidate) + (3 if closing else 0) <= LINE_LENGTH:
        return quote + candidate + (quote if closing else "") + rest
    line = f"\n{indent}Introduced in notebook {number:02d}."
    if closing:
        return quote + text + line + quote + rest
    return quote + first_line + line + rest


def expected_sources(root: Path = ROOT) -> dict[Path, str]:
    """Every module whose docstring tags differ from the generated ones, with its corrected source."""
    first, changed = first_uses(root), {}
    for name, path in package_modules().items():
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        offsets = [0]
        for line in lines:
            offsets.append(offsets[-1] + len(line))
        edits = []
        for node in public_definitions(path):
            if not (node.body and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)
                    and isinstance(node.body[0].value.value, str)):
                continue
            doc = node.body[0].value
            start = offsets[doc.lineno - 1] + doc.col_offset
            end = offsets[doc.end_lineno - 1] + doc.end_col_offset
            segment = source[start:end]
            if not segment.startswith(('"""', "'''")):
                continue
            new = tagged(segment, first.get((name, node.name)), " " * doc.col_offset)
            if new != segment:
                edits.append((start, end, new))
        for start, end, new in sorted(edits, reverse=True):
            source = source[:start] + new + source[end:]
        if edits:
            changed[path] = source
    return changed


def main(argv: list[str] | None = None) -> int:
    """Rewrite (or with ``--check`` only list) the stale tags."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a tag is stale")
    args = parser.parse_args(argv)
    changed = expected_sources()
    for path, source in changed.items():
        print(("stale tags: " if args.check else "updated: ") + str(path.relative_to(ROOT)))
        if not args.check:
            path.write_text(source, encoding="utf-8")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
