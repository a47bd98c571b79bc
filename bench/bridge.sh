#!/usr/bin/env bash
# bridge.sh: an edge broker bridged into a remote one, smq serve-broker vs Mosquitto as the
# edge, with the same bridge section, in the same run. See bench/README.md.
#
#   N=100000 REPS=3 SMQ=target/release/smq bench/bridge.sh
#   REMOTE_KIND=rabbitmq bench/bridge.sh     # into RabbitMQ 3.10's MQTT plugin
#
# One remote for the whole run: Mosquitto (REMOTE_KIND=mosquitto, the default), or a RabbitMQ
# node with the MQTT plugin (REMOTE_KIND=rabbitmq: one node, started here with its own epmd,
# ports, HOME and MNESIA_BASE on 127.0.0.1, stopped by its process group; about 15 s). Per QoS and
# repetition, each edge in turn (the order rotated every repetition), on a fresh edge broker:
# `smq sub -q QOS -C N` subscribes at the remote, `smq pub -l -q QOS` publishes N 100-byte
# lines at the edge, and the time from the publisher's start to the subscriber's last message
# gives the bridged rate. Both edges run this section:
#   connection bench / address 127.0.0.1:REMOTE / try_private false / cleansession true
#   topic b/# out QOS
# Bridge readiness: a probe published at the edge reaches a subscriber at the remote.
# Subscriber readiness: its -d trace says SUBACK. Every client runs under `timeout`, the
# subscriber with --idle-timeout DRAIN_IDLE, so a lost message costs seconds, not a hang.
# Progress goes to stderr; the table goes to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${N:-100000}
REPS=${REPS:-3}
QOS_LIST=${QOS_LIST:-0 1}
SMQ=${SMQ:-target/release/smq}
DRAIN_IDLE=${DRAIN_IDLE:-5}
RUN_TIMEOUT=${RUN_TIMEOUT:-300}
REMOTE_KIND=${REMOTE_KIND:-mosquitto}
[[ $REMOTE_KIND == mosquitto || $REMOTE_KIND == rabbitmq ]] ||
    bench_die "REMOTE_KIND is mosquitto or rabbitmq, got '$REMOTE_KIND'"
for var in N REPS DRAIN_IDLE RUN_TIMEOUT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
for qos in $QOS_LIST; do [[ $qos == [01] ]] || bench_die "QOS_LIST may hold 0 and 1, got '$qos'"; done

bench_init
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"

INPUT=$BENCH_TMP/input
for ((i = 1; i <= N; i++)); do printf 'm%08d %090d\n' "$i" 0; done >"$INPUT"

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# start_rabbitmq: one RabbitMQ node with the MQTT plugin; sets REMOTE.
start_rabbitmq() {
    local server=/usr/lib/rabbitmq/bin/rabbitmq-server dir=$BENCH_TMP/rabbitmq epmd_port pid
    [[ -x $server ]] || bench_die "$server not found (apt-get install -y rabbitmq-server)"
    mkdir -p "$dir/home"
    echo "SMQBENCH$$" >"$dir/home/.erlang.cookie"
    chmod 400 "$dir/home/.erlang.cookie"
    epmd_port=$(free_port)
    epmd -port "$epmd_port" -address 127.0.0.1 </dev/null >/dev/null 2>&1 &
    bench_track "$!"
    REMOTE=$(free_port)
    printf '%s\n' "listeners.tcp.default = 127.0.0.1:$(free_port)" \
        "mqtt.listeners.tcp.default = 127.0.0.1:$REMOTE" "mqtt.allow_anonymous = true" \
        "loopback_users = none" "log.console = true" "log.file = false" >"$dir/rabbitmq.conf"
    echo '[rabbitmq_mqtt].' >"$dir/enabled_plugins"
    # Its own process group, stopped as one (beam and its helpers with it); schedulers that
    # do not busy-wait, or they take the CPU the brokers under test need.
    HOME=$dir/home ERL_EPMD_PORT=$epmd_port RABBITMQ_NODENAME=smqbench@localhost \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_DIST_PORT=$(free_port) \
        RABBITMQ_MNESIA_BASE=$dir/mnesia RABBITMQ_LOG_BASE=$dir/log \
        RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins \
        RABBITMQ_PID_FILE=$dir/pid RABBITMQ_SERVER_ERL_ARGS='+sbwt none +sbwtdcpu none +sbwtdio none' \
        setsid "$server" </dev/null >"$dir/out.log" 2>&1 &
    pid=$!
    bench_track "-$pid"
    local start
    start=$(bench_now_us)
    until "$SMQ" pub -h 127.0.0.1 -p "$REMOTE" -t b/up -m up 2>/dev/null; do
        kill -0 "$pid" 2>/dev/null || bench_die "RabbitMQ exited: $(tail -c 2000 "$dir/out.log")"
        (($(bench_now_us) - start < 180 * 1000000)) || bench_die "RabbitMQ's MQTT port did not open"
        sleep 0.5
    done
    REMOTE_NAME="RabbitMQ $(sed -n 's/.*RabbitMQ \([0-9][0-9.]*\).*/\1/p' "$dir/out.log" | head -1)"
}

if [[ $REMOTE_KIND == rabbitmq ]]; then
    start_rabbitmq
else
    bench_start_mosquitto
    REMOTE=$MOSQ_PORT REMOTE_NAME=Mosquitto
fi

