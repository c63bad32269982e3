#!/usr/bin/env bash
# Undoes the index changes of scripts/gpu-prepare.sh: the test data it untracked is tracked again.
set -euo pipefail
cd "$(dirname "$0")/.."
for path in tests/data/preprocess tests/data/models/bert-tiny-bin tests/data/plot tests/data/rng; do
  sed -i "\|^/$path/\$|d" .git/info/exclude
done
git reset -q -- tests/data
git status --short tests/data | head
echo "restored; git status is clean again when nothing else changed"
