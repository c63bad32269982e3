#!/usr/bin/env bash
# The Python package as a user installs it: `pip install --no-build-isolation .` into a virtual environment
# that sees Debian's numpy and distributed, reusing BUILD_DIR's build (MMX_BUILD_DIR: setup.py copies the
# module and its libraries from there instead of building again), then the module's tests run against
# the installed package, from outside the source tree's python/ folder (no PYTHONPATH).
# Usage: scripts/check-python-package.sh [BUILD_DIR]  (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "${1:-build/release}")
work=$(mktemp -d /tmp/mmx-python-XXXXXX)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
MMX_BUILD_DIR=$build "$work/venv/bin/pip" install --no-build-isolation --no-index . > "$work/pip.log" 2>&1 ||
  { cat "$work/pip.log"; exit 1; }
site=$("$work/venv/bin/python" -c "import mmx, os; print(os.path.dirname(mmx.__file__))")
case "$site" in "$work"/venv/*) ;; *) echo "mmx imported from $site, not the installed package" >&2; exit 1 ;; esac
for file in __init__.py __init__.pyi dask.py dask.pyi py.typed libmmx.so.0; do
  test -e "$site/$file" || { echo "the installed package lacks $file" >&2; exit 1; }
done
# The module finds its libraries beside it ($ORIGIN), not in the build tree.
ldd "$site"/_native*.so | grep -E 'libmmx(_collections|_plot)?\.so' | grep -v -F "$site/" && {
  echo "the installed module loads a library from outside its package" >&2; exit 1; } || true
cd python/tests
PYTHONPATH= MMX_BINARY=$build/mmx "$work/venv/bin/python" -m unittest test_embed test_module
echo "check-python-package: installed into a venv and passed its tests from there"
