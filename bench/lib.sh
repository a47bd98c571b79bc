# shellcheck shell=bash
# Shared helpers for the bench scripts. Source it from bash after `set -euo pipefail`:
#
#   . "$(dirname "$0")/lib.sh"
#   bench_init                  # temp dir, EXIT trap, cd to the repo root
#   bench_start_mosquitto       # sets MOSQ_PORT
#
# Every background process goes through bench_track, and the EXIT trap stops each one by
# its PID (TERM, then KILL after 2 s). Nothing here binds anything but 127.0.0.1.

BENCH_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(dirname "$BENCH_DIR")
MOSQUITTO=${MOSQUITTO:-/usr/sbin/mosquitto}
MOSQUITTO_PUB=${MOSQUITTO_PUB:-mosquitto_pub}
MOSQUITTO_SUB=${MOSQUITTO_SUB:-mosquitto_sub}
GNU_TIME=${GNU_TIME:-/usr/bin/time}
export LC_ALL=C

BENCH_PIDS=()
BENCH_TMP=

bench_log() { printf '%s\n' "$*" >&2; }
bench_die() {
    printf '%s: error: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

# Microseconds since the epoch (bash 5's EPOCHREALTIME without the dot).
bench_now_us() {
    local t=$EPOCHREALTIME
    echo "${t/[.,]/}"
}

bench_init() {
    BENCH_TMP=$(mktemp -d "${TMPDIR:-/tmp}/smq-bench.XXXXXX")
    trap bench_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    cd "$REPO_ROOT" || exit 1
}

bench_track() { BENCH_PIDS+=("$1"); }

bench_untrack() {
    local pid keep=()
    for pid in "${BENCH_PIDS[@]}"; do
        [[ $pid == "$1" ]] || keep+=("$pid")
    done
    BENCH_PIDS=("${keep[@]}")
}

# Stop one tracked process by PID: TERM, wait up to 2 s, then KILL. Reaps it.
bench_stop() {
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    bench_untrack "$pid"
}

bench_cleanup() {
    local pid
    for pid in "${BENCH_PIDS[@]}"; do
        bench_stop "$pid"
    done
    if [[ -n $BENCH_TMP ]]; then
        rm -rf "$BENCH_TMP"
    fi
}

# bench_wait_for FILE ERE TIMEOUT_S PID: poll FILE until a line matches ERE. Fails when PID
# exits first or TIMEOUT_S passes. This is a readiness check, not a fixed sleep.
bench_wait_for() {
    local file=$1 re=$2 timeout_us=$(($3 * 1000000)) pid=$4 start
    start=$(bench_now_us)
    while :; do
        grep -Eq -- "$re" "$file" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || return 1
        (($(bench_now_us) - start < timeout_us)) || return 1
        sleep 0.02
    done
}

# bench_random_port: a high port, likely free; whoever binds it retries on a clash.
bench_random_port() { echo $((20000 + (RANDOM * 32768 + RANDOM) % 40000)); }

# Start the mosquitto broker on 127.0.0.1 and a free port; sets MOSQ_PORT, MOSQ_PID, MOSQ_LOG.
# Mosquitto cannot bind port 0 (`listener 0` means a Unix socket), so try random high ports
# and retry on "Address already in use". Extra config lines may be passed as arguments.
# `max_queued_messages 0` lifts the per-client queue limit (default 1000), so a slow
# subscriber never makes the broker drop messages during a bench.
# shellcheck disable=SC2120  # the extra config lines are optional
bench_start_mosquitto() {
    local conf=$BENCH_TMP/mosquitto.conf log=$BENCH_TMP/mosquitto.log try port pid line
    [[ -x $MOSQUITTO ]] || bench_die "$MOSQUITTO not found (apt-get install -y mosquitto)"
    for ((try = 1; try <= 20; try++)); do
        port=$(bench_random_port)
        {
            echo "listener $port 127.0.0.1"
            echo "allow_anonymous true"
            echo "persistence false"
            echo "max_queued_messages 0"
            echo "log_dest stderr"
            echo "log_type error"
            echo "log_type warning"
            echo "log_type notice"
            echo "log_type information"
            echo "log_type subscribe"
            for line in "$@"; do echo "$line"; done
        } >"$conf"
        # Emptied here, not by the child's redirect: that runs after we start reading, and a
        # previous broker's "running" line would pass for this one's.
        : >"$log"
        "$MOSQUITTO" -c "$conf" >>"$log" 2>&1 &
        pid=$!
        bench_track "$pid"
        if bench_wait_for "$log" ' running$' 10 "$pid"; then
            # shellcheck disable=SC2034  # read by the sourcing script
            MOSQ_PORT=$port MOSQ_PID=$pid MOSQ_LOG=$log
            return 0
        fi
        bench_stop "$pid"
        grep -q 'Address already in use' "$log" || bench_die "mosquitto did not start: $(cat "$log")"
    done
    bench_die "no free port for mosquitto after 20 tries"
}

# bench_median: median of the numbers on stdin (one per line); empty input prints nothing.
bench_median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

bench_require_gnu_time() {
    "$GNU_TIME" -v true >/dev/null 2>&1 ||
        bench_die "GNU time not found at $GNU_TIME (apt-get install -y time)"
}
