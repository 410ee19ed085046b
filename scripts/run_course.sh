#!/usr/bin/env bash
# Run the whole course on the embedded synthetic data (profile `course`: real BraTS size, CPU is fine).
# Executed notebooks and their HTML go to build/course/ (outside git); data to $BRAINTOOLS_DATA (default data/).
# Usage: bash scripts/run_course.sh [notebook ...]   (default: all notebooks, in order)
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup_venv.sh
export BRAINTOOLS_PROFILE=${BRAINTOOLS_PROFILE:-course}
export MPLBACKEND=Agg
# Notebooks 02 (statistics) and 07 (scores of the models) also use real BraTS cases when a folder of them is given;
# the development checkout keeps 13 of them next to the repository, in ../shared/data.
if [ -z "${BRAINTOOLS_REAL_CASES:-}" ] && [ -d ../shared/data ]; then
  export BRAINTOOLS_REAL_CASES=$(cd ../shared/data && pwd)
fi
out=build/${BRAINTOOLS_PROFILE}
mkdir -p "$out"
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(notebooks/[0-9][0-9]_*.ipynb)
for notebook in "${notebooks[@]}"; do
  name=$(basename "$notebook")
  echo "=== $name ($(date +%H:%M:%S))"
  start=$SECONDS
  "$VENV/bin/python" -m nbconvert --to notebook --execute --ExecutePreprocessor.timeout=-1 \
    --output-dir "$out" "$notebook"
  "$VENV/bin/python" -m nbconvert --to html --output-dir "$out" "$out/$name" >/dev/null 2>&1
  echo "    done in $((SECONDS - start)) s -> $out/$name and ${name%.ipynb}.html"
done
