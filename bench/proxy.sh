#!/usr/bin/env bash
# The serving side's benchmark, rerunnable: the API proxy against a fast local
# upstream, beside the same request sent straight to that upstream in the
# same run; then a refresh storm; then pacing's own cost: the same-work
# ceiling's proxy path (examples/bench_same_work.rs) without pacing and with
# the server's own pacing at the bucket the server runs with here. Same layout as bench/run.sh (bench/lib.sh):
# the server on core 0; wrk, the drivers and the fast provider/upstream
# (examples/bench_provider.rs) on core 1; SQLite.
#
#   bash bench/proxy.sh                  # 10 s per load run, about 2 minutes after the build
#   BENCH_SECONDS=30 STORM_ROUNDS=5 bash bench/proxy.sh
#
# Prints every figure as it goes and a Markdown summary at the end.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
STORM_CALLERS=${STORM_CALLERS:-500}
STORM_ROUNDS=${STORM_ROUNDS:-3}
STORM_DELAY_MS=${STORM_DELAY_MS:-200}

build bench_provider bench_flows bench_storm bench_same_work
SERVER=${BENCH_SERVER:-$SERVER}
machine
echo "server under test: $SERVER"

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
PROVIDER_PID=$PID
ADMIN=bench-admin-token
API_KEY=bench-api-key
start server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 --client-id=bench \
    --client-secret=bench-secret "--authorize-url=http://$PROVIDER/authorize" \
    "--token-url=http://$PROVIDER/token" "--api-base-url=http://$PROVIDER" \
    "--token-encryption-key=$("$SERVER" gen-key)" "--admin-token=$ADMIN" $PACING \
    "--database-url=sqlite://$WORK/proxy.db"
SERVER_ADDR=$ADDR
SERVER_PID=$PID
echo "== an API-key connection 'bench' (the server checks the key at the upstream's /lists)"
curl -sS -f -X PUT -H "Authorization: Bearer $ADMIN" -H 'Content-Type: application/json' \
    -d "{\"api_key\":\"$API_KEY\"}" "http://$SERVER_ADDR/connections/bench/api-key"
echo
DIRECT_URL=http://$PROVIDER/lists
PROXY_URL=http://$SERVER_ADDR/connections/bench/api/lists

run_pair() { # LABEL: direct, then through the proxy, with wrk -c$CONNECTIONS
    echo "-- direct: GET /lists on the upstream, wrk -c$CONNECTIONS"
    TARGET_PID=
    wrk_load "direct-$1" "$DIRECT_URL" -H "Authorization: Bearer $API_KEY"
    D_RPS=$RPS D_P50=$P50 D_P99=$P99 D_ERR=$NON2XX D_LOAD=$CORE_LOAD D_OTHERS=$OTHERS
    echo "-- proxied: GET /connections/bench/api/lists, wrk -c$CONNECTIONS"
    TARGET_PID=$SERVER_PID
    wrk_load "proxy-$1" "$PROXY_URL" -H "Authorization: Bearer $ADMIN"
    X_RPS=$RPS X_P50=$P50 X_P99=$P99 X_ERR=$NON2XX X_CPU=$TARGET_CPU X_LOAD=$CORE_LOAD X_OTHERS=$OTHERS
    X_US=$(per_op_us "$TARGET_SHARE" "$RPS")
}

echo
echo "== throughput: $CONNECTIONS connections"
run_pair c50
T_D_RPS=$D_RPS T_D_P50=$D_P50 T_D_P99=$D_P99 T_D_ERR=$D_ERR T_D_LOAD=$D_LOAD T_D_OTHERS=$D_OTHERS
T_X_RPS=$X_RPS T_X_P50=$X_P50 T_X_P99=$X_P99 T_X_ERR=$X_ERR T_X_CPU=$X_CPU T_X_LOAD=$X_LOAD T_X_OTHERS=$X_OTHERS T_X_US=$X_US
echo
echo "== latency: one connection, one request at a time"
CONNECTIONS=1
run_pair c1
CONNECTIONS=50

echo
echo "== refresh storm: $STORM_CALLERS concurrent access-token calls just after expiry, $STORM_ROUNDS rounds," \
    "the provider holding each refresh answer ${STORM_DELAY_MS} ms"
TARGET_PID=$SERVER_PID
measured "$WORK/storm" "$BIN/examples/bench_storm" "http://$SERVER_ADDR" "http://$PROVIDER" "$ADMIN" \
    "$STORM_CALLERS" "$STORM_ROUNDS" "$STORM_DELAY_MS"
S_P99=$(result_field "$WORK/storm" lag_p99_ms)
S_MAX=$(result_field "$WORK/storm" lag_max_ms)
S_SLOWEST=$(result_field "$WORK/storm" slowest_ms)
S_ERR=$(result_field "$WORK/storm" errors)
S_EARLY=$(result_field "$WORK/storm" before_answer)
S_STALE=$(result_field "$WORK/storm" stale)
S_ONE=$(result_field "$WORK/storm" one_refresh_rounds)
stop "$SERVER_PID"

