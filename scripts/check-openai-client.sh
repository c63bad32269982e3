#!/usr/bin/env bash
# The official OpenAI Node client (npm's `openai`, v4) against `mmx serve` on 127.0.0.1: embeddings.create
# with the client's defaults (base64, decoded by the client) and with encoding_format "float" give the
# same vectors; models.list names the served models; a wrong key gets 401 authentication_error;
# images.generate on the tiny SDXL returns a decodable PNG carrying the request's parameters.
# Usage: scripts/check-openai-client.sh [BUILD_DIR]  (default build/release; needs node and npm)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/serve-port.sh
build=${1:-build/release}
if ! command -v node > /dev/null || ! command -v npm > /dev/null; then
  echo "check-openai-client: node and npm are needed (apt-get install nodejs npm)" >&2
  exit 1
fi
work=$(mktemp -d /tmp/mmx-openai-XXXXXX)
server=
cleanup() { [ -n "$server" ] && kill -TERM "$server" 2> /dev/null && wait "$server" || true; rm -rf "$work"; }
trap cleanup EXIT
(cd "$work" && npm init -y > /dev/null && npm install --silent --no-audit --no-fund openai@4 > npm.log 2>&1) ||
  { cat "$work/npm.log" >&2; exit 1; }
cp tests/deploy/openai_client.mjs "$work/"
"$build/mmx" serve --model bert=tests/data/models/bert-tiny --model sdxl=tests/data/models/sdxl-tiny --port 0 --api-key sekret 2> "$work/serve.log" &
server=$!
port=$(serve_port "$work/serve.log")
node "$work/openai_client.mjs" "$port"
