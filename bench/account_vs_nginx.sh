#!/usr/bin/env bash
# Throughput of GET /api/v1/account on backpackd against nginx serving a
# static file of the same size, measured in the same run on this machine.
#
#   deploy/bootstrap.sh bench && bench/account_vs_nginx.sh [DURATION_SECONDS] [CONNECTIONS]
#
# Prints requests/s and p99 latency for both and the ratio backpackd/nginx.
# Both servers use 2 threads/workers; wrk runs with 2 threads beside them.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-10}
CONNECTIONS=${2:-64}
BACKPACKD=${BACKPACKD:-build/daemon/backpackd}
for tool in wrk nginx curl; do
  command -v "$tool" >/dev/null || { echo "missing $tool: run deploy/bootstrap.sh bench" >&2; exit 2; }
done
[ -x "$BACKPACKD" ] || { echo "missing $BACKPACKD: run deploy/bootstrap.sh bench" >&2; exit 2; }

WORK=$(mktemp -d /tmp/backpackd-bench-XXXXXX)
chmod 755 "$WORK"  # nginx workers run as an unprivileged user
NODE_PID=""
NGINX_PID=""
cleanup() {
  [ -n "$NODE_PID" ] && kill "$NODE_PID" 2>/dev/null && wait "$NODE_PID" 2>/dev/null || true
  [ -n "$NGINX_PID" ] && kill "$NGINX_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cat > "$WORK/node.toml" <<TOML
[server]
io_threads = 2
[log]
level = "warn"
TOML
"$BACKPACKD" --listen 127.0.0.1:0 --data-dir "$WORK/data" --config "$WORK/node.toml" \
  --port-file "$WORK/node.port" 2>"$WORK/node.log" &
NODE_PID=$!
for _ in $(seq 1 200); do [ -s "$WORK/node.port" ] && break; sleep 0.05; done
NODE=$(cat "$WORK/node.port")

curl -fsS -o /dev/null -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.org","password":"benchmark password","display_name":"Bench Mark"}' \
  "http://$NODE/api/v1/accounts"
TOKEN=$(curl -fsS -H 'Content-Type: application/json' \
  -d '{"email":"bench@example.org","password":"benchmark password"}' \
  "http://$NODE/api/v1/sessions" | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
mkdir -p -m 755 "$WORK/static"
curl -fsS -H "Authorization: Bearer $TOKEN" "http://$NODE/api/v1/account" > "$WORK/static/account.json"
SIZE=$(stat -c %s "$WORK/static/account.json")

NGINX_PORT=$(free_port)
cat > "$WORK/nginx.conf" <<NGINX
worker_processes 2;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  keepalive_requests 1000000;
  default_type application/json;
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $WORK/static;
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK" &
NGINX_PID=$!
for _ in $(seq 1 100); do curl -fsS -o /dev/null "http://127.0.0.1:$NGINX_PORT/account.json" 2>/dev/null && break; sleep 0.05; done

run_wrk() {  # url [header] -> "rps p99_ms"
  local out
  if [ $# -gt 1 ]; then
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency -H "$2" "$1")
  else
    out=$(wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --latency "$1")
  fi
  echo "$out" >&2
  if echo "$out" | grep -q "Non-2xx"; then echo "error answers during the run" >&2; exit 1; fi
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}')
  echo "$rps $p99"
}

echo "== backpackd GET /api/v1/account ($SIZE bytes), ${DURATION}s, $CONNECTIONS connections" >&2
read -r NODE_RPS NODE_P99 < <(run_wrk "http://$NODE/api/v1/account" "Authorization: Bearer $TOKEN")
echo "== nginx GET /account.json ($SIZE bytes), ${DURATION}s, $CONNECTIONS connections" >&2
read -r NGINX_RPS NGINX_P99 < <(run_wrk "http://127.0.0.1:$NGINX_PORT/account.json")

python3 - "$SIZE" "$NODE_RPS" "$NODE_P99" "$NGINX_RPS" "$NGINX_P99" <<'PY'
import sys
size, node_rps, node_p99, nginx_rps, nginx_p99 = sys.argv[1], *map(float, sys.argv[2:])
print(f"body size           {size} bytes")
print(f"backpackd           {node_rps:10.0f} req/s   p99 {node_p99:8.2f} ms")
print(f"nginx (static file) {nginx_rps:10.0f} req/s   p99 {nginx_p99:8.2f} ms")
print(f"throughput ratio    {node_rps / nginx_rps:10.2f}   (backpackd / nginx; target >= 0.5)")
PY
