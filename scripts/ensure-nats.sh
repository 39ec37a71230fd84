#!/usr/bin/env bash
# Make sure a NATS server with JetStream answers at $1; start the venv's nats-server ($2) if not.
set -euo pipefail
url="${1:-nats://127.0.0.1:4222}"
binary="${2:-nats-server}"
hostport="${url#nats://}"
host="${hostport%%:*}"
port="${hostport##*:}"
if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then
  exit 0
fi
case "$host" in
  127.0.0.1|localhost) ;;
  *) echo "no NATS server at $url and it is not local: start it, or unset SAFETYMON_NATS_URL" >&2; exit 1 ;;
esac
store="${TMPDIR:-/tmp}/safetymon-test-nats"
mkdir -p "$store"
echo "starting nats-server with JetStream on $host:$port (store $store)" >&2
nohup "$binary" -js -a "$host" -p "$port" -sd "$store" >"$store/nats-server.log" 2>&1 &
for _ in $(seq 1 100); do
  if (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null; then exit 0; fi
  sleep 0.1
done
echo "nats-server did not start; see $store/nats-server.log" >&2
exit 1
