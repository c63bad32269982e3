#!/usr/bin/env bash
# On a GPU machine (the lent H100/H200), from the repository root:
#   bash scripts/gpu-check.sh     (GPU_CHECK_QUICK=1: tests only; GPU_CHECK_BUNDLE=1: skip the build, use the bundle)
# 1. builds mmx with the CUDA backend using every core, or, where this machine lacks the build's
#    -dev packages, unpacks the build scripts/gpu-prepare.sh made (.gpu/bundle.tar.xz);
# 2. runs the CUDA op tests, then every golden test with the models on the GPU: in f32 against the CPU
#    tolerances (pass/fail), in f16 and bf16 printing each comparison's max |Δ| (the data for their
#    tolerances, tests/README.md);
# 3. benchmarks, mmx and PyTorch (transformers/diffusers eager, tools/bench_torch_gpu.py) in the same run:
#    BERT-base, ViT-base, CLIP B/32 at batch 1, 32, 256 (items/s), SDXL's UNet step and VAE decode at
#    1024², and SDXL 1024² 30 steps CFG 5 end to end (random weights from the real configs), with
#    the ratios. Sized to finish in under 8 minutes on one H100.
# Logs and JSON go to $OUT (the device tool's output folder) or /tmp/mmx-gpu-check.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
out="${OUT:-/tmp/mmx-gpu-check}"
mkdir -p "$out"
start=$(date +%s)
stamp() { echo "== [$(( $(date +%s) - start )) s] $*"; }
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader || { echo "no GPU"; exit 1; }

# --- 1. binaries -----------------------------------------------------------------------------------------
# CUDA's libraries as this machine has them (the toolkit's, or the PyTorch wheels' under /opt).
lib_dir() { local f; f=$(find /usr/local/cuda*/ /usr/lib /opt -name "$1" 2>/dev/null | head -1); [ -n "$f" ] && dirname "$f"; }
cuda_lib="$(lib_dir 'libcublasLt.so.13*'):$(lib_dir 'libcudart.so.13*'):$(lib_dir 'libcudnn.so.9*')"
stamp "build"
if [ "${GPU_CHECK_BUNDLE:-0}" != 1 ] && cmake -S . -B build/gpu-here -G Ninja -DCMAKE_BUILD_TYPE=Release -DMMX_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
     >"$out/configure.log" 2>&1 && cmake --build build/gpu-here -j"$(nproc)" >"$out/build.log" 2>&1; then
  bin="$root/build/gpu-here"; tests="$bin/tests/mmx_tests"; mmx="$bin/mmx"; libs=""
  echo "built here with $(nproc) cores"
elif [ -f .gpu/bundle.tar.xz ]; then
  [ "${GPU_CHECK_BUNDLE:-0}" = 1 ] && echo "using .gpu/bundle.tar.xz (GPU_CHECK_BUNDLE=1)" ||
    echo "cannot build here ($(grep -m1 -i 'could not\|not found\|error' "$out/configure.log")); using .gpu/bundle.tar.xz"
  rm -rf /tmp/mmx-bundle && mkdir -p /tmp/mmx-bundle && tar -C /tmp/mmx-bundle -xJf .gpu/bundle.tar.xz
  tests=/tmp/mmx-bundle/bin/mmx_tests; mmx=/tmp/mmx-bundle/bin/mmx; libs=/tmp/mmx-bundle/lib
else
  echo "cannot build here and no .gpu/bundle.tar.xz (run scripts/gpu-prepare.sh first)"; tail -20 "$out/configure.log"; exit 1
fi
# mmx's libraries only for mmx's processes (the bundle's Debian libraries must not shadow Python's).
with_libs() { LD_LIBRARY_PATH="${libs:+$libs:}${cuda_lib:+$cuda_lib:}${LD_LIBRARY_PATH:-}" MMX_TEST_DATA_DIR="$root/tests/data" "$@"; }
with_libs "$mmx" --version 2>/dev/null || with_libs "$mmx" --help | head -2

