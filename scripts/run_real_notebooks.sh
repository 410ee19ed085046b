#!/usr/bin/env bash
# Run the notebooks under nbmake on the 13 real BraTS cases of ../shared/data, laid out exactly as the Kaggle mount
# (tests/kaggle_layout.py: both datasets, uncompressed .nii, CSVs, HDF5 slices in a non-default channel order), with
# the `kaggle-cpu` profile (real data, CPU-sized runs). Prints a message and exits 0 when ../shared/data is absent.
# The layout (about 1.9 GB, made once) goes to $BRAINTOOLS_KAGGLE_INPUT (default build/kaggle-input), data and
# caches to $BRAINTOOLS_DATA (default build/kaggle-cpu-data).
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
export BRAINTOOLS_PROFILE=kaggle-cpu
export BRAINTOOLS_KAGGLE_INPUT=${BRAINTOOLS_KAGGLE_INPUT:-$PWD/build/kaggle-input}
export BRAINTOOLS_DATA=${BRAINTOOLS_DATA:-$PWD/build/kaggle-cpu-data}
export MPLBACKEND=Agg
"$VENV/bin/python" tests/kaggle_layout.py "$BRAINTOOLS_KAGGLE_INPUT"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/[0-9][0-9]_*.ipynb)
"$VENV/bin/python" -m pytest "${notebooks[@]}" --nbmake --nbmake-timeout=1800 -p no:cacheprovider --durations=0
