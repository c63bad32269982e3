#!/usr/bin/env bash
# Installs the release build into a temporary prefix and builds examples/ against it, as a program using
# the library would be built: with CMake (find_package(mmx)) and with pkg-config. Then runs them on the
# test models and checks that they link neither Cairo nor libcurl and that zero_shot prints the
# probabilities `mmx classify` prints; that the README's C++ program builds and runs; and that the man page and the bash completion are installed where
# man and bash look. Usage: scripts/check-examples.sh [BUILD_DIR]  (default build/release)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/release}
work=$(mktemp -d /tmp/mmx-examples-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build" --prefix "$prefix" > "$work/install.log"
# The man page and the completions land where man and the shells look under a prefix, and work from there.
test -s "$prefix/share/man/man1/mmx.1"
bash -c "source '$prefix/share/bash-completion/completions/mmx'; COMP_WORDS=(mmx emb); COMP_CWORD=1; _mmx
         [ \"\${COMPREPLY[*]}\" = embed ]"
cmake -S examples -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_BUILD_TYPE=Release > "$work/configure.log"
cmake --build "$work/cmake" -j"$(nproc)" > "$work/build.log"
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
# shellcheck disable=SC2046
g++ -O2 examples/embed.cpp -o "$work/embed-pkgconfig" $(pkg-config --cflags --libs mmx) -Wl,-rpath,"$prefix/lib"

# The README's C++ program, as printed there.
awk '/^```cpp$/ {on = 1; next} /^```$/ {on = 0} on' README.md > "$work/clip_features.cpp"
# shellcheck disable=SC2046
g++ -O2 "$work/clip_features.cpp" -o "$work/clip_features" $(pkg-config --cflags --libs mmx) -Wl,-rpath,"$prefix/lib"

data=tests/data
"$work/clip_features" "$data/models/clip-tiny" "A tabby cat" "$data/images/chelsea.png" | grep -qx 'text \[1, 16\], image \[1, 16\]'
for exe in "$work/cmake/embed" "$work/cmake/similarity" "$work/cmake/zero_shot" "$work/embed-pkgconfig"; do
  if ldd "$exe" | grep -Eq 'libcairo|libcurl'; then
    echo "$exe links Cairo or libcurl:" >&2
    ldd "$exe" >&2
    exit 1
  fi
done
"$work/cmake/embed" "$data/models/clip-tiny" --text "a cat" --image "$data/images/chelsea.png"
"$work/embed-pkgconfig" "$data/models/bert-tiny" --text "Cat with paint" --text "rock statue"
"$work/cmake/similarity" "$data/models/clip-tiny" "$data/images/chelsea.png" "$data/images/coffee.png" -- "a cat" "a cup"
got=$("$work/cmake/zero_shot" "$data/models/clip-tiny" "$data/images/chelsea.png" cat dog rocket)
echo "$got"
want=$("$prefix/bin/mmx" classify --model "$data/models/clip-tiny" --image "$data/images/chelsea.png" \
         --labels cat,dog,rocket --json | python3 -c '
import json, sys
for p in json.load(sys.stdin)[0]["predictions"]:
    print("%-20s %.4f" % (p["label"], p["probability"]))')
if [ "$got" != "$want" ]; then
  echo "zero_shot differs from mmx classify:" >&2
  echo "$want" >&2
  exit 1
fi
echo "examples: built with CMake and pkg-config against $prefix, ran, no Cairo or libcurl linked"
