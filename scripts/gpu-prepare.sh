#!/usr/bin/env bash
# Run HERE (the development machine, no GPU) before handing the tree to the lent GPU machine:
#   scripts/gpu-prepare.sh [DIFFUSERS_SRC]
# 1. builds the CUDA backend, the tests and the benchmarks for Hopper (sm_90) in build/gpu;
# 2. packs them, with the shared libraries they need that a CUDA image may lack (oneDNN, cairo, curl,
#    utf8proc, ...; not glibc, not CUDA's own), into .gpu/bundle.tar.xz, so scripts/gpu-check.sh can run
#    them where those -dev packages are missing;
# 3. packs diffusers' src/ (DIFFUSERS_SRC: a folder holding the diffusers package) into
#    .gpu/diffusers.tar.xz for the PyTorch baseline (the GPU image has torch and transformers only);
# 4. keeps the travelling tree under the device tool's 64 MiB: test data the GPU checks do not read
#    (preprocessing references, the .bin checkpoint copy) is untracked in the index and excluded,
#    until scripts/gpu-restore.sh puts it back. Commits are untouched.
# Then call the device tool with carry [".gpu"] and the command `bash scripts/gpu-check.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
diffusers_src="${1:-}"
jobs="$(nproc)"

cmake -S . -B build/gpu -DCMAKE_BUILD_TYPE=Release -DMMX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DMMX_BUILD_TESTS=ON -DMMX_BUILD_BENCH=ON >/dev/null
cmake --build build/gpu -j"$jobs"

rm -rf .gpu/stage && mkdir -p .gpu/stage/bin .gpu/stage/lib
cp build/gpu/mmx build/gpu/tests/mmx_tests .gpu/stage/bin/
[ -f build/gpu/bench/mmx_bench_kernels ] && cp build/gpu/bench/mmx_bench_kernels .gpu/stage/bin/
# Every library the binaries load, except the C runtime and CUDA's (the GPU machine has its own).
for b in .gpu/stage/bin/*; do ldd "$b"; done | awk '$3 ~ /^\// {print $3}' | sort -u |
  grep -Ev '/(libc|libm|libpthread|libdl|librt|ld-linux-x86-64|libstdc\+\+|libgcc_s)\.so' |
  grep -Ev '/(libcudart|libcublas|libcublasLt|libcuda|libcudnn)[^/]*$' |
  while read -r lib; do cp -L "$lib" .gpu/stage/lib/; done
# The CUDA backend is a module the registry loads from libmmx's folder, not a dependency ldd lists.
cp build/gpu/libmmx-cuda.so .gpu/stage/lib/
XZ_OPT=-9 tar -C .gpu/stage -cJf .gpu/bundle.tar.xz bin lib
rm -rf .gpu/stage
echo "bundle: $(du -h .gpu/bundle.tar.xz | cut -f1)"

if [ -n "$diffusers_src" ]; then
  tar -C "$diffusers_src" -cJf .gpu/diffusers.tar.xz --exclude='__pycache__' diffusers
  echo "diffusers: $(du -h .gpu/diffusers.tar.xz | cut -f1)"
fi

# The tree that travels: untrack what the GPU checks never read.
grep -qx '/.gpu/' .git/info/exclude 2>/dev/null || echo '/.gpu/' >> .git/info/exclude
for path in tests/data/preprocess tests/data/models/bert-tiny-bin tests/data/plot tests/data/rng; do
  git rm -r -q --cached "$path" 2>/dev/null || true
  grep -qx "/$path/" .git/info/exclude || echo "/$path/" >> .git/info/exclude
done
size=$( (git ls-files -z; git ls-files -z --others --exclude-standard) | xargs -0 stat -c %s 2>/dev/null | awk '{s+=$1} END {print s}')
carry=$(du -cb .gpu/*.tar.xz | tail -1 | cut -f1)
echo "travelling: $(( (size + carry) / 1048576 )) MiB of 64 (tree $(( size / 1048576 )), .gpu $(( carry / 1048576 )))"
echo "after the device run: scripts/gpu-restore.sh"
