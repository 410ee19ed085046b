#!/usr/bin/env bash
# Run every test: the braintools unit tests and every notebook under nbmake, on the tiny `ci` profile (CPU), then
# every notebook again on the same synthetic cases written as BraTS 2021 and BraTS 2023 ship theirs (profiles
# `ci-2021`, `ci-2023`: other file names and labels, no HDF5 slice copy).
# Usage: bash scripts/run_tests.sh [extra pytest arguments]
#
# The notebooks run the way users choose a profile: `PROFILE = "ci"` is written into each notebook's parameters (a cell
# injected after the `parameters` cell, as papermill does) while BRAINTOOLS_PROFILE names another profile, `kaggle`,
# whose data is absent here: code that read the profile from the environment instead of the cell would fail at once.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh
export BRAINTOOLS_DATA=${BRAINTOOLS_DATA:-$PWD/build/ci-data}
export BRAINTOOLS_PROFILE=kaggle
export BRAINTOOLS_KAGGLE_INPUT=$PWD/build/no-kaggle-input
export MPLBACKEND=Agg
mkdir -p "$BRAINTOOLS_KAGGLE_INPUT"
"$VENV/bin/python" -m ruff check braintools tests benchmarks notebooks scripts
notebooks=()
for profile in ci ci-2021 ci-2023; do
  rm -rf "build/$profile-notebooks"
  "$VENV/bin/python" scripts/parametrize_notebooks.py --inject --out "build/$profile-notebooks" PROFILE=$profile \
    notebooks/[0-9][0-9]_*.ipynb
  notebooks+=("build/$profile-notebooks")
done
"$VENV/bin/python" -m pytest tests "${notebooks[@]}" braintools --nbmake --nbmake-timeout=900 --doctest-modules \
  -p no:cacheprovider "$@"
