#!/usr/bin/env bash
# What the event outbox costs a connect flow: the full flow rate of this
# build (each connect writes its event in the same transaction and delivers
# it from the outbox) against an earlier build (BENCH_BEFORE, which sent the
# same webhook from memory), in the same run, rounds alternating so that a
# drifting machine weighs on both alike. Both deliver every
# connection.created to the fast provider's POST /hook, which counts them.
# Same layout as bench/run.sh (bench/lib.sh): the server on core 0; the flow
# driver and the provider on core 1; SQLite.
#
#   BENCH_BEFORE=/tmp/before/emailoctopus-connect bash bench/events.sh
#   BENCH_ROUNDS=3 (default) rounds of BENCH_SECONDS (default 10) per build
#   BENCH_WEBHOOK=off: no WEBHOOK_URL, so the outbox only keeps the events
#   (for polling) and neither build sends any: the cost of the write alone
#
# Prints every figure as it goes and a Markdown summary at the end;
# bench/RESULTS.md records runs of it.
set -euo pipefail
# shellcheck source=bench/lib.sh
source "$(dirname "$0")/lib.sh"
FLOW_WORKERS=16
ROUNDS=${BENCH_ROUNDS:-3}
BEFORE=${BENCH_BEFORE:?set BENCH_BEFORE to the server binary to compare with}

build bench_provider bench_flows
machine
echo "this build: $SERVER; before: $BEFORE"

start provider "$LOAD_CPU" "$BIN/examples/bench_provider" 127.0.0.1:0
PROVIDER=$ADDR
PROVIDER_PID=$PID
hooks() { curl -sS "http://$PROVIDER/stats" | sed 's/.*"hooks":\([0-9]*\).*/\1/'; }

# round NAME BINARY N: one load run of full flows against BINARY on a fresh
# database; appends its rate, CPU per flow and p50 to NAME_RATES, NAME_US
# and NAME_P50S, and checks that every flow's event reached the hook.
round() {
    local name=$1 binary=$2 n=$3 hooks0 sent webhook=()
    [ "${BENCH_WEBHOOK:-on}" = off ] ||
        webhook=("--webhook-url=http://$PROVIDER/hook" --webhook-secret=bench-webhook-secret)
    echo
    echo "== $name, round $n (core $SERVER_CPU)"
    start "$name-$n" "$SERVER_CPU" "$binary" --listen-addr=127.0.0.1:0 --client-id=bench \
        --client-secret=bench-secret "--authorize-url=http://$PROVIDER/authorize" \
        "--token-url=http://$PROVIDER/token" "--api-base-url=http://$PROVIDER" \
        "--token-encryption-key=$("$SERVER" gen-key)" --admin-token=bench-admin --open-connect=true \
        "${webhook[@]}" "--database-url=sqlite://$WORK/$name-$n.db"
    TARGET_PID=$PID
    hooks0=$(hooks)
    driver_load "$name-$n-flows" "http://$ADDR" "$FLOW_WORKERS" "$SECONDS_PER_RUN"
    # Deliveries still in flight finish within a few seconds of the load.
    # The warm-up's flows send theirs too, so there are more than DONE.
    for _ in $(seq 50); do
        sent=$(($(hooks) - hooks0))
        [ "$sent" -ge "$DONE" ] || [ ${#webhook[@]} = 0 ] && break
        sleep 0.1
    done
    echo "  webhooks received: $sent for $DONE flows counted (and the warm-up's)"
    stop "$TARGET_PID"
    eval "${name}_RATES+=(\"$RATE\")"
    eval "${name}_US+=(\"$(per_op_us "$TARGET_SHARE" "$RATE")\")"
    eval "${name}_P50S+=(\"$FP50\")"
    eval "${name}_HOOKS+=(\"$sent/$DONE\")"
}

BEFORE_RATES=() BEFORE_US=() BEFORE_P50S=() BEFORE_HOOKS=()
AFTER_RATES=() AFTER_US=() AFTER_P50S=() AFTER_HOOKS=()
for n in $(seq "$ROUNDS"); do
    round BEFORE "$BEFORE" "$n"
    round AFTER "$SERVER" "$n"
done

median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
B=$(median "${BEFORE_RATES[@]}") A=$(median "${AFTER_RATES[@]}")
echo
echo "== summary (medians of $ROUNDS rounds, ${SECONDS_PER_RUN} s each)"
cat <<TABLE
| full flow, $FLOW_WORKERS workers | before (webhooks from memory) | this build (outbox) | ratio | goal |
| --- | --- | --- | --- | --- |
| flows/s | $B (${BEFORE_RATES[*]}) | $A (${AFTER_RATES[*]}) | $(ratio "$A" "$B") | ≥ 90%: $(verdict "$A >= 0.9 * $B") |
| CPU of the server per flow, µs | $(median "${BEFORE_US[@]}") | $(median "${AFTER_US[@]}") | | |
| p50, ms | $(median "${BEFORE_P50S[@]}") | $(median "${AFTER_P50S[@]}") | | |
| webhooks received / flows counted (warm-up's sent too) | ${BEFORE_HOOKS[*]} | ${AFTER_HOOKS[*]} | | |
TABLE
