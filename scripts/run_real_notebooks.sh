#!/usr/bin/env bash
# Run the notebooks under nbmake on the 13 real BraTS cases of ../shared/data, laid out exactly as the Kaggle mount
# (tests/kaggle_layout.py: both datasets, uncompressed .nii, CSVs, HDF5 slices in a non-default channel order), the
# way the README tells Kaggle users to: `PROFILE = "kaggle-cpu"` written into each notebook's parameters cell (real
# data, CPU-sized runs) and no profile variable set by this script (one the caller set, e.g. BRAINTOOLS_PROFILE=course,
# must be ignored: the cell decides). Then checks that notebook 03 wrote the
# NIfTI cache once, every case cropped, and that 04 converted nothing again. Prints a message and exits 0 when
# ../shared/data is absent.
# The layout (about 1.9 GB, made once) goes to $BRAINTOOLS_KAGGLE_INPUT (default build/kaggle-input; on Kaggle it is
# /kaggle/input), data and caches to $BRAINTOOLS_DATA (default build/kaggle-cpu-data).
# Usage: bash scripts/run_real_notebooks.sh [notebook ...]   (default: all notebooks)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
if ! "$VENV/bin/python" -c "import sys; sys.path.insert(0, 'tests'); import kaggle_layout as k; sys.exit(not k.real_data_present())"
then
  echo "real cases ../shared/data/brats_sample and brats_dev are absent: nothing to run"
  exit 0
fi
export BRAINTOOLS_KAGGLE_INPUT=${BRAINTOOLS_KAGGLE_INPUT:-$PWD/build/kaggle-input}
export BRAINTOOLS_DATA=${BRAINTOOLS_DATA:-$PWD/build/kaggle-cpu-data}
export MPLBACKEND=Agg
"$VENV/bin/python" tests/kaggle_layout.py "$BRAINTOOLS_KAGGLE_INPUT"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/[0-9][0-9]_*.ipynb)
edited=build/kaggle-cpu-notebooks
rm -rf "$edited"
"$VENV/bin/python" scripts/parametrize_notebooks.py --edit --out "$edited" PROFILE=kaggle-cpu "${notebooks[@]}"
run() { "$VENV/bin/python" -m pytest "$@" --nbmake --nbmake-timeout=1800 -p no:cacheprovider --durations=0; }
cache=$BRAINTOOLS_DATA/outputs/kaggle-cpu/npy_cache
if [ $# -gt 0 ]; then
  run "$edited"/*.ipynb
  exit 0
fi
run "$edited"/0[1-3]_*.ipynb
after_03=$("$VENV/bin/python" tests/kaggle_layout.py --cache-fingerprint "$cache")
echo "NIfTI cache after notebook 03: $after_03"
run "$edited"/0[4-8]_*.ipynb
after_08=$("$VENV/bin/python" tests/kaggle_layout.py --cache-fingerprint "$cache")
if [ "$after_03" != "$after_08" ]; then
  echo "the NIfTI cache changed after notebook 03 ($after_08): notebooks 04-08 converted cases again" >&2
  exit 1
fi
echo "NIfTI cache written once by notebook 03, every case cropped; notebooks 04-08 converted nothing"
