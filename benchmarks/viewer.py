"""Measure the update time of the slice viewer at full BraTS size (240 x 240 x 155) and print the median.

Usage: ``python benchmarks/viewer.py [--updates 300] [--case FOLDER]``

An update is what a slider move costs in the notebook: cut the slice, mix in the labels, encode the PNG
and hand it to the ``Image`` widget (the browser's own drawing is not included). Without ``--case`` the
script uses a real sample case when one is at ``../shared/data/brats_sample``, else a synthetic case.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from pathlib import Path

from braintools.data import io
from braintools.synthetic import generator
from braintools.viz.orientation import plane_axis
from braintools.viz.widgets import SliceViewer

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "data" / "brats_sample"


def load_benchmark_case(folder: Path | None):
    """Return (case, description): the given folder, a real sample case, or a synthetic case."""
    if folder is None and SAMPLE.is_dir():
        folder = sorted(path for path in SAMPLE.iterdir() if path.is_dir())[0]
    if folder is not None:
        return io.load_case(folder), f"real case {folder.name}"

    return generator.make_case(seed=2020, case_index=1), "synthetic case (seed 2020, index 1)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300, help="number of timed updates")
    parser.add_argument("--case", type=Path, default=None, help="a BraTS case folder to use")
    args = parser.parse_args()
    case, description = load_benchmark_case(args.case)
    viewer = SliceViewer(case, prediction=case.seg)
    # cycle through every kind of change a learner makes: slice, plane, modality, overlay, opacity
    changes = itertools.cycle(
        [{"index": None}] * 6
        + [{"plane": "sagittal"}, {"plane": "coronal"}, {"plane": "axial"}, {"modality": "t1ce"},
           {"modality": "flair"}, {"overlay": "prediction"}, {"overlay": "none"}, {"overlay": "ground truth"},
           {"alpha": 0.7}, {"alpha": 0.4}]
    )
    times = []
    for _ in range(args.updates):
        change = next(changes)
        if "index" in change:
            size = viewer.shape[plane_axis(viewer.affine, viewer.plane)]
            change = {"index": (viewer.index + 7) % size}
        start = time.perf_counter()
        viewer.set(**change)
        times.append(time.perf_counter() - start)
    shape = "x".join(str(n) for n in viewer.shape)
    print(f"slice viewer update ({shape}, {description}): median {1000 * statistics.median(times):.1f} ms, "
          f"90th percentile {1000 * statistics.quantiles(times, n=10)[-1]:.1f} ms over {len(times)} updates")


if __name__ == "__main__":
    main()