# wait_bridged EDGE_PID: a QoS 1 probe published at the edge arrives at the remote.
wait_bridged() {
    local probe=$BENCH_TMP/probe.out sub start
    timeout 30 "$SMQ" sub -h 127.0.0.1 -p "$REMOTE" -t b/probe -q 1 -C 1 >"$probe" 2>/dev/null &
    sub=$!
    bench_track "$sub"
    start=$(bench_now_us)
    while kill -0 "$sub" 2>/dev/null; do
        kill -0 "$1" 2>/dev/null || bench_die "the edge exited"
        (($(bench_now_us) - start < 30 * 1000000)) || bench_die "the edge did not bridge to the remote"
        "$SMQ" pub -h 127.0.0.1 -p "$EDGE_PORT" -t b/probe -m probe -q 1 2>/dev/null || true
        sleep 0.2
    done
    bench_untrack "$sub"
    [[ -s $probe ]] || bench_die "the edge did not bridge to the remote"
}

# The same bridge section for both edges; a client id per run, to see it arrive at the remote.
bridge_lines() {
    printf '%s\n' "connection bench" "address 127.0.0.1:$REMOTE" "try_private false" \
        "cleansession true" "restart_timeout 1" "remote_clientid $2" "topic b/# out $1"
}

# start_edge KIND QOS ID: sets EDGE_PORT and EDGE_PID once messages cross the bridge.
start_edge() {
    local kind=$1 qos=$2 id=$3 dir lines
    dir=$(mktemp -d "$BENCH_TMP/edge.XXXXXX")
    if [[ $kind == smq ]]; then
        bridge_lines "$qos" "$id" >"$dir/edge.conf"
        "$SMQ" serve-broker --listen mqtt://127.0.0.1:0 -c "$dir/edge.conf" >"$dir/log" 2>&1 &
        EDGE_PID=$!
        bench_track "$EDGE_PID"
        bench_wait_for "$dir/log" '^smq: listening on mqtt://' 20 "$EDGE_PID" ||
            bench_die "smq edge did not start: $(cat "$dir/log")"
        EDGE_PORT=$(sed -n 's|^smq: listening on mqtt://127.0.0.1:\([0-9]*\)$|\1|p' "$dir/log" | head -1)
    else
        local saved=$BENCH_TMP
        BENCH_TMP=$dir
        mapfile -t lines < <(bridge_lines "$qos" "$id")
        bench_start_mosquitto "${lines[@]}"
        BENCH_TMP=$saved
        EDGE_PID=$MOSQ_PID EDGE_PORT=$MOSQ_PORT
    fi
    wait_bridged "$EDGE_PID"
}

# run_one KIND QOS ID: sets RATE (msg/s) and GOT (messages delivered). Not in a subshell, so
# that what it starts stays tracked by the EXIT trap.
run_one() {
    local kind=$1 qos=$2 id=$3 sublog=$BENCH_TMP/sub.err subout=$BENCH_TMP/sub.out sub start end count
    start_edge "$kind" "$qos" "$id"
    : >"$sublog"
    timeout "$RUN_TIMEOUT" "$SMQ" sub -d -h 127.0.0.1 -p "$REMOTE" -t 'b/#' -q "$qos" -C "$N" \
        --idle-timeout "$DRAIN_IDLE" -F '%U' >"$subout" 2>"$sublog" &
    sub=$!
    bench_track "$sub"
    bench_wait_for "$sublog" 'received SUBACK' 20 "$sub" || bench_die "subscriber: $(cat "$sublog")"
    start=$(bench_now_us)
    timeout "$RUN_TIMEOUT" "$SMQ" pub -h 127.0.0.1 -p "$EDGE_PORT" -t b/x -q "$qos" -l <"$INPUT" ||
        bench_log "publisher at the $kind edge failed"
    wait "$sub" || true
    bench_untrack "$sub"
    count=$(wc -l <"$subout")
    # The last message's receive time (%U, seconds.ns since the epoch), in microseconds.
    end=$(tail -1 "$subout" | awk '{ printf "%.0f", $1 * 1e6 }')
    bench_stop "$EDGE_PID"
    GOT=$count RATE=0
    if ((count > 0)); then
        RATE=$(awk -v n="$count" -v s="$start" -v e="$end" 'BEGIN { printf "%.0f", n / ((e - s) / 1e6) }')
    fi
}

EDGES=(smq mosquitto)
declare -A RATES DELIVERED
for qos in $QOS_LIST; do
    for ((rep = 0; rep < REPS; rep++)); do
        order=("${EDGES[@]}")
        ((rep % 2)) && order=(mosquitto smq)
        for kind in "${order[@]}"; do
            run_one "$kind" "$qos" "bench-$kind-$qos-$rep"
            bench_log "qos $qos rep $((rep + 1)) $kind edge: $RATE msg/s, $GOT of $N delivered"
            RATES[$kind.$qos]+="$RATE "
            DELIVERED[$kind.$qos]+="$GOT "
        done
    done
done

echo "Bridged throughput edge -> remote ($REMOTE_NAME), N=$N 100-byte messages, median of $REPS; load $(cut -d' ' -f1-3 /proc/loadavg)"
printf '| QoS | smq edge msg/s | Mosquitto edge msg/s | smq/Mosquitto | delivered (smq, Mosquitto) |\n|---|---|---|---|---|\n'
for qos in $QOS_LIST; do
    s=$(tr ' ' '\n' <<<"${RATES[smq.$qos]}" | grep . | bench_median)
    m=$(tr ' ' '\n' <<<"${RATES[mosquitto.$qos]}" | grep . | bench_median)
    ratio=$(awk -v s="$s" -v m="$m" 'BEGIN { if (m > 0) printf "%.2f", s / m; else print "-" }')
    printf '| %s | %s | %s | %s | %s / %s |\n' "$qos" "$s" "$m" "$ratio" \
        "$(xargs <<<"${DELIVERED[smq.$qos]}")" "$(xargs <<<"${DELIVERED[mosquitto.$qos]}")"
done
