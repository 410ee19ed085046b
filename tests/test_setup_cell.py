"""The notebooks' Setup cell, run in a subprocess under simulated Colab, Kaggle and fresh-runtime conditions.

Nothing here touches the network: ``git`` is a fake on PATH that "clones" by copying a folder made from this
checkout, and ``python -m pip`` finds a fake ``pip`` package on PYTHONPATH that only records what it was asked.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

import braintools
from braintools.data import download

ROOT = Path(__file__).resolve().parents[1]
PLACEHOLDER_URL = "https://github.com/OWNER/REPOSITORY"
TEST_URL = "https://github.com/example-owner/example-course"  # never contacted: git is a fake here
MISSING = "fake-package-not-installed==1.2.3"  # added to the fake clone's constraints.txt


def _load_sync():
    spec = importlib.util.spec_from_file_location("sync_setup_cell", ROOT / "scripts" / "sync_setup_cell.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sync = _load_sync()


def setup_code() -> str:
    """The Setup cell of notebook 01 (the test below checks that every notebook has the same)."""
    notebook = json.loads((ROOT / "notebooks" / sync.SOURCE_NOTEBOOK).read_text(encoding="utf-8"))
    return sync.cell_text(sync.setup_cell(notebook))


def with_constants(code: str, **values) -> str:
    """The cell with the line ``NAME = ...`` of each constant replaced (each must exist exactly once)."""
    for name, value in values.items():
        code, count = re.subn(rf"^{name} = .*$", f"{name} = {value!r}", code, count=1, flags=re.MULTILINE)
        assert count == 1, f"the Setup cell has no line {name} = ..."
    return code


def with_drive(code: str, mountpoint: Path) -> str:
    """The cell with Google Drive mounted at ``mountpoint`` instead of Colab's /content/drive."""
    call = "use_google_drive=USE_GOOGLE_DRIVE)"
    assert code.count(call) == 1, "the Setup cell no longer calls environment.prepare(..., use_google_drive=...)"
    return code.replace(call, f"use_google_drive=USE_GOOGLE_DRIVE, google_drive={str(mountpoint)!r})")


FAKE_GIT = '''
import json, os, shutil, sys
args = sys.argv[1:]
with open(os.environ["FAKE_GIT_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if os.environ.get("FAKE_GIT_ORIGIN") is None or args[:1] != ["clone"]:
    sys.exit("fake git: not expected to run here")
branch = args[args.index("--branch") + 1]
if branch not in os.environ["FAKE_GIT_TAGS"].split():
    sys.exit(f"fatal: Remote branch {branch} not found in upstream origin")
shutil.copytree(os.environ["FAKE_GIT_ORIGIN"], args[-1])
'''

FAKE_PIP = '''
import json, os, sys
with open(os.environ["FAKE_PIP_LOG"], "a") as log:
    constraints = {arg: open(arg).read() for arg in sys.argv if arg.endswith(".txt")}
    log.write(json.dumps({"args": sys.argv[1:], "constraints": constraints}) + "\\n")
'''

FAKE_COLAB_DRIVE = '''
import json, os
from pathlib import Path

def mount(mountpoint, **kwargs):
    (Path(mountpoint) / "MyDrive").mkdir(parents=True, exist_ok=True)
    with open(os.environ["FAKE_DRIVE_LOG"], "a") as log:
        log.write(json.dumps(str(mountpoint)) + "\\n")
'''

REPORT = '''
import json as _json, os as _os
import braintools as _braintools
print("RESULT " + _json.dumps({"braintools": _braintools.__file__, "version": _braintools.__version__,
                               "course_root": str(COURSE_ROOT), "data": _os.environ.get("BRAINTOOLS_DATA")}))
'''


