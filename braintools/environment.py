"""Where a notebook runs (Colab, Kaggle or a local checkout): what the Setup cell of every notebook does once it has
found the course files (notebook 01).

``prepare`` installs the packages of ``constraints.txt`` that are missing (never PyTorch: Colab and Kaggle ship it,
and a reinstall would take minutes and gigabytes), keeps the data on Google Drive when asked in Colab, and prints one
line saying where the course and the data are (on Kaggle: which datasets are attached).

This module imports only the standard library at the top: the Setup cell calls it before the course's packages
(NumPy, PyTorch, ...) are known to be installed.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys
import tempfile
from pathlib import Path

KEEP_INSTALLED = ("torch", "torchvision")  # pip may never replace these: Colab and Kaggle ship their own builds
COLAB_DRIVE = "/content/drive"  # where Colab mounts Google Drive
DRIVE_DATA = "braintools-data"  # BRAINTOOLS_DATA under MyDrive when the data is kept on Drive


def _installed_version(name: str) -> str | None:
    """The installed version of a distribution, or ``None`` if it is not installed (notebook 01).

    Example:
        >>> _installed_version("surely-not-a-real-package-name") is None
        True
    """
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _missing_packages(course_root: str | os.PathLike) -> list[str]:
    """The pins of ``constraints.txt`` (``name==version``) whose package is not installed at all (notebook 01)."""
    lines = (Path(course_root) / "constraints.txt").read_text(encoding="utf-8").splitlines()
    pins = [line.strip().split("==") for line in lines if "==" in line and not line.lstrip().startswith("#")]
    return [f"{name}=={version}" for name, version in pins if _installed_version(name) is None]


def _install_missing(course_root: str | os.PathLike) -> list[str]:
    """Install the missing pinned packages with pip, keep the installed PyTorch; return what was asked (notebook 01)."""
    missing = _missing_packages(course_root)
    if not missing:
        return []
    keep = [f"{name}=={_installed_version(name)}" for name in KEEP_INSTALLED if _installed_version(name)]
    with tempfile.NamedTemporaryFile("w", suffix="-keep.txt", delete=False) as keep_file:
        keep_file.write("\n".join(keep) + "\n")  # a constraint: pip may not replace the installed torch
    print("Installing", " ".join(missing))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", *missing, "-c", keep_file.name], check=True)
    importlib.invalidate_caches()
    return missing


def _runtime_name() -> str:
    """``"Colab"``, ``"Kaggle"`` or ``"Local"``: where this Python runs (notebook 01)."""
    try:
        import google.colab  # noqa: F401 (importable in Colab only)

        return "Colab"
    except ImportError:
        return "Kaggle" if "KAGGLE_KERNEL_RUN_TYPE" in os.environ else "Local"  # set in every Kaggle notebook


def _use_drive_for_data(mountpoint: str = COLAB_DRIVE) -> Path:
    """Mount Google Drive (Colab) and use ``MyDrive/braintools-data`` as ``BRAINTOOLS_DATA`` (notebook 01)."""
    from google.colab import drive  # Colab only

    drive.mount(mountpoint)
    folder = Path(mountpoint) / "MyDrive" / DRIVE_DATA
    os.environ["BRAINTOOLS_DATA"] = str(folder)
    return folder


def prepare(course_root: str | os.PathLike, version: str, use_google_drive: bool = False,
            google_drive: str = COLAB_DRIVE) -> None:
    """Finish the Setup cell: install what is missing, Drive if asked, print where things are (notebook 01)."""
    import braintools

    if braintools.__version__ != version:
        print(f"Note: the course files in {course_root} are braintools {braintools.__version__}, this notebook was "
              f"written for {version}.")
    _install_missing(course_root)
    where = _runtime_name()
    drive_note = ""
    if use_google_drive and where == "Colab":
        _use_drive_for_data(google_drive)
        drive_note = " (Google Drive)"
    elif use_google_drive:
        print("USE_GOOGLE_DRIVE is for Colab only: ignored here.")
    from braintools import paths
    from braintools.data import download

    handles = [download.NIFTI_HANDLE, download.H5_HANDLE]
    attached = [handle for handle in handles if download.kaggle_input_dir(handle) is not None]
    kaggle = (f"; Kaggle datasets: {len(attached)} of 2 in {download.kaggle_input_root()}"
              if where == "Kaggle" or attached else "")
    print(f"{where}: course {course_root} (braintools {braintools.__version__}); "
          f"BRAINTOOLS_DATA {paths.data_dir()}{drive_note}{kaggle}")
    if where == "Kaggle" and len(attached) < 2:
        print("Attach", " and ".join(h for h in handles if h not in attached), "(Add Input) to use the real data.")
    if where in ("Colab", "Kaggle"):
        import torch

        if not torch.cuda.is_available():
            print("No GPU: choose one for notebooks 04-07 (Colab: Runtime > Change runtime type > T4 GPU; "
                  "Kaggle: Settings > Accelerator > GPU T4 x2 or GPU P100).")
