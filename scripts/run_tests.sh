#!/usr/bin/env bash
# Run every test: the braintools unit tests and every notebook under nbmake, on the tiny `ci` profile (CPU).
# Usage: bash scripts/run_tests.sh [extra pytest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh
export BRAINTOOLS_PROFILE=ci
export BRAINTOOLS_DATA=${BRAINTOOLS_DATA:-$PWD/build/ci-data}
export MPLBACKEND=Agg
"$VENV/bin/python" -m ruff check braintools tests benchmarks notebooks
"$VENV/bin/python" -m pytest tests notebooks braintools --nbmake --nbmake-timeout=900 --doctest-modules -p no:cacheprovider "$@"