# --- 2. tests ---------------------------------------------------------------------------------------------
stamp "CUDA op tests (and torch's CUDA randn as the reference for --rng cuda)"
python3 - "$out/torch-cuda-randn.safetensors" <<'PY' || echo "(torch could not write its CUDA randn reference)"
import sys, torch
from safetensors.torch import save_file
t = {}
for seed in (0, 42):
    for dt, name in ((torch.float32, "f32"), (torch.float16, "f16"), (torch.bfloat16, "bf16")):
        t[f"s{seed}_{name}_1x4x128x128"] = torch.randn(1, 4, 128, 128, generator=torch.Generator("cuda").manual_seed(seed), device="cuda", dtype=dt).cpu()
for shape in ((3, 5, 7), (1, 4, 64, 64), (700001,)):
    g = torch.Generator("cuda").manual_seed(7)
    key = "s7_f32_" + "x".join(map(str, shape))
    t[key] = torch.randn(*shape, generator=g, device="cuda").cpu()
    t[key + "_second"] = torch.randn(*shape, generator=g, device="cuda").cpu()
save_file(t, sys.argv[1])
PY
[ -f "$out/torch-cuda-randn.safetensors" ] && export MMX_TORCH_CUDA_RANDN="$out/torch-cuda-randn.safetensors"
with_libs "$tests" --gtest_filter='Cuda*' --gtest_brief=1 2>&1 | tee "$out/cuda-ops.log" | tail -40
[ "${PIPESTATUS[0]}" = 0 ] || status=1
grep -q 'no CUDA device visible' "$out/cuda-ops.log" && { echo "the tests saw no GPU: is libcuda reachable?"; status=1; }
# Every test that compares a model with its reference (the scheduler's are host-only).
golden='*Golden*:SDXLPrompt.*:TextToImage.*:UNet.*:VAE.*:Similarity.*'
stamp "golden tests on CUDA, f32 (the CPU tolerances)"
MMX_TEST_DEVICE=cuda MMX_TEST_DTYPE=f32 with_libs "$tests" --gtest_filter="$golden" --gtest_brief=1 2>&1 |
  tee "$out/golden-f32.log" | grep -E 'FAIL|Failure|PASSED|FAILED|error' | head -60
[ "${PIPESTATUS[0]}" = 0 ] || status=1
for dt in f16 bf16; do
  stamp "golden tests on CUDA, $dt (measured, not asserted)"
  MMX_TEST_DEVICE=cuda MMX_TEST_DTYPE=$dt with_libs "$tests" --gtest_filter="$golden" >"$out/golden-$dt.log" 2>&1
  # expect_close prints "name  max|d| …  max rel …  bound …  PASS|FAIL" for every comparison
  grep -F 'max|d|' "$out/golden-$dt.log" | head -80
done
[ "${GPU_CHECK_QUICK:-0}" = 1 ] && { stamp "done (quick), status $status"; exit $status; }

# --- 3. benchmarks ----------------------------------------------------------------------------------------
batch_workloads="bert-1x128 bert-32x128 bert-256x128 vit-1 vit-32 vit-256 clip-image-1 clip-image-32 clip-image-256 clip-text-1 clip-text-32 clip-text-256"
stamp "mmx bench, f16"
with_libs "$mmx" bench $batch_workloads sdxl-unet-1024 --device cuda --dtype f16 --runs 5 --json >"$out/mmx-f16.json" 2>"$out/mmx-bench.err" ||
  { status=1; tail -5 "$out/mmx-bench.err"; }
