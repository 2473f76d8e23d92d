# Shared by bench/run.sh, bench/proxy.sh and bench/instances.sh (sourced, not
# run): the layout (the process under test on core 0, load and the fast
# provider on core 1), starting and stopping processes, the idle-machine wait,
# the CPU accounting around each load run, and the figures' parsing.
#
# Environment: BENCH_SECONDS (default 10) per load run, BENCH_QUIET_WAIT
# (default 900) seconds at most to wait for an idle machine.
# shellcheck shell=bash disable=SC2034 # the functions set figures for the scripts

cd "$(dirname "${BASH_SOURCE[0]}")/.." || exit 1
SECONDS_PER_RUN=${BENCH_SECONDS:-10}
QUIET_WAIT=${BENCH_QUIET_WAIT:-900}
CONNECTIONS=50
SERVER_CPU=0
LOAD_CPU=1
if [ "$(nproc)" -lt 2 ]; then
    echo "warning: one core only; server and load share it, figures are not comparable" >&2
    LOAD_CPU=0
fi

if ! command -v wrk >/dev/null; then
    # Another apt may be running; wait for its lock rather than fail.
    apt-get update -qq && apt-get -o DPkg::Lock::Timeout=300 install -y -qq wrk
fi

# Where cargo puts the release build: CARGO_TARGET_DIR when it is set.
BIN=${CARGO_TARGET_DIR:-target}/release
SERVER=$BIN/emailoctopus-connect
# The proxy's pacing stays on, with a bucket far above what a load run
# sends through its one connection: the figures are pacing's cost under the
# limit. BENCH_PACING= (empty) for a build from before pacing had settings.
PACING=${BENCH_PACING---proxy-burst=1000000 --proxy-rate-per-sec=1000000}
# build EXAMPLE...: the server and the named examples, release profile.
build() {
    local args=() example
    for example in "$@"; do args+=(--example "$example"); done
    cargo build --release --quiet --bin emailoctopus-connect "${args[@]}"
}

WORK=$(mktemp -d /tmp/eoc-bench.XXXXXX)
PIDS=()
CLEANUPS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for step in "${CLEANUPS[@]}"; do eval "$step" || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

# start NAME CPU CMD...: runs CMD on core CPU in the background, waits for its
# "listening on http://ADDR" line and sets ADDR and PID. taskset execs the
# command, so PID is the command's own (for /proc and for kill).
start() {
    local name=$1 cpu=$2
    shift 2
    # Made before the command starts, so the wait below can read it at once.
    : >"$WORK/$name.out"
    taskset -c "$cpu" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
    PID=$!
    PIDS+=("$PID")
    for _ in $(seq 500); do
        ADDR=$(sed -n 's#^listening on http://##p' "$WORK/$name.out")
        [ -n "$ADDR" ] && return 0
        kill -0 "$PID" 2>/dev/null || break
        sleep 0.01
    done
    echo "$name did not start:" >&2
    cat "$WORK/$name.err" >&2
    exit 1
}

stop() {
    kill "$1"
    wait "$1" 2>/dev/null || true
}

