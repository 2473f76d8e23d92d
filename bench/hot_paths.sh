#!/usr/bin/env bash
# The hot paths against the same-work ceiling, rerunnable: GET /auth, the full
# connect flow and a proxied API call, each on emailoctopus-connect and on
# examples/bench_same_work.rs (a bare axum server doing the same necessary
# work as cheaply as we know how) in the same run, with the ratio. Same layout
# as bench/run.sh (bench/lib.sh): the process under test on core 0; wrk, the
# flow driver and the fast provider/upstream (examples/bench_provider.rs) on
# core 1; SQLite.
#
#   bash bench/hot_paths.sh                        # 10 s per load run, about 2 minutes after the build
#   BENCH_SERVER=/tmp/older/emailoctopus-connect bash bench/hot_paths.sh
#                                                  # another build of the server, e.g. the one before a change
#
# Prints every figure as it goes and a Markdown summary at the end;
# bench/RESULTS.md records runs of it.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
FLOW_WORKERS=16
PROXY_CONNECTIONS=16

build bench_provider bench_same_work bench_flows
SERVER=${BENCH_SERVER:-$SERVER}
machine
echo "server under test: $SERVER"

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
PROVIDER_PID=$PID
ADMIN=bench-admin-token
API_KEY=bench-api-key

# measure NAME URL: /auth at 50 connections, flows with 16 workers, the proxy
# at 16 connections, each into NAME_* variables.
measure() {
    local name=$1 url=$2
    echo "-- GET /auth, wrk -c$CONNECTIONS"
    wrk_load "$name-auth" "$url/auth"
    printf -v "${name}_AUTH" %s "$RPS"
    printf -v "${name}_AUTH_P50" %s "$P50"
    printf -v "${name}_AUTH_US" %s "$(per_op_us "$TARGET_SHARE" "$RPS")"
    echo "-- full flows, $FLOW_WORKERS workers"
    driver_load "$name-flows" "$url" "$FLOW_WORKERS" "$SECONDS_PER_RUN"
    printf -v "${name}_FLOWS" %s "$RATE"
    printf -v "${name}_FLOWS_P50" %s "$FP50"
    printf -v "${name}_FLOWS_ERR" %s "$FERR"
    printf -v "${name}_FLOWS_US" %s "$(per_op_us "$TARGET_SHARE" "$RATE")"
    echo "-- GET /connections/bench/api/lists, wrk -c$PROXY_CONNECTIONS"
    CONNECTIONS=$PROXY_CONNECTIONS wrk_load "$name-proxy" "$url/connections/bench/api/lists" \
        -H "Authorization: Bearer $ADMIN"
    printf -v "${name}_PROXY" %s "$RPS"
    printf -v "${name}_PROXY_P50" %s "$P50"
    printf -v "${name}_PROXY_ERR" %s "$NON2XX"
    printf -v "${name}_PROXY_US" %s "$(per_op_us "$TARGET_SHARE" "$RPS")"
}

echo
echo "== emailoctopus-connect (core $SERVER_CPU)"
start server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 --client-id=bench \
    --client-secret=bench-secret "--authorize-url=http://$PROVIDER/authorize" \
    "--token-url=http://$PROVIDER/token" "--api-base-url=http://$PROVIDER" \
    "--token-encryption-key=$("$SERVER" gen-key)" "--admin-token=$ADMIN" --open-connect=true $PACING \
    "--database-url=sqlite://$WORK/server.db"
TARGET_PID=$PID
SERVER_ADDR=$ADDR
curl -sS -f -o /dev/null -X PUT -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"api_key\":\"$API_KEY\"}" "http://$SERVER_ADDR/connections/bench/api-key"
measure SERVER "http://$SERVER_ADDR"
stop "$TARGET_PID"

echo
echo "== same-work ceiling (core $SERVER_CPU)"
start ceiling "$SERVER_CPU" "$BIN/examples/bench_same_work" "http://$PROVIDER/authorize" \
    "http://$PROVIDER/token" "http://$PROVIDER" "$WORK/ceiling.db" 127.0.0.1:0
TARGET_PID=$PID
measure CEILING "http://$ADDR"
stop "$TARGET_PID"

p50_gap() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f ms", a - b }'; }
echo
echo "== summary (Markdown)"
cat <<EOF
| path | emailoctopus-connect | same-work ceiling | ratio | target | |
| --- | --- | --- | --- | --- | --- |
| GET /auth, $CONNECTIONS connections, req/s | $SERVER_AUTH | $CEILING_AUTH | $(ratio "$SERVER_AUTH" "$CEILING_AUTH") | ≥ 80% | $(verdict "$SERVER_AUTH >= 0.8 * $CEILING_AUTH") |
| full flow, $FLOW_WORKERS workers, flows/s | $SERVER_FLOWS | $CEILING_FLOWS | $(ratio "$SERVER_FLOWS" "$CEILING_FLOWS") | ≥ 70% | $(verdict "$SERVER_FLOWS >= 0.7 * $CEILING_FLOWS") |
| proxy GET .../api/lists, $PROXY_CONNECTIONS connections, req/s | $SERVER_PROXY | $CEILING_PROXY | $(ratio "$SERVER_PROXY" "$CEILING_PROXY") | ≥ 80% | $(verdict "$SERVER_PROXY >= 0.8 * $CEILING_PROXY") |
| proxy p50 | $SERVER_PROXY_P50 ms | $CEILING_PROXY_P50 ms | $(p50_gap "$SERVER_PROXY_P50" "$CEILING_PROXY_P50") | ≤ +0.10 ms | $(verdict "$SERVER_PROXY_P50 - $CEILING_PROXY_P50 <= 0.1") |

| diagnostic | emailoctopus-connect | same-work ceiling |
| --- | --- | --- |
| CPU of the process under test per /auth; flow; proxied call | $SERVER_AUTH_US; $SERVER_FLOWS_US; $SERVER_PROXY_US µs | $CEILING_AUTH_US; $CEILING_FLOWS_US; $CEILING_PROXY_US µs |
| p50: /auth; flow | $SERVER_AUTH_P50; $SERVER_FLOWS_P50 ms | $CEILING_AUTH_P50; $CEILING_FLOWS_P50 ms |
| errors: flows; proxied calls | $SERVER_FLOWS_ERR; $SERVER_PROXY_ERR | $CEILING_FLOWS_ERR; $CEILING_PROXY_ERR |
EOF
