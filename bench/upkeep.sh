#!/usr/bin/env bash
# shellcheck disable=SC2154 # the figures are set by name, with printf -v
# The background upkeep's benchmark, rerunnable: with 100,000 stored OAuth
# connections (seeded by examples/bench_upkeep.rs), on SQLite and on
# PostgreSQL:
#
# 1. the time of one upkeep pass when nothing is due: finding due work (and
#    the sweep), UPKEEP_PASSES passes one after another (default 200);
# 2. the server's CPU while idle, with the loop on (a pass every 5 s, the
#    default) and off, over UPKEEP_IDLE_SECONDS (default 60) each;
# 3. the p99 of access-token calls (wrk, 50 connections, rotating over the
#    99,000 connections that are not due) while the loop refreshes a batch of
#    1,000 due connections against a provider that answers refreshes in
#    100 ms, beside the same calls with the loop off.
#
#   bash bench/upkeep.sh        # about 10 minutes after the build
#
# Layout (bench/lib.sh): the server on core 0, wrk and the provider on core 1,
# PostgreSQL (a shared system service at 127.0.0.1:5432) wherever the kernel
# puts it. It creates the database eoc_bench_upkeep and drops it at the end.
set -euo pipefail
export BENCH_QUIET_WAIT=${BENCH_QUIET_WAIT:-30}
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
SEEDED=${UPKEEP_SEEDED:-100000}
DUE=1000
PASSES=${UPKEEP_PASSES:-200}
IDLE_SECONDS=${UPKEEP_IDLE_SECONDS:-60}
CALL_SECONDS=${UPKEEP_CALL_SECONDS:-15}
PG_HOST=127.0.0.1
PG_DB=eoc_bench_upkeep
ADMIN=bench-admin-token

build bench_provider bench_upkeep
KEY=$("$SERVER" gen-key)
machine
echo "postgres: $(psql -h "$PG_HOST" -U postgres -d postgres -Atc 'SHOW server_version')"

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
refreshes() { curl -s "http://$PROVIDER/stats" | sed 's/.*"refreshes":\([0-9]*\).*/\1/'; }
curl -s "http://$PROVIDER/control?refresh_delay_ms=100" >/dev/null

# The calls: access tokens of connections that are not due, in turn.
cat >"$WORK/calls.lua" <<LUA
counter = 0
request = function()
  counter = counter + 1
  local n = $DUE + (counter * 7919) % ($SEEDED - $DUE)
  return wrk.format("GET", string.format("/connections/seed-%06d/access-token", n),
    { ["Authorization"] = "Bearer $ADMIN" })
end
LUA

# serve URL FLAGS...: the server on core 0 on database URL.
serve() {
    local url=$1
    shift
    start server "$SERVER_CPU" "$SERVER" --listen-addr=127.0.0.1:0 "--database-url=$url" \
        "--token-encryption-key=$KEY" --client-id=bench --client-secret=bench-secret \
        "--authorize-url=http://$PROVIDER/authorize" "--token-url=http://$PROVIDER/token" \
        "--api-base-url=http://$PROVIDER" "--admin-token=$ADMIN" "$@"
}

# idle_cpu LABEL: the server's CPU (percent of a core) over IDLE_SECONDS.
idle_cpu() {
    local t0
    sleep 2
    t0=$(process_time "$PID")
    sleep "$IDLE_SECONDS"
    printf -v "$1" %s "$(awk -v t="$(($(process_time "$PID") - t0))" -v hz="$(getconf CLK_TCK)" -v s="$IDLE_SECONDS" \
        'BEGIN { printf "%.2f", 100 * t / hz / s }')"
}