rss_mib() { awk '/^VmRSS:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }

# CPU time, in clock ticks, from /proc: a core's busy and total time, the
# time all tasks ran (user, nice, system: what a process is charged for), and
# processes' own (fields 14 and 15, summed; our commands' names hold no spaces).
core_busy() { awk -v cpu="cpu$1" '$1 == cpu { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
core_total() { awk -v cpu="cpu$1" '$1 == cpu { s = 0; for (i = 2; i <= NF; i++) s += $i; print s }' /proc/stat; }
tasks_time() { awk '$1 == "cpu" { print $2 + $3 + $4 }' /proc/stat; }
process_time() {
    local pid sum=0
    for pid in "$@"; do
        # An empty PID (no such process in this bench) would read /proc/stat.
        [ -n "$pid" ] && [ -r "/proc/$pid/stat" ] && sum=$((sum + $(awk '{ print $14 + $15 }' "/proc/$pid/stat")))
    done
    echo "$sum"
}
# Every kernel thread (the children of kthreadd): journaling and writeback
# that a database's writes cause show up there, not in the process. A
# process that ends between the glob and the read is skipped, not fatal.
kernel_time() { { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk '$4 == 2 { s += $14 + $15 } END { print s + 0 }'; }
# Every PostgreSQL process (all databases: the server is shared).
postgres_time() {
    # shellcheck disable=SC2046 # one PID per word
    process_time $(pgrep -x postgres)
}

# Waits until the whole machine has been under 10% busy for a second.
wait_quiet() {
    local waited=0 b0 t0 busy
    while :; do
        b0=$(($(core_busy 0) + $(core_busy "$LOAD_CPU"))) t0=$(($(core_total 0) + $(core_total "$LOAD_CPU")))
        sleep 1
        busy=$((100 * ($(core_busy 0) + $(core_busy "$LOAD_CPU") - b0) / ($(core_total 0) + $(core_total "$LOAD_CPU") - t0 + 1)))
        [ "$busy" -lt 10 ] && return 0
        if [ "$waited" -ge "$QUIET_WAIT" ]; then
            echo "  warning: the machine is still ${busy}% busy after ${QUIET_WAIT}s; measuring anyway"
            return 0
        fi
        [ "$waited" -eq 0 ] && echo "  (waiting for a quiet machine: ${busy}% busy now)"
        waited=$((waited + 1))
    done
}

# measured FILE CMD...: once the machine is quiet, runs CMD on the load core
# with its output in FILE (and shown), then tells how busy each core was, how
# much of a core the processes under test ($TARGET_PID, one or more PIDs)
# used, how much PostgreSQL used, and how much CPU went to anything but the
# benchmark (kernel threads apart): so that a figure limited by the load core
# or by a neighbour can be told apart from one limited by the server.
# Not in a pipeline: it sets CORE_SERVER, CORE_LOAD, TARGET_CPU (percent),
# TARGET_SHARE (the same as a fraction), PG_CPU, KERNEL_CPU and OTHERS.
# A run during which other processes took 10% of a core or more is run
# again, up to BENCH_RETRIES (default 2) times; the last one stands, marked.
measured() {
    local attempt
    for attempt in $(seq 0 "${BENCH_RETRIES:-2}"); do
        measured_once "$@"
        [ "$OTHERS" -lt 10 ] && return 0
        echo "  (disturbed: other processes took ${OTHERS}% of a core; attempt $((attempt + 1)))"
    done
}

measured_once() {
    local file=$1 b0 t0 b1 t1 target0 provider0 pg0 kernel0 tasks0 wall ours driver pg kernel
    shift
    wait_quiet
    b0=$(core_busy "$SERVER_CPU") t0=$(core_total "$SERVER_CPU")
    b1=$(core_busy "$LOAD_CPU") t1=$(core_total "$LOAD_CPU")
    # shellcheck disable=SC2086 # one PID per word
    target0=$(process_time $TARGET_PID) provider0=$(process_time "$PROVIDER_PID")
    pg0=$(postgres_time) kernel0=$(kernel_time) tasks0=$(tasks_time)
    # A small shell runs the driver and, once it has reaped it, reads the
    # driver's CPU time from its own children's account (fields 16 and 17).
    # shellcheck disable=SC2016 # the inner shell expands them
    taskset -c "$LOAD_CPU" sh -c '"$@"; status=$?
        awk "{ print \$16 + \$17 }" "/proc/$$/stat" >"$0"; exit $status' "$WORK/driver-ticks" "$@" >"$file"
    cat "$file"
    driver=$(cat "$WORK/driver-ticks")
    wall=$(($(core_total "$SERVER_CPU") - t0 + 1))
    CORE_SERVER=$((100 * ($(core_busy "$SERVER_CPU") - b0) / wall))
    CORE_LOAD=$((100 * ($(core_busy "$LOAD_CPU") - b1) / ($(core_total "$LOAD_CPU") - t1 + 1)))
    # shellcheck disable=SC2086
    local target=$(($(process_time $TARGET_PID) - target0))
    TARGET_CPU=$((100 * target / wall))
    TARGET_SHARE=$(awk -v t="$target" -v w="$wall" 'BEGIN { print t / w }')
    pg=$(($(postgres_time) - pg0))
    ((pg >= 0)) || pg=0
    PG_CPU=$((100 * pg / wall))
    kernel=$(($(kernel_time) - kernel0))
    KERNEL_CPU=$((100 * kernel / wall))
    ours=$((target + $(process_time "$PROVIDER_PID") - provider0 + driver + pg + kernel))
    OTHERS=$((100 * ($(tasks_time) - tasks0 - ours) / wall))
    ((OTHERS >= 0)) || OTHERS=0
    echo "  (core $SERVER_CPU: ${CORE_SERVER}% busy, the process(es) under test ${TARGET_CPU}% of a core;" \
        "core $LOAD_CPU: ${CORE_LOAD}% busy; PostgreSQL ${PG_CPU}% of a core;" \
        "kernel threads ${KERNEL_CPU}% of a core; other processes: ${OTHERS}% of a core)"
}

# wrk's latency figures in ms, whatever unit it chose.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) n /= 1000; else if (v ~ /ms$/) n += 0; else if (v ~ /s$/) n *= 1000
        printf "%.2f", n
    }'
}

# wrk_load NAME URL [WRK_ARGS...]: 2 s of warm-up, then wrk -t1 -c$CONNECTIONS
# (unless WRK_ARGS say otherwise) for $SECONDS_PER_RUN; sets RPS, P50, P99,
# REQUESTS and NON2XX (answers that were not 2xx or 3xx, and socket errors).
wrk_load() {
    local name=$1 url=$2
    shift 2
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNECTIONS" -d2s "$@" "$url" >/dev/null # warm up
    measured "$WORK/$name.wrk" wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_PER_RUN}s" --latency "$@" "$url"
    RPS=$(awk '/^Requests\/sec:/ { printf "%.0f", $2 }' "$WORK/$name.wrk")
    P50=$(to_ms "$(awk '$1 == "50%" { print $2 }' "$WORK/$name.wrk")")
    P99=$(to_ms "$(awk '$1 == "99%" { print $2 }' "$WORK/$name.wrk")")
    REQUESTS=$(awk '/requests in/ { print $1 }' "$WORK/$name.wrk")
    NON2XX=$(awk '/Non-2xx or 3xx/ { n += $NF } /Socket errors/ { gsub(",", ""); n += $4 + $6 + $8 + $10 } END { print n + 0 }' "$WORK/$name.wrk")
    [ "$NON2XX" = 0 ] || echo "  warning: $NON2XX answers were not 2xx/3xx or failed"
}