# The bucket of BENCH_PACING's default, as the ceiling takes it.
CEILING_BUCKET=${BENCH_CEILING_PACING:-1000000,1000000}
# ceiling_proxy NAME [VAR=VALUE...]: the ceiling (with VAR=VALUE in its
# environment) on the server's core, its proxy path at $CONNECTIONS
# connections and at one, into NAME_* variables.
ceiling_proxy() {
    local name=$1
    shift
    start "ceiling-$name" "$SERVER_CPU" env "$@" "$BIN/examples/bench_same_work" \
        "http://$PROVIDER/authorize" "http://$PROVIDER/token" "http://$PROVIDER" \
        "$WORK/ceiling-$name.db" 127.0.0.1:0
    TARGET_PID=$PID
    local url=http://$ADDR/connections/bench/api/lists
    echo "-- $name: GET /connections/bench/api/lists, wrk -c$CONNECTIONS"
    wrk_load "ceiling-$name-c50" "$url" -H "Authorization: Bearer $ADMIN"
    printf -v "${name}_RPS" %s "$RPS"
    printf -v "${name}_P50" %s "$P50"
    printf -v "${name}_P99" %s "$P99"
    printf -v "${name}_ERR" %s "$NON2XX"
    printf -v "${name}_US" %s "$(per_op_us "$TARGET_SHARE" "$RPS")"
    printf -v "${name}_LOAD" %s "$CORE_LOAD"
    echo "-- $name: the same, one connection"
    CONNECTIONS=1 wrk_load "ceiling-$name-c1" "$url" -H "Authorization: Bearer $ADMIN"
    printf -v "${name}_RPS1" %s "$RPS"
    printf -v "${name}_P50_1" %s "$P50"
    printf -v "${name}_P99_1" %s "$P99"
    printf -v "${name}_ERR1" %s "$NON2XX"
    stop "$TARGET_PID"
}
echo
echo "== pacing's own cost: the same-work ceiling's proxy path without pacing, then with the server's (bucket $CEILING_BUCKET)"
ceiling_proxy BARE
ceiling_proxy PACED "CEILING_PACING=$CEILING_BUCKET"
gap() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", a - b }'; }

echo
echo "== summary (Markdown)"
cat <<SUMMARY
| figure | through the proxy | straight to the upstream | | target | |
| --- | --- | --- | --- | --- | --- |
| GET /lists, requests/s ($CONNECTIONS connections) | $T_X_RPS | $T_D_RPS | $(ratio "$T_X_RPS" "$T_D_RPS") | ≥ 50% | $(verdict "$T_X_RPS >= 0.5 * $T_D_RPS") |
| latency p50 / p99, one connection | $X_P50 / $X_P99 ms | $D_P50 / $D_P99 ms | +$(awk -v a="$X_P50" -v b="$D_P50" 'BEGIN { printf "%.2f", a - b }') ms at p50 | added p50 < 0.3 ms | $(verdict "$X_P50 - $D_P50 < 0.3") |
| latency p50 / p99, $CONNECTIONS connections | $T_X_P50 / $T_X_P99 ms | $T_D_P50 / $T_D_P99 ms | +$(awk -v a="$T_X_P50" -v b="$T_D_P50" 'BEGIN { printf "%.2f", a - b }') ms at p50 | | |
| requests/s, one connection | $X_RPS | $D_RPS | | | |
| errors (non-2xx, socket errors), all four runs | $((T_X_ERR + X_ERR)) | $((T_D_ERR + D_ERR)) | | 0 | $(verdict "$T_X_ERR + $X_ERR + $T_D_ERR + $D_ERR == 0") |

| refresh storm: $STORM_CALLERS callers × $STORM_ROUNDS rounds, refresh held ${STORM_DELAY_MS} ms | figure | target | |
| --- | --- | --- | --- |
| after the provider's answer: p99 / max | $S_P99 / $S_MAX ms | max < 1000 ms | $(verdict "$S_MAX < 1000") |
| rounds with exactly one provider refresh and one token for all callers | $S_ONE of $STORM_ROUNDS | all | $(verdict "$S_ONE == $STORM_ROUNDS") |
| errors; answers before the provider's; callers without the refreshed token | $S_ERR; $S_EARLY; $S_STALE | 0; 0; 0 | $(verdict "$S_ERR + $S_EARLY + $S_STALE == 0") |
| slowest call from the common start (includes the ${STORM_DELAY_MS} ms hold) | $S_SLOWEST ms | | |

| pacing's own cost: the same-work ceiling's proxy path | without pacing | with the server's pacing | added by pacing |
| --- | --- | --- | --- |
| requests/s, $CONNECTIONS connections | $BARE_RPS | $PACED_RPS | $(ratio "$PACED_RPS" "$BARE_RPS") of without |
| p50 / p99, $CONNECTIONS connections | $BARE_P50 / $BARE_P99 ms | $PACED_P50 / $PACED_P99 ms | $(gap "$PACED_P50" "$BARE_P50") ms at p50 |
| p50 / p99, one connection | $BARE_P50_1 / $BARE_P99_1 ms | $PACED_P50_1 / $PACED_P99_1 ms | $(gap "$PACED_P50_1" "$BARE_P50_1") ms at p50 |
| requests/s, one connection | $BARE_RPS1 | $PACED_RPS1 | |
| CPU of the ceiling per call, $CONNECTIONS connections | $BARE_US µs | $PACED_US µs | $(gap "$PACED_US" "$BARE_US") µs |
| load core busy, $CONNECTIONS connections | $BARE_LOAD% | $PACED_LOAD% | |
| errors (non-2xx, socket errors), all four runs | $((BARE_ERR + BARE_ERR1)) | $((PACED_ERR + PACED_ERR1)) | |

| diagnostic | figure |
| --- | --- |
| server CPU per proxied request ($CONNECTIONS connections) | $T_X_US µs (server at $T_X_CPU% of its core) |
| load core busy: proxied; direct | $T_X_LOAD%; $T_D_LOAD% |
| other processes: proxied; direct (% of a core) | $T_X_OTHERS%; $T_D_OTHERS% |
SUMMARY