class Runtime:
    """A simulated runtime: fake git on PATH, fake pip (and optionally google.colab) on PYTHONPATH, logs."""

    def __init__(self, tmp_path: Path, colab: bool = False):
        self.tmp = tmp_path
        self.bin, self.site, self.logs = tmp_path / "bin", tmp_path / "site", tmp_path / "logs"
        for folder in (self.bin, self.site / "pip", self.logs):
            folder.mkdir(parents=True)
        git = self.bin / "git"
        git.write_text(f"#!{sys.executable}\n{FAKE_GIT}")
        git.chmod(0o755)
        (self.site / "pip" / "__init__.py").write_text("")
        (self.site / "pip" / "__main__.py").write_text(FAKE_PIP)
        if colab:
            (self.site / "google" / "colab").mkdir(parents=True)  # no google/__init__.py: a namespace package
            (self.site / "google" / "colab" / "__init__.py").write_text("")
            (self.site / "google" / "colab" / "drive.py").write_text(FAKE_COLAB_DRIVE)
        self.env = {key: value for key, value in os.environ.items()
                    if key not in ("PYTHONPATH", "BRAINTOOLS_DATA", "KAGGLE_KERNEL_RUN_TYPE",
                                   download.KAGGLE_INPUT_ENV)}
        self.env.update(PATH=f"{self.bin}{os.pathsep}{os.environ['PATH']}", PYTHONPATH=str(self.site),
                        FAKE_GIT_LOG=str(self.logs / "git"), FAKE_PIP_LOG=str(self.logs / "pip"),
                        FAKE_DRIVE_LOG=str(self.logs / "drive"), MPLBACKEND="Agg")

    def make_origin(self) -> Path:
        """The course as the fake git serves it: a copy of this checkout, with a pin of a package not installed."""
        origin = self.tmp / "origin"
        shutil.copytree(ROOT / "braintools", origin / "braintools", ignore=shutil.ignore_patterns("__pycache__"))
        for name in ("pyproject.toml", "requirements.txt", "constraints.txt"):
            shutil.copy(ROOT / name, origin / name)
        with open(origin / "constraints.txt", "a") as pins:
            pins.write(MISSING + "\n")
        self.env.update(FAKE_GIT_ORIGIN=str(origin), FAKE_GIT_TAGS=f"v{braintools.__version__}")
        return origin

    def run(self, code: str, cwd: Path) -> subprocess.CompletedProcess:
        """Run the cell (then print what it set up) with ``python cell.py`` in ``cwd``."""
        script = self.tmp / "cell" / "cell.py"
        script.parent.mkdir(exist_ok=True)
        script.write_text(code + "\n" + REPORT)
        return subprocess.run([sys.executable, str(script)], cwd=cwd, env=self.env, capture_output=True, text=True,
                              timeout=300)

    def log(self, name: str) -> list:
        path = self.logs / name
        return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def result(process: subprocess.CompletedProcess) -> dict:
    """What the cell set up, as printed by REPORT (fails with the cell's output if it did not get there)."""
    assert process.returncode == 0, process.stdout + process.stderr
    line = next(line for line in process.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def setup_line(process: subprocess.CompletedProcess) -> str:
    """The one line the cell prints about where the course and the data are."""
    return next(line for line in process.stdout.splitlines() if ": course " in line)


def test_setup_cell_is_identical_in_every_notebook():
    cells = {path.name: sync.cell_text(sync.setup_cell(json.loads(path.read_text(encoding="utf-8"))))
             for path in sync.notebook_paths()}
    assert len(cells) == 8
    assert all(code == cells[sync.SOURCE_NOTEBOOK] for code in cells.values()), [
        name for name, code in cells.items() if code != cells[sync.SOURCE_NOTEBOOK]]
    assert cells[sync.SOURCE_NOTEBOOK].startswith("# Setup")


def test_setup_cell_keeps_only_what_must_run_before_the_course_is_importable():
    code_lines = [line for line in setup_code().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert len(code_lines) <= 25, f"{len(code_lines)} lines of code: move what can run later into braintools"
    assert "from braintools import environment" in setup_code()


def test_version_url_and_badges_are_in_step_with_their_one_place():
    assert sync.course_version() == braintools.__version__
    code = setup_code()
    assert f'COURSE_VERSION = "{braintools.__version__}"' in code
    assert f'COURSE_URL = "{sync.repository_url()}"' in code
    assert sync.out_of_sync() == [], "run python scripts/sync_setup_cell.py"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for path in sync.notebook_paths():
        badge = sync.colab_badge(sync.repository_url(), braintools.__version__, path.name)
        assert readme.count(badge) == 1
        first_markdown = next(c for c in json.loads(path.read_text(encoding="utf-8"))["cells"]
                              if c["cell_type"] == "markdown")
        assert sync.cell_text(first_markdown).startswith(badge + "\n")


def test_sync_check_finds_a_stale_notebook(tmp_path):
    for name in ("braintools/__init__.py", "pyproject.toml", "README.md"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    assert sync.out_of_sync(tmp_path) == []
    init = tmp_path / "braintools" / "__init__.py"
    init.write_text(init.read_text().replace(f'"{braintools.__version__}"', '"9.9.9"'))
    assert len(sync.out_of_sync(tmp_path)) == 9  # eight notebooks and the README


def test_pyproject_reads_the_version_from_braintools():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"] and "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "braintools.__version__"}
    assert project["project"]["urls"]["Repository"] == sync.repository_url()


def test_constraints_pin_every_requirement_within_its_range():
    requirements = [Requirement(line) for line in (ROOT / "requirements.txt").read_text().splitlines()
                    if line.strip() and not line.startswith("#")]
    pins = dict(line.split("==") for line in (ROOT / "constraints.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#"))
    assert sorted(pins) == sorted(requirement.name for requirement in requirements)
    for requirement in requirements:
        assert requirement.specifier.contains(pins[requirement.name]), (requirement, pins[requirement.name])


def test_fresh_runtime_clones_the_course_at_its_release_tag(tmp_path):
    runtime = Runtime(tmp_path)
    runtime.make_origin()
    workdir = tmp_path / "content"  # like Colab's /content: no course files here or above
    workdir.mkdir()
    code = with_constants(setup_code(), COURSE_URL=TEST_URL)
    process = runtime.run(code, workdir)
    done = result(process)
    clone = workdir / "brats-course"
    assert Path(done["braintools"]).resolve() == (clone / "braintools" / "__init__.py").resolve()
    assert done["version"] == braintools.__version__ and Path(done["course_root"]) == clone
    assert runtime.log("git") == [["clone", "--quiet", "--depth", "1", "--branch", f"v{braintools.__version__}",
                                   TEST_URL, str(workdir / "brats-course.partial")]]
    assert not (workdir / "brats-course.partial").exists()
    # only the missing package is installed, at its pinned version; pip must keep the installed torch
    [pip] = runtime.log("pip")
    requested = [arg for arg in pip["args"] if "==" in arg]
    assert requested == [MISSING]
    [keep] = pip["constraints"].values()
    from importlib.metadata import version

    assert f"torch=={version('torch')}" in keep.splitlines()
    assert setup_line(process).startswith(f"Local: course {clone} (braintools {braintools.__version__})")
    # a second run finds the clone: no second clone
    assert result(runtime.run(code, workdir))["course_root"] == str(clone)
    assert len(runtime.log("git")) == 1


def test_missing_release_tag_is_a_clear_error(tmp_path):
    runtime = Runtime(tmp_path)
    runtime.make_origin()
    runtime.env["FAKE_GIT_TAGS"] = "v0.0.1"
    (tmp_path / "content").mkdir()
    process = runtime.run(with_constants(setup_code(), COURSE_URL=TEST_URL), tmp_path / "content")
    assert process.returncode != 0
    assert f"at v{braintools.__version__} failed" in process.stderr and "internet" in process.stderr
    assert not (tmp_path / "content" / "brats-course").exists()


def test_placeholder_url_says_what_to_do_instead_of_cloning(tmp_path):
    runtime = Runtime(tmp_path)
    (tmp_path / "content").mkdir()
    process = runtime.run(with_constants(setup_code(), COURSE_URL=PLACEHOLDER_URL), tmp_path / "content")
    assert process.returncode != 0
    assert "COURSE_URL is a placeholder" in process.stderr and "notebooks/ folder" in process.stderr
    assert runtime.log("git") == []


@pytest.mark.parametrize("use_drive", [True, False])
def test_colab_keeps_the_data_on_google_drive_when_asked(tmp_path, use_drive):
    runtime = Runtime(tmp_path, colab=True)
    runtime.env["BRAINTOOLS_DATA"] = str(tmp_path / "vm-data")
    drive = tmp_path / "drive"
    code = with_drive(with_constants(setup_code(), USE_GOOGLE_DRIVE=use_drive), drive)
    process = runtime.run(code, ROOT / "notebooks")  # the course is found: this checkout
    done = result(process)
    assert Path(done["braintools"]).resolve() == (ROOT / "braintools" / "__init__.py").resolve()
    line = setup_line(process)
    assert line.startswith("Colab: course ")
    if use_drive:
        assert runtime.log("drive") == [str(drive)]
        assert done["data"] == str(drive / "MyDrive" / "braintools-data")
        assert (drive / "MyDrive" / "braintools-data").is_dir()
        assert f"BRAINTOOLS_DATA {drive / 'MyDrive' / 'braintools-data'} (Google Drive)" in line
    else:
        assert runtime.log("drive") == [] and done["data"] == str(tmp_path / "vm-data")
        assert "Google Drive" not in line
    assert runtime.log("git") == [] and runtime.log("pip") == []


@pytest.mark.parametrize("attached", [2, 1])
def test_kaggle_reports_where_the_course_and_the_datasets_are(tmp_path, attached):
    runtime = Runtime(tmp_path)
    kaggle_input = tmp_path / "kaggle" / "input"
    handles = [download.NIFTI_HANDLE, download.H5_HANDLE]
    for handle in handles[:attached]:
        (kaggle_input / handle.split("/")[1]).mkdir(parents=True)
    runtime.env.update(KAGGLE_KERNEL_RUN_TYPE="Interactive", BRAINTOOLS_DATA=str(tmp_path / "working"))
    runtime.env[download.KAGGLE_INPUT_ENV] = str(kaggle_input)
    process = runtime.run(with_constants(setup_code(), USE_GOOGLE_DRIVE=True), ROOT / "notebooks")
    result(process)
    line = setup_line(process)
    assert line.startswith(f"Kaggle: course {ROOT} ")
    assert f"BRAINTOOLS_DATA {tmp_path / 'working'}" in line
    assert f"Kaggle datasets: {attached} of 2 in {kaggle_input}" in line
    assert ("Attach awsaf49/brats2020-training-data" in process.stdout) == (attached == 1)
    assert "USE_GOOGLE_DRIVE is for Colab only" in process.stdout
    assert runtime.log("drive") == [] and runtime.log("git") == []


@pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")
def test_real_git_clones_a_local_repository_at_the_release_tag(tmp_path):
    """The same with the real git, from a repository on disk (file://, no network): the command line is valid."""
    runtime = Runtime(tmp_path)
    origin = runtime.make_origin()
    (runtime.bin / "git").unlink()  # the real git from now on
    git = ["git", "-C", str(origin), "-c", "user.name=test", "-c", "user.email=test@example.org"]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"], ["tag", f"v{braintools.__version__}"],
                 ["commit", "-q", "--allow-empty", "-m", "after the release"]):
        subprocess.run(git + args, check=True, capture_output=True)
    workdir = tmp_path / "content"
    workdir.mkdir()
    process = runtime.run(with_constants(setup_code(), COURSE_URL=origin.as_uri()), workdir)
    clone = workdir / "brats-course"
    assert Path(result(process)["braintools"]).resolve() == (clone / "braintools" / "__init__.py").resolve()
    described = subprocess.run(["git", "-C", str(clone), "describe", "--tags", "--exact-match"],
                               capture_output=True, text=True, check=True)
    assert described.stdout.strip() == f"v{braintools.__version__}"


# ------------------------------------------------------------------ braintools.environment, the rest of the Setup


def test_missing_packages_are_the_pins_that_are_not_installed(tmp_path):
    from braintools import environment

    (tmp_path / "constraints.txt").write_text("# a comment==1.0\nnumpy==0.0.1\n" + MISSING + "\n")
    assert environment._installed_version("numpy") is not None
    assert environment._missing_packages(tmp_path) == [MISSING]  # an installed numpy is never changed


def test_install_missing_keeps_the_installed_torch(tmp_path, monkeypatch):
    from braintools import environment

    (tmp_path / "constraints.txt").write_text(f"torch==0.0.1\n{MISSING}\n")
    calls = []
    monkeypatch.setattr(environment.subprocess, "run", lambda args, check: calls.append(
        (args, open(args[-1]).read())))
    assert environment._install_missing(tmp_path) == [MISSING]
    [(args, keep)] = calls
    assert args[1:5] == ["-m", "pip", "install", "-q"] and MISSING in args and "torch==0.0.1" not in args
    from importlib.metadata import version

    assert f"torch=={version('torch')}" in keep.splitlines()
    (tmp_path / "constraints.txt").write_text("torch==0.0.1\n")
    assert environment._install_missing(tmp_path) == [] and len(calls) == 1  # nothing missing: pip is not run


def test_runtime_name(monkeypatch):
    from braintools import environment

    monkeypatch.delenv("KAGGLE_KERNEL_RUN_TYPE", raising=False)
    assert environment._runtime_name() == "Local"
    monkeypatch.setenv("KAGGLE_KERNEL_RUN_TYPE", "Batch")
    assert environment._runtime_name() == "Kaggle"


FAKE_KAGGLEHUB = '''
import json, os
from braintools.synthetic.layout import H5_DATASET_DIR, NIFTI_DATASET_DIR
from braintools.synthetic.dataset import ensure_synthetic_dataset
def dataset_download(handle, path=None, **kwargs):
    with open(os.environ["FAKE_KAGGLEHUB_LOG"], "a") as log:
        log.write(json.dumps(handle) + "\\n")
    return os.path.join(os.environ["FAKE_KAGGLEHUB_ROOT"], handle.split("/")[1])
'''


def test_colab_fresh_runtime_with_the_readme_steps_runs_notebook_01_on_the_downloaded_data(tmp_path):
    """README, Colab: open the notebook from GitHub in a fresh runtime, set PROFILE = "kaggle" in the parameters
    cell, Run all. The Setup cell clones the course (fake git), installs what is missing (fake pip), and kagglehub
    (a fake returning the ci synthetic dataset in the two Kaggle layouts) "downloads" both datasets."""
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    from braintools.profiles import get_profile
    from braintools.synthetic.dataset import ensure_synthetic_dataset
    from braintools.synthetic.layout import H5_DATASET_DIR, NIFTI_DATASET_DIR

    runtime = Runtime(tmp_path, colab=True)
    origin = runtime.make_origin()
    shutil.copytree(ROOT / "notebooks", origin / "notebooks")
    downloads = tmp_path / "kagglehub"
    dataset = ensure_synthetic_dataset(get_profile("ci"), root=tmp_path / "synthetic")
    downloads.mkdir()
    for handle, name in ((download.NIFTI_HANDLE, NIFTI_DATASET_DIR),
                         (download.H5_HANDLE, H5_DATASET_DIR)):
        (downloads / handle.split("/")[1]).symlink_to(dataset / name, target_is_directory=True)
    (runtime.site / "kagglehub").mkdir()
    (runtime.site / "kagglehub" / "__init__.py").write_text(FAKE_KAGGLEHUB)
    runtime.env.update(FAKE_KAGGLEHUB_ROOT=str(downloads), FAKE_KAGGLEHUB_LOG=str(runtime.logs / "kagglehub"),
                       BRAINTOOLS_PROFILE="ci")  # ignored: the parameters cell says kaggle
    content = tmp_path / "content"
    content.mkdir()
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import parametrize_notebooks
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    notebook = parametrize_notebooks.edit(
        json.loads((ROOT / "notebooks" / "01_download.ipynb").read_text(encoding="utf-8")),
        {"PROFILE": '"kaggle"'}, Path("01_download.ipynb"))
    notebook = with_test_url(notebook)
    client = NotebookClient(nbformat.reads(json.dumps(notebook), as_version=4), timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(content)}})
    with pytest.MonkeyPatch.context() as patch:
        for key in list(os.environ):
            patch.delenv(key)
        for key, value in runtime.env.items():
            patch.setenv(key, value)
        client.execute()
    outputs = "".join(output.get("text", "") for cell in client.nb.cells for output in cell.get("outputs", []))
    clone = content / "brats-course"
    assert f"Colab: course {clone} (braintools {braintools.__version__}); BRAINTOOLS_DATA {clone / 'data'}" in outputs
    assert "REAL DATA: the BraTS 2020 training cases" in outputs  # the kaggle profile of the cell, not ci
    assert runtime.log("kagglehub") == [f"{download.NIFTI_HANDLE}/versions/{download.NIFTI_VERSION}",
                                        f"{download.H5_HANDLE}/versions/{download.H5_VERSION}"]
    assert [args["args"][-3] for args in runtime.log("pip")] == [MISSING]
    assert not (clone / "data" / "synthetic").exists()  # nothing generated: the cell's profile is a real-data one


def with_test_url(notebook: dict) -> dict:
    """The notebook with the Setup cell's COURSE_URL set to the (fake) repository of the tests."""
    cell = next(cell for cell in notebook["cells"] if cell["cell_type"] == "code")
    cell["source"] = with_constants("".join(cell["source"]), COURSE_URL=TEST_URL)
    return notebook