# driver_load NAME ARGS...: bench_flows ARGS (see examples/bench_flows.rs);
# sets RATE, FP50, FP99, FERR, DONE, MADE and LOST from its RESULT line.
driver_load() {
    local name=$1
    shift
    measured "$WORK/$name.flows" "$BIN/examples/bench_flows" "$@"
    RATE=$(result_field "$WORK/$name.flows" per_sec)
    FP50=$(result_field "$WORK/$name.flows" p50_ms)
    FP99=$(result_field "$WORK/$name.flows" p99_ms)
    FERR=$(result_field "$WORK/$name.flows" errors)
    DONE=$(result_field "$WORK/$name.flows" "done")
    MADE=$(result_field "$WORK/$name.flows" made)
    LOST=$(result_field "$WORK/$name.flows" lost)
}

# per_op_us SHARE RATE: CPU time of the process under test per request or
# flow, in µs. Unlike the rate it does not depend on whether the load core
# kept up, so it compares servers even when it did not.
per_op_us() { awk -v s="$1" -v r="$2" 'BEGIN { printf "%.1f", 1e6 * s / r }'; }

# The RESULT field $2 of the output file $1.
result_field() { sed -n "s/^RESULT.* $2=\([^ ]*\).*/\1/p" "$1"; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.0f%%", 100 * a / b }'; }
verdict() { if awk "BEGIN { exit !($1) }"; then echo met; else echo missed; fi; }

machine() {
    echo "== machine"
    echo "cores: $(nproc); cpu: $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1); kernel: $(uname -r)"
    echo "$(rustc --version); $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
    echo "commit: $(git describe --always --dirty 2>/dev/null || echo unknown); date: $(date -u +%Y-%m-%dT%H:%MZ)"
    if [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock migrations 2>/dev/null)" ]; then
        echo "uncommitted changes built in:"
        git status --short -- src Cargo.toml Cargo.lock migrations
    fi
    echo "somaxconn: $(cat /proc/sys/net/core/somaxconn); tcp_max_syn_backlog: $(cat /proc/sys/net/ipv4/tcp_max_syn_backlog)"
}
