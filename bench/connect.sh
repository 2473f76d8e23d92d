#!/usr/bin/env bash
# Connecting from inside an app, rerunnable: the size of /connect.js (raw and
# gzip -9), GET /connect-sessions/status requests/s beside /healthz's in the
# same run, and the popup's callback-to-settle time in headless Chromium
# (median of POPUP_RUNS, default 20), with the sandbox's consent page plain
# and with Cross-Origin-Opener-Policy: same-origin. Same layout as
# bench/run.sh (bench/lib.sh): the server (sandbox, SQLite) on core 0; wrk,
# the example app and Chromium on core 1.
#
#   bash bench/connect.sh                 # 10 s per load run, about 2 minutes after the build
#   BENCH_SECONDS=30 POPUP_RUNS=50 bash bench/connect.sh
#
# Needs chromium and chromedriver (Debian: chromium chromium-driver).
# Prints every figure as it goes and a Markdown summary at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
RUNS=${POPUP_RUNS:-20}
ADMIN=bench-admin-token

build bench_popup
machine
echo "$(chromium --version 2>/dev/null | head -1); $(chromedriver --version | cut -d' ' -f1-2)"

APP_PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
APP_ORIGIN=http://localhost:$APP_PORT
# No separate provider process: the sandbox is inside the server. This
# shell stands in, so that the CPU accounting has a process to read.
PROVIDER_PID=$$
start_sandbox() { # EXTRA_FLAGS...
    start server "$SERVER_CPU" "$SERVER" --sandbox --listen-addr=127.0.0.1:0 "--admin-token=$ADMIN" \
        "--return-to-origins=$APP_ORIGIN" "$@"
    SERVER_ADDR=$ADDR
    SERVER_PID=$PID
}
start_sandbox

echo
echo "== /connect.js"
curl -sS -f -o "$WORK/connect.js" "http://$SERVER_ADDR/connect.js"
JS_RAW=$(wc -c <"$WORK/connect.js")
JS_GZIP=$(gzip -9 -c "$WORK/connect.js" | wc -c)
echo "$JS_RAW bytes, $JS_GZIP bytes gzip -9"

echo
echo "== GET /connect-sessions/status (a pending popup session, CORS for its origin) beside GET /healthz, wrk -c$CONNECTIONS"
TOKEN=$(curl -sS -f -X POST -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"connection_id\":\"bench\",\"mode\":\"popup\",\"origin\":\"$APP_ORIGIN\"}" \
    "http://$SERVER_ADDR/connect-sessions" | sed -n 's/.*"token":"\([^"]*\)".*/\1/p')
TARGET_PID=$SERVER_PID
wrk_load healthz "http://$SERVER_ADDR/healthz"
H_RPS=$RPS H_P50=$P50 H_P99=$P99 H_ERR=$NON2XX H_CPU=$TARGET_CPU H_LOAD=$CORE_LOAD H_OTHERS=$OTHERS
H_US=$(per_op_us "$TARGET_SHARE" "$RPS")
wrk_load status "http://$SERVER_ADDR/connect-sessions/status?session=$TOKEN" -H "Origin: $APP_ORIGIN"
S_RPS=$RPS S_P50=$P50 S_P99=$P99 S_ERR=$NON2XX S_CPU=$TARGET_CPU S_LOAD=$CORE_LOAD S_OTHERS=$OTHERS
S_US=$(per_op_us "$TARGET_SHARE" "$RPS")

echo
echo "== popup connect in headless Chromium, $RUNS runs: Approve → settled, and the popup's message → settled"
# Once, not retried when disturbed: Chromium's processes outlive their
# parent, so their CPU counts as "other processes" here (see RESULTS.md).
measured_once "$WORK/popup" "$BIN/examples/bench_popup" "http://$SERVER_ADDR" "$ADMIN" "$APP_PORT" "$RUNS"
P_APPROVE=$(result_field "$WORK/popup" approve_median_ms)
P_MESSAGE=$(result_field "$WORK/popup" message_median_ms)
P_MESSAGES=$(result_field "$WORK/popup" messages)
P_OTHERS=$OTHERS
stop "$SERVER_PID"

echo
echo "== the same with a consent page that sends Cross-Origin-Opener-Policy: same-origin"
start_sandbox --sandbox-provider-coop
TARGET_PID=$SERVER_PID
measured_once "$WORK/popup-coop" "$BIN/examples/bench_popup" "http://$SERVER_ADDR" "$ADMIN" "$APP_PORT" "$RUNS" coop
C_APPROVE=$(result_field "$WORK/popup-coop" approve_median_ms)
C_MESSAGES=$(result_field "$WORK/popup-coop" messages)
C_OTHERS=$OTHERS
stop "$SERVER_PID"

echo
echo "== summary (Markdown)"
cat <<SUMMARY
| figure | value |
| --- | --- |
| /connect.js size | $JS_RAW bytes; $JS_GZIP bytes gzip -9 |
| GET /connect-sessions/status, requests/s ($CONNECTIONS connections) | $S_RPS (p50 $S_P50 ms, p99 $S_P99 ms; $S_US µs of server CPU each) |
| GET /healthz, requests/s, same run | $H_RPS (p50 $H_P50 ms, p99 $H_P99 ms; $H_US µs of server CPU each) |
| status beside healthz | $(ratio "$S_RPS" "$H_RPS") |
| popup: the popup's message → settled, median of $RUNS | $P_MESSAGE ms ($P_MESSAGES messages) |
| popup: Approve click → settled, median of $RUNS | $P_APPROVE ms |
| popup behind COOP (no message): Approve click → settled, median of $RUNS | $C_APPROVE ms ($C_MESSAGES messages) |
| errors (non-2xx, socket errors): status; healthz | $S_ERR; $H_ERR |

| diagnostic | figure |
| --- | --- |
| server CPU: status; healthz | $S_CPU%; $H_CPU% of its core |
| load core busy: status; healthz | $S_LOAD%; $H_LOAD% |
| other processes (% of a core): status; healthz; popup; popup behind COOP | $S_OTHERS%; $H_OTHERS%; $P_OTHERS%; $C_OTHERS% |
SUMMARY
