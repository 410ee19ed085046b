"""Keep the notebooks' Colab/Kaggle setup in step with the one place of each fact it repeats.

- the version: ``__version__`` in ``braintools/__init__.py``; the release is the git tag ``v<version>``;
- the repository URL: ``Repository`` under ``[project.urls]`` in ``pyproject.toml``;
- the setup cell: the first code cell of ``notebooks/01_download.ipynb``.

``python scripts/sync_setup_cell.py`` writes the URL and the version into the setup cell, copies that cell into
every notebook, and writes the "Open in Colab" badges (first line of each notebook, the README's notebook table).
``--check`` changes nothing: it lists the files that differ and exits 1 (``tests/test_setup_cell.py`` runs it).
Run it after changing the URL or the version (before tagging a release).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE_NOTEBOOK = "01_download.ipynb"
BADGE_IMAGE = "https://colab.research.google.com/assets/colab-badge.svg"
_BADGE = re.compile(r"\[!\[Open In Colab\]\([^)]*\)\]\([^)]*\)")


def course_version(root: Path = ROOT) -> str:
    """The version of braintools, read from ``braintools/__init__.py`` without importing it."""
    text = (root / "braintools" / "__init__.py").read_text(encoding="utf-8")
    return re.search(r'^__version__ = "([^"]+)"$', text, re.MULTILINE).group(1)


def repository_url(root: Path = ROOT) -> str:
    """The course's repository URL: ``Repository`` under ``[project.urls]`` in ``pyproject.toml``."""
    text = (root / "pyproject.toml").read_text(encoding="utf-8")
    urls = re.search(r"^\[project\.urls\]$(.*?)^\[", text, re.MULTILINE | re.DOTALL).group(1)
    return re.search(r'^Repository = "([^"]+)"$', urls, re.MULTILINE).group(1).rstrip("/")


def notebook_paths(root: Path = ROOT) -> list[Path]:
    """The course's numbered notebooks, in order."""
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def colab_badge(url: str, version: str, notebook: str) -> str:
    """Markdown of an "Open in Colab" badge for ``notebooks/<notebook>`` at the release tag ``v<version>``."""
    match = re.fullmatch(r"https://github\.com/([^/]+/[^/]+?)(?:\.git)?", url)
    if match is None:
        raise ValueError(f"pyproject.toml: Colab opens notebooks from GitHub only, not from {url}")
    link = f"https://colab.research.google.com/github/{match[1]}/blob/v{version}/notebooks/{notebook}"
    return f"[![Open In Colab]({BADGE_IMAGE})]({link})"


def setup_cell(notebook: dict) -> dict:
    """The setup cell of a notebook: its first code cell."""
    return next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")


def cell_text(cell: dict) -> str:
    """The source of a notebook cell as one string."""
    source = cell["source"]
    return source if isinstance(source, str) else "".join(source)


def _set_text(cell: dict, text: str) -> None:
    cell["source"] = text.splitlines(keepends=True)


def _set_constant(code: str, name: str, value: str) -> str:
    """Replace the value of the line ``NAME = "..."`` of the setup cell (exactly one such line)."""
    code, count = re.subn(rf'^{name} = "[^"]*"', f'{name} = "{value}"', code, flags=re.MULTILINE)
    if count != 1:
        raise ValueError(f"{SOURCE_NOTEBOOK}: the setup cell must have exactly one line {name} = \"...\"")
    return code


def _with_badge(text: str, badge: str) -> str:
    """Markdown whose first line is ``badge`` (replacing an older badge there)."""
    first, _, rest = text.partition("\n")
    if _BADGE.fullmatch(first.strip()):
        return f"{badge}\n{rest}"
    return f"{badge}\n\n{text}"


def _readme_with_badges(text: str, url: str, version: str, names: list[str]) -> str:
    """The README with one badge after each notebook's link in the notebook table."""
    for name in names:
        row = re.compile(rf"(\]\(notebooks/{re.escape(name)}\))(?: {_BADGE.pattern})?")
        text, count = row.subn(lambda m, n=name: f"{m[1]} {colab_badge(url, version, n)}", text, count=1)
        if count != 1:
            raise ValueError(f"README.md: no link to notebooks/{name} in the notebook table")
    return text


def expected_files(root: Path = ROOT) -> dict[Path, str]:
    """Every notebook and the README as they must be: the synced setup cell, the badges."""
    url, version = repository_url(root), course_version(root)
    paths = notebook_paths(root)
    source = json.loads((root / "notebooks" / SOURCE_NOTEBOOK).read_text(encoding="utf-8"))
    code = cell_text(setup_cell(source))
    code = _set_constant(_set_constant(code, "COURSE_URL", url), "COURSE_VERSION", version)
    files = {}
    for path in paths:
        notebook = json.loads(path.read_text(encoding="utf-8"))
        _set_text(setup_cell(notebook), code)
        title = next(cell for cell in notebook["cells"] if cell["cell_type"] == "markdown")
        _set_text(title, _with_badge(cell_text(title), colab_badge(url, version, path.name)))
        files[path] = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
    readme = root / "README.md"
    files[readme] = _readme_with_badges(readme.read_text(encoding="utf-8"), url, version, [p.name for p in paths])
    return files


def out_of_sync(root: Path = ROOT) -> list[Path]:
    """The files whose setup cell or badges differ from what ``expected_files`` makes."""
    return [path for path, text in expected_files(root).items() if path.read_text(encoding="utf-8") != text]


def main(argv: list[str] | None = None) -> int:
    """Write (or with ``--check`` only list) the files that are out of sync."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of sync")
    args = parser.parse_args(argv)
    stale = out_of_sync()
    for path in stale:
        print(("out of sync: " if args.check else "updated: ") + str(path.relative_to(ROOT)))
    if args.check:
        return 1 if stale else 0
    expected = expected_files()
    for path in stale:
        path.write_text(expected[path], encoding="utf-8")
    print(f"version {course_version()}, tag v{course_version()}, repository {repository_url()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
