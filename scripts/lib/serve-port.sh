# Sourced by the check scripts: serve_port LOG prints the port `mmx serve --port 0` wrote to LOG once it
# listens (10 s at most); without one it prints the log to stderr and fails.
serve_port() {
  local port=
  for _ in $(seq 100); do
    port=$(grep -o '127\.0\.0\.1:[0-9]*' "$1" | head -1 | cut -d: -f2) && [ -n "$port" ] && break
    sleep 0.1
  done
  [ -n "$port" ] || { cat "$1" >&2; return 1; }
  echo "$port"
}