with_libs "$mmx" bench sdxl-vae-1024 --device cuda --dtype f32 --runs 3 --json >"$out/mmx-vae-f32.json" 2>>"$out/mmx-bench.err" || status=1
stamp "PyTorch bench, f16"
diffusers_dir=""
if [ -f .gpu/diffusers.tar.xz ]; then
  rm -rf /tmp/mmx-diffusers && mkdir -p /tmp/mmx-diffusers && tar -C /tmp/mmx-diffusers -xJf .gpu/diffusers.tar.xz
  diffusers_dir=/tmp/mmx-diffusers
fi
python3 tools/bench_torch_gpu.py $batch_workloads ${diffusers_dir:+sdxl-unet-1024} --dtype f16 --runs 5 \
  ${diffusers_dir:+--diffusers $diffusers_dir} --json "$out/torch-f16.json" 2>"$out/torch-bench.err" || tail -5 "$out/torch-bench.err"
[ -n "$diffusers_dir" ] && python3 tools/bench_torch_gpu.py sdxl-vae-1024 --dtype f16 --runs 3 --diffusers "$diffusers_dir" \
  --json "$out/torch-vae.json" 2>>"$out/torch-bench.err"

stamp "SDXL 1024², 30 steps, CFG 5, end to end (random weights)"
if with_libs "$mmx" bench --write-random-sdxl /tmp/sdxl-random >/dev/null 2>"$out/write-sdxl.err"; then
  with_libs "$mmx" generate --model /tmp/sdxl-random --variant fp16 --device cuda --dtype f16 --prompt "an astronaut riding a horse" \
    --steps 30 --guidance 5 --width 1024 --height 1024 --seed 0 --output "$out/sdxl-random.png" 2>&1 | tr '\r' '\n' |
    tail -3 | tee "$out/mmx-sdxl.log" || status=1
else
  status=1; tail -3 "$out/write-sdxl.err"
fi
[ -n "$diffusers_dir" ] && python3 tools/bench_torch_gpu.py sdxl-1024x30 --dtype f16 --runs 2 --diffusers "$diffusers_dir" \
  --json "$out/torch-sdxl.json" 2>>"$out/torch-bench.err"

stamp "ratios (same machine, same run)"
python3 - "$out" <<'PY'
import json, pathlib, re, sys
out = pathlib.Path(sys.argv[1])
def load(*names):
    rows = {}
    for n in names:
        p = out / n
        if p.exists():
            for r in json.loads(p.read_text()):
                rows[r["workload"]] = r
    return rows
mmx, torch = load("mmx-f16.json", "mmx-vae-f32.json"), load("torch-f16.json", "torch-vae.json")
print(f"{'workload':18s} {'mmx ms':>10s} {'torch ms':>10s} {'torch/mmx':>10s} {'mmx items/s':>12s} {'mmx GiB':>8s} {'torch GiB':>9s}")
for name, m in mmx.items():
    t = torch.get(name)
    ratio = f"{t['median_ms'] / m['median_ms']:.2f}" if t else "-"
    print(f"{name:18s} {m['median_ms']:10.2f} {t['median_ms'] if t else float('nan'):10.2f} {ratio:>10s} "
          f"{m.get('items_per_s', 0):12.1f} {m.get('peak_device_mb', 0) / 1024:8.2f} {(t or {}).get('peak_device_mb', 0) / 1024:9.2f}")
log = (out / "mmx-sdxl.log").read_text() if (out / "mmx-sdxl.log").exists() else ""
m = re.search(r"prompt ([\d.]+) s, (\d+) UNet steps at ([\d.]+) s/step, decode ([\d.]+) s", log)
t = load("torch-sdxl.json").get("sdxl-1024x30")
if m:
    total = float(m[1]) + int(m[2]) * float(m[3]) + float(m[4])
    print(f"SDXL 1024² 30 steps: mmx {total:.2f} s (prompt {m[1]} s, {m[3]} s/step, decode {m[4]} s)"
          + (f"; diffusers {t['median_ms'] / 1e3:.2f} s; diffusers/mmx {t['median_ms'] / 1e3 / total:.2f}" if t else ""))
PY
stamp "done, status $status"
exit $status
