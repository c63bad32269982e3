#!/usr/bin/env bash
# The collection's web page in headless Chromium (npm's puppeteer-core driving Debian's chromium): a
# collection of the repository's photos indexed with the tiny CLIP, `mmx serve --index` on 127.0.0.1,
# then tests/deploy/web_page.mjs types a query, clicks through, searches by a picked and a dropped image,
# draws the lab's heatmap, generates an image with the tiny SDXL in the generate tab (and cancels one),
# and saves screenshots (to SHOTS_DIR, default a temporary folder).
# Usage: scripts/check-web-page.sh [BUILD_DIR] [SHOTS_DIR]  (needs node, npm and chromium)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve-port.sh
build=${1:-build/release}
for tool in node npm chromium; do
  command -v $tool > /dev/null || { echo "check-web-page: $tool is needed (apt-get install nodejs npm chromium)" >&2; exit 1; }
done
work=$(mktemp -d /tmp/mmx-web-XXXXXX)
shots=${2:-$work/shots}
mkdir -p "$shots"
server=
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2> /dev/null && wait "$server" || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && npm init -y > /dev/null && npm install --silent --no-audit --no-fund puppeteer-core@24 > npm.log 2>&1) ||
  { cat "$work/npm.log" >&2; exit 1; }
cp tests/deploy/web_page.mjs "$work/"
mkdir -p "$work/photos/formats"
cp tests/data/images/{astronaut,camera,chelsea,coffee,horse}.png tests/data/images/rocket.jpg "$work/photos/"
for f in chelsea_lossy.webp chelsea.gif coffee_raw.tiff chelsea_24.bmp chelsea_orient6.jpg; do
  cp "tests/data/images/formats/$f" "$work/photos/formats/"
done
"$build/mmx" index "$work/photos" --model tests/data/models/clip-tiny --db "$work/photos.db" --quiet
"$build/mmx" serve --index "$work/photos.db" --model sdxl=tests/data/models/sdxl-tiny --port 0 2> "$work/serve.log" &
server=$!
port=$(serve_port "$work/serve.log")
node "$work/web_page.mjs" "$port" "$shots" "$PWD/tests/data/images/chelsea.png"
echo "check-web-page: screenshots in $shots"