# calls LABEL: wrk's access-token calls for CALL_SECONDS; sets LABEL_P99,
# LABEL_P50, LABEL_RPS, LABEL_REFRESHED (refreshes the provider answered
# meanwhile) and LABEL_CPU (the server's CPU, percent of a core).
calls() {
    local label=$1 r0 t0 file="$WORK/$1.wrk"
    r0=$(refreshes)
    t0=$(process_time "$PID")
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d"${CALL_SECONDS}s" --latency \
        -s "$WORK/calls.lua" "http://$ADDR" >"$file"
    printf -v "${label}_P50" %s "$(to_ms "$(awk '$1 == "50%" { print $2 }' "$file")")"
    printf -v "${label}_P99" %s "$(to_ms "$(awk '$1 == "99%" { print $2 }' "$file")")"
    printf -v "${label}_RPS" %s "$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$file")"
    printf -v "${label}_REFRESHED" %s "$(($(refreshes) - r0))"
    printf -v "${label}_CPU" %s "$(awk -v t="$(($(process_time "$PID") - t0))" -v hz="$(getconf CLK_TCK)" -v s="$CALL_SECONDS" \
        'BEGIN { printf "%.0f", 100 * t / hz / s }')"
    grep -q "Non-2xx" "$file" && echo "  warning: $(grep Non-2xx "$file")"
    return 0
}

for backend in sqlite postgres; do
    echo "== $backend"
    if [ "$backend" = sqlite ]; then
        URL="sqlite://$WORK/upkeep.db"
    else
        dropdb -h "$PG_HOST" -U postgres --if-exists "$PG_DB"
        createdb -h "$PG_HOST" -U postgres "$PG_DB"
        CLEANUPS+=("dropdb -h $PG_HOST -U postgres --if-exists $PG_DB")
        URL="postgres://postgres@$PG_HOST:5432/$PG_DB"
    fi
    "$BIN/examples/bench_upkeep" seed "$URL" "$KEY" "$SEEDED" | tee "$WORK/seed"
    printf -v "${backend}_SEED_S" %s "$(result_field "$WORK/seed" seconds)"

    echo "-- $PASSES upkeep passes with nothing due"
    taskset -c "$SERVER_CPU" "$BIN/examples/bench_upkeep" passes "$URL" "$KEY" "http://$PROVIDER" "$PASSES" | tee "$WORK/passes"
    printf -v "${backend}_PASS_P50" %s "$(result_field "$WORK/passes" p50_ms)"
    printf -v "${backend}_PASS_P99" %s "$(result_field "$WORK/passes" p99_ms)"

    echo "-- idle for ${IDLE_SECONDS}s, loop on, then off"
    serve "$URL"
    idle_cpu "${backend}_IDLE_ON"
    stop "$PID"
    serve "$URL" --maintenance=false
    idle_cpu "${backend}_IDLE_OFF"
    stop "$PID"

    echo "-- access-token calls for ${CALL_SECONDS}s while the loop refreshes $DUE due connections (provider: 100 ms)"
    "$BIN/examples/bench_upkeep" due "$URL" "$DUE"
    serve "$URL" --maintenance-interval-secs=1
    until [ "$(refreshes)" -gt "$(( ${REFRESHED_SO_FAR:-0} ))" ]; do sleep 0.1; done
    calls "${backend}_ON"
    stop "$PID"
    REFRESHED_SO_FAR=$(refreshes)
    echo "-- the same calls, loop off"
    serve "$URL" --maintenance=false
    calls "${backend}_OFF"
    stop "$PID"
done

echo
echo "== figures"
printf '%-9s %9s %10s %10s %10s %10s %12s %12s %10s %10s\n' backend seed_s pass_p50 pass_p99 idle_on% idle_off% p99_loop_ms p99_off_ms refreshed cpu_on%
for backend in sqlite postgres; do
    v() { local n="${backend}_$1"; echo "${!n}"; }
    printf '%-9s %9s %10s %10s %10s %10s %12s %12s %10s %10s\n' "$backend" "$(v SEED_S)" "$(v PASS_P50)" "$(v PASS_P99)" \
        "$(v IDLE_ON)" "$(v IDLE_OFF)" "$(v ON_P99)" "$(v OFF_P99)" "$(v ON_REFRESHED)" "$(v ON_CPU)"
    echo "  $backend: calls/s with the loop $(v ON_RPS), without $(v OFF_RPS); p50 $(v ON_P50) vs $(v OFF_P50) ms; server CPU during calls $(v ON_CPU)% vs $(v OFF_CPU)%"
done
