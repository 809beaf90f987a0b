#!/usr/bin/env bash
# Download the wheels of benchmarks/gpu_wheels.txt for the GPU machine (Python 3.12, manylinux x86_64, no network
# there) into .whl/ at the repository root, or into the folder given as the first argument.  A line marked
# "# build" has no wheel on PyPI: its pure-Python wheel is built here from the source distribution.
#
# There:  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#             .whl/*.whl && export PYTHONPATH=/tmp/site:$PYTHONPATH
set -euo pipefail
cd "$(dirname "$0")/.."
dest="${1:-.whl}"
mkdir -p "$dest"
platforms=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
while IFS= read -r line; do
  spec="${line%%#*}"
  spec="${spec//[[:space:]]/}"
  [ -z "$spec" ] && continue
  if [[ "$line" == *"# build"* ]]; then
    python3 -m pip wheel -q --no-deps -w "$dest" "$spec"
  else
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      "${platforms[@]}" -d "$dest" "$spec"
  fi
done < benchmarks/gpu_wheels.txt
ls -l "$dest"
