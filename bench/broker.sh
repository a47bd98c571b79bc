#!/usr/bin/env bash
# broker.sh: `smq serve-broker` vs Mosquitto, on the same machine in the same run, driven by the
# same load generator (smq pub / smq sub, identical flags for both brokers). See bench/README.md.
#
#   N=200000 REPS=3 SMQ=target/release/smq bench/broker.sh
#
# Scenarios (SCENARIOS), each run on a fresh broker, the brokers interleaved with the order
# rotated every repetition:
#   fanin    8 publishers -> 1 subscriber, QoS 0 and 1, 100-byte payloads, N deliveries in all
#   fanout   1 publisher -> 8 subscribers, same, N deliveries in all (N/8 published)
#   latency  `smq bench latency`: one publisher at a fixed rate (LAT_RATE msg/s for LAT_SECS s)
#            to one subscriber in one process, from the scheduled send time; p50/p99/max
#   idle     IDLE_CONNS idle MQTT connections (CONNECT, keepalive 0, held open); broker VmRSS
#            before and after, per connection
#   persist  fan-in at QoS 1 to a persistent-session subscriber (-c), three brokers:
#            serve-broker --persist DIR (every acknowledged message fsync'd first),
#            serve-broker in memory, and mosquitto with `persistence true`
#   retained1m  RETAINED (1,000,000) retained topics loaded, then SUBSCRIBE -> SUBACK + its
#            retained message: exact filters, `r/<k>/+` filters, a burst at once; a probe's
#            publish round trips meanwhile show whether other traffic stalls (bench/scale.py)
#   wild100k WILD (100,000) wildcard subscriptions w/<n>/+, then the round trip of a publish
#            that one of them matches (bench/scale.py)
# BROKERS may also hold `base`: serve-broker from the binary SMQ_BASE (an earlier build), run
# like `smq` with the same load generator, for before/after numbers from one run.
# Subscriber readiness: a retained "ready" message is published before the subscribers start,
# and each subscribes to it together with the data topic (one SUBSCRIBE); its arrival in the
# subscriber's output means the data subscription is live. Every client runs under `timeout`,
# subscribers also with --idle-timeout DRAIN_IDLE, so a lost message costs seconds, not a hang.
# Progress goes to stderr; tables go to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${N:-200000}
REPS=${REPS:-3}
QOS_LIST=${QOS_LIST:-0 1}
SCENARIOS=${SCENARIOS:-fanin fanout latency idle persist retained1m wild100k}
BROKERS=${BROKERS:-smq mosquitto}
SMQ=${SMQ:-target/release/smq}
CLIENTS=${CLIENTS:-8}                   # publishers (fanin) / subscribers (fanout)
INFLIGHT=${INFLIGHT:-1000}              # both brokers' per-client QoS 1 window; publishers' -M at QoS 1
MAX_QUEUED=${MAX_QUEUED:-1000000}       # serve-broker --max-queued (mosquitto: max_queued_messages 0)
LAT_RATE=${LAT_RATE:-2000}              # latency: messages per second
LAT_SECS=${LAT_SECS:-10}                # latency: seconds of sending
IDLE_CONNS=${IDLE_CONNS:-5000}
DRAIN_IDLE=${DRAIN_IDLE:-5}             # subscribers give up after this many seconds without a message
RUN_TIMEOUT=${RUN_TIMEOUT:-300}         # hard limit for any one client process
READY_TIMEOUT=${READY_TIMEOUT:-10}
RETAINED=${RETAINED:-1000000}           # retained1m: retained topics loaded
RETAINED_SAMPLES=${RETAINED_SAMPLES:-200} # retained1m: exact-filter SUBSCRIBEs timed
RETAINED_PLUS=${RETAINED_PLUS:-20}      # retained1m: r/<k>/+ SUBSCRIBEs timed (1,000 retained each)
RETAINED_BURST=${RETAINED_BURST:-50}    # retained1m: exact SUBSCRIBEs sent at once
WILD=${WILD:-100000}                    # wild100k: wildcard subscriptions
WILD_SAMPLES=${WILD_SAMPLES:-2000}      # wild100k: publish round trips timed
WILD_CONNS=${WILD_CONNS:-4}             # wild100k: connections holding the subscriptions
SCALE_READ_TIMEOUT=${SCALE_READ_TIMEOUT:-60} # retained1m/wild100k: longest wait for one packet
SMQ_BASE=${SMQ_BASE:-}

for var in N REPS CLIENTS INFLIGHT MAX_QUEUED LAT_RATE LAT_SECS IDLE_CONNS DRAIN_IDLE RUN_TIMEOUT READY_TIMEOUT \
    RETAINED RETAINED_SAMPLES RETAINED_PLUS RETAINED_BURST WILD WILD_SAMPLES WILD_CONNS SCALE_READ_TIMEOUT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
for qos in $QOS_LIST; do [[ $qos == [01] ]] || bench_die "QOS_LIST may hold 0 and 1, got '$qos'"; done
for s in $SCENARIOS; do [[ $s =~ ^(fanin|fanout|latency|idle|persist|retained1m|wild100k)$ ]] || bench_die "unknown scenario '$s'"; done
for b in $BROKERS; do [[ $b =~ ^(smq|mosquitto|base)$ ]] || bench_die "BROKERS may hold smq, mosquitto and base, got '$b'"; done
[[ " $BROKERS " != *" base "* || -x $SMQ_BASE ]] || bench_die "BROKERS has base: set SMQ_BASE to an smq binary (got '$SMQ_BASE')"
((WILD >= 2)) || bench_die "WILD must be at least 2"
((INFLIGHT < 65535)) || bench_die "INFLIGHT must stay below 65535 (MQTT packet ids)"
((N >= CLIENTS && N / CLIENTS <= 99999999)) || bench_die "N must be between CLIENTS and CLIENTS*99999999"
PER=$((N / CLIENTS)) # messages per publisher (fanin) / published and per subscriber (fanout)
N=$((PER * CLIENTS))

bench_init # cd to the repo root: a relative SMQ is relative to it
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v python3 >/dev/null || bench_die "python3 not found (latency and idle scenarios)"
[[ -x $MOSQUITTO ]] || bench_die "$MOSQUITTO not found (apt-get install -y mosquitto)"
CLK_TCK=$(getconf CLK_TCK)

# Input: one file per publisher, PER distinct 100-byte lines ("p1-m00000001 xxx…", 99 bytes + \n).
for ((p = 1; p <= CLIENTS; p++)); do
    awk -v n="$PER" -v p="$p" 'BEGIN { pad = sprintf("%99s", ""); gsub(/ /, "x", pad)
        for (i = 1; i <= n; i++) { s = sprintf("p%d-m%08d ", p, i); printf "%s%s\n", s, substr(pad, 1, 99 - length(s)) } }' \
        >"$BENCH_TMP/in$p.txt"
done

# Idle connections: open argv[2] MQTT 3.1.1 connections (CONNECT, clean session, keepalive 0),
# at most argv[3] handshakes at a time, check each CONNACK, print "connected OK FAILED", then
# hold the sockets until killed (SIGTERM by PID from the bench; the kernel closes them).
cat >"$BENCH_TMP/idle.py" <<'EOF'
import asyncio, resource, sys
port, n, conc, timeout = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = n + 256
if soft < want:
    new = want if hard == resource.RLIM_INFINITY else min(want, hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))

def connect_packet(i):
    cid = b"smq-bench-idle-%06d" % i
    rest = b"\x00\x04MQTT\x04\x02\x00\x00" + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + bytes([len(rest)]) + rest

async def main():
    sem = asyncio.Semaphore(conc)
    held, failed = [], [0]
    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), timeout)
                w.write(connect_packet(i))
                ack = await asyncio.wait_for(r.readexactly(4), timeout)
                if ack[0] != 0x20 or ack[3] != 0:
                    raise ValueError("CONNACK %r" % ack)
                held.append((r, w))
            except Exception as e:
                failed[0] += 1
                if failed[0] <= 3:
                    print("connection %d failed: %r" % (i, e), file=sys.stderr, flush=True)
    await asyncio.gather(*(one(i) for i in range(n)))
    print("connected", len(held), failed[0], flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
EOF

# --- brokers ---------------------------------------------------------------------------------

SMQ_BROKER_LOG=$BENCH_TMP/serve-broker.log

# smq_listen_port: the port from a complete (newline-terminated) "smq: listening on" line.
smq_listen_port() {
    local line
    # `read` fails on a final line without its newline, so a half-written line is never parsed.
    while IFS= read -r line; do
        if [[ $line =~ ^smq:\ listening\ on\ mqtt://127\.0\.0\.1:([0-9]+)$ ]]; then
            echo "${BASH_REMATCH[1]}"
            return 0
        fi
    done <"$SMQ_BROKER_LOG"
    return 1
}

# start_broker smq|base|mosquitto|smq-persist|mosquitto-persist: sets BROKER_PID and BROKER_PORT.
# The -persist ones start on an empty persistence directory. MOSQ_EXTRA: more mosquitto.conf lines.
MOSQ_EXTRA=()
start_broker() {
    local pid port start bin=$SMQ
    local -a persist=()
    case $1 in
    mosquitto | mosquitto-persist)
        if [[ $1 == mosquitto-persist ]]; then
            rm -rf "$BENCH_TMP/mosquitto-db" && mkdir "$BENCH_TMP/mosquitto-db"
            # Started as root, mosquitto would drop to its own user, which cannot write into
            # the bench's private temp dir.
            persist=("persistence true" "persistence_location $BENCH_TMP/mosquitto-db/" "user $(id -un)")
        fi
        bench_start_mosquitto "max_inflight_messages $INFLIGHT" "sys_interval 0" "${persist[@]}" "${MOSQ_EXTRA[@]}"
        BROKER_PID=$MOSQ_PID BROKER_PORT=$MOSQ_PORT
        ;;
    smq | smq-persist | base)
        [[ $1 != base ]] || bin=$SMQ_BASE
        if [[ $1 == smq-persist ]]; then
            rm -rf "$BENCH_TMP/smq-db"
            persist=(--persist "$BENCH_TMP/smq-db")
        fi
        : >"$SMQ_BROKER_LOG"
        "$bin" serve-broker --listen mqtt://127.0.0.1:0 --max-inflight "$INFLIGHT" \
            --max-queued "$MAX_QUEUED" --max-queued-bytes 0 --sys-interval 0 "${persist[@]}" >>"$SMQ_BROKER_LOG" 2>&1 </dev/null &
        pid=$!
        bench_track "$pid"
        start=$(bench_now_us)
        until port=$(smq_listen_port); do
            kill -0 "$pid" 2>/dev/null || bench_die "serve-broker exited: $(head -c 2000 "$SMQ_BROKER_LOG")"
            (($(bench_now_us) - start < READY_TIMEOUT * 1000000)) ||
                bench_die "serve-broker not listening after ${READY_TIMEOUT}s: $(head -c 2000 "$SMQ_BROKER_LOG")"
            sleep 0.02
        done
        BROKER_PID=$pid BROKER_PORT=$port
        ;;
    esac
}

# proc_cpu PID: user+system clock ticks of a live process (all its threads).
proc_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# children_cpu: user+system ticks of this shell's reaped children (the load generator).
children_cpu() { sed 's/^.*) //' "/proc/$$/stat" | awk '{ print $14 + $15 }'; }
vm_kib() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }
load1() { awk '{ print $1 }' /proc/loadavg; }
label() {
    case $1 in
    smq) echo serve-broker ;;
    base) echo serve-b-base ;;
    smq-persist) echo serve-b+persist ;;
    mosquitto-persist) echo mosq+persist ;;
    *) echo mosquitto ;;
    esac
}

READY_TOPIC=smq-bench/ready
DATA_TOPIC=smq-bench/data

# publish_ready: the retained readiness message every subscriber also subscribes to.
publish_ready() {
    local rc=0
    timeout -k 2 "$READY_TIMEOUT" "$SMQ" pub -h 127.0.0.1 -p "$BROKER_PORT" -t "$READY_TOPIC" \
        -m ready -r -q 1 -i smq-bench-ready >/dev/null 2>"$BENCH_TMP/ready.err" </dev/null || rc=$?
    ((rc == 0)) || bench_die "could not publish the ready message (exit $rc): $(head -c 1000 "$BENCH_TMP/ready.err")"
}

# start_sub I COUNT QOS [FLAGS...]: a subscriber writing to $BENCH_TMP/sub$I.out; appends its PID
# to SUB_PIDS. COUNT data messages are expected, plus the ready message.
start_sub() {
    local i=$1 count=$2 qos=$3
    shift 3
    timeout -k 5 "$RUN_TIMEOUT" "$SMQ" sub -h 127.0.0.1 -p "$BROKER_PORT" -t "$DATA_TOPIC" -t "$READY_TOPIC" \
        -q "$qos" -i "smq-bench-sub-$i" -C $((count + 1)) --idle-timeout "$DRAIN_IDLE" "$@" \
        >"$BENCH_TMP/sub$i.out" 2>"$BENCH_TMP/sub$i.err" </dev/null &
    SUB_PIDS+=($!)
    bench_track "$!"
}

wait_subs_ready() {
    local i=1 pid
    for pid in "${SUB_PIDS[@]}"; do
        bench_wait_for "$BENCH_TMP/sub$i.out" 'ready$' "$READY_TIMEOUT" "$pid" ||
            bench_die "subscriber $i not ready after ${READY_TIMEOUT}s: $(head -c 1000 "$BENCH_TMP/sub$i.err")"
        i=$((i + 1))
    done
}

# wait_pids PID...: wait for each and untrack it; sets WAIT_RCS to their distinct exit codes.
wait_pids() {
    local pid rc
    WAIT_RCS=
    for pid in "$@"; do
        rc=0
        wait "$pid" || rc=$?
        bench_untrack "$pid"
        [[ ,$WAIT_RCS, == *,$rc,* ]] || WAIT_RCS=${WAIT_RCS:+$WAIT_RCS,}$rc
    done
}

# --- scenarios -------------------------------------------------------------------------------

TP=$BENCH_TMP/throughput.tsv LAT=$BENCH_TMP/latency.tsv IDLE=$BENCH_TMP/idle.tsv SCALE=$BENCH_TMP/scale.tsv
: >"$TP"
: >"$LAT"
: >"$IDLE"
: >"$SCALE"

# run_throughput fanin|fanout QOS BROKER REP: appends a row to $TP.
run_throughput() {
    local scen=$1 qos=$2 broker=$3 rep=$4 nsubs npubs per_sub i start end bcpu0 bcpu1 ccpu0 ccpu1 hwm
    local delivered=0 d load elapsed sub_rcs pub_rcs
    local -a pub_pids=() pub_extra=() sub_extra=()
    SUB_PIDS=()
    if [[ $scen == fanout ]]; then nsubs=$CLIENTS npubs=1 per_sub=$PER; else nsubs=1 npubs=$CLIENTS per_sub=$N; fi
    [[ $scen != persist ]] || sub_extra=(-c)
    ((qos == 0)) || pub_extra=(-M "$INFLIGHT")
    load=$(load1)

    start_broker "$broker"
    publish_ready
    for ((i = 1; i <= nsubs; i++)); do start_sub "$i" "$per_sub" "$qos" "${sub_extra[@]}"; done
    wait_subs_ready

    ccpu0=$(children_cpu)
    bcpu0=$(proc_cpu "$BROKER_PID")
    start=$(bench_now_us)
    for ((i = 1; i <= npubs; i++)); do
        timeout -k 5 "$RUN_TIMEOUT" "$SMQ" pub -h 127.0.0.1 -p "$BROKER_PORT" -t "$DATA_TOPIC" -l -q "$qos" \
            -i "smq-bench-pub-$i" "${pub_extra[@]}" <"$BENCH_TMP/in$i.txt" >/dev/null 2>"$BENCH_TMP/pub$i.err" &
        pub_pids+=($!)
        bench_track "$!"
    done
    wait_pids "${SUB_PIDS[@]}"
    end=$(bench_now_us)
    sub_rcs=$WAIT_RCS
    wait_pids "${pub_pids[@]}"
    pub_rcs=$WAIT_RCS
    bcpu1=$(proc_cpu "$BROKER_PID")
    hwm=$(vm_kib "$BROKER_PID" VmHWM)
    ccpu1=$(children_cpu)
    bench_stop "$BROKER_PID"

    # delivered: distinct data lines per subscriber (duplicates don't count), summed.
    for ((i = 1; i <= nsubs; i++)); do
        d=$({ grep -E '^p[0-9]+-m[0-9]{8} ' "$BENCH_TMP/sub$i.out" || true; } | sort -u | wc -l)
        delivered=$((delivered + d))
        rm -f "$BENCH_TMP/sub$i.out"
    done
    elapsed=$((end - start))
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$scen" "$qos" "$broker" "$rep" "$elapsed" \
        "$delivered" "$N" "$((bcpu1 - bcpu0))" "$((ccpu1 - ccpu0))" "${hwm:-0}" "$load" "sub:$sub_rcs pub:$pub_rcs" >>"$TP"
    bench_log "$(printf '%-7s qos %s %-12s rep %s: %7.3f s %9.0f msg/s  delivered %s/%s  broker cpu %.2f s  clients cpu %.2f s  exits sub:%s pub:%s  load %s' \
        "$scen" "$qos" "$(label "$broker")" "$rep" "$(awk -v u="$elapsed" 'BEGIN { print u / 1e6 }')" \
        "$(awk -v u="$elapsed" -v d="$delivered" 'BEGIN { print d / (u / 1e6) }')" "$delivered" "$N" \
        "$(awk -v t=$((bcpu1 - bcpu0)) -v h="$CLK_TCK" 'BEGIN { print t / h }')" \
        "$(awk -v t=$((ccpu1 - ccpu0)) -v h="$CLK_TCK" 'BEGIN { print t / h }')" "$sub_rcs" "$pub_rcs" "$load")"
}

# run_latency QOS BROKER REP: appends a row to $LAT. `smq bench latency` is publisher and
# subscriber in one process: it waits for its SUBACK before the first send and measures from each
# message's scheduled send time (coordinated omission corrected), the same for every broker.
run_latency() {
    local qos=$1 broker=$2 rep=$3 stats bcpu0 bcpu1 load rc=0 out=$BENCH_TMP/latency.json
    local -a extra=()
    ((qos == 0)) || extra=(-M "$INFLIGHT")
    load=$(load1)
    start_broker "$broker"
    bcpu0=$(proc_cpu "$BROKER_PID")
    # --nodelay (and identical flags for every broker), so Nagle in the load generator doesn't
    # add to the latency.
    timeout -k 5 $((LAT_SECS + 60)) "$SMQ" bench latency -h 127.0.0.1 -p "$BROKER_PORT" -q "$qos" \
        -c 1 --subscribers 1 --rate "$LAT_RATE" --duration "$LAT_SECS" -s 100 --nodelay "${extra[@]}" \
        -t "$DATA_TOPIC/%i" --json --quiet >"$out" 2>"$BENCH_TMP/latency.err" || rc=$?
    bcpu1=$(proc_cpu "$BROKER_PID")
    bench_stop "$BROKER_PID"
    # "sent received p50 p99 max" (µs); zeros when the run printed nothing usable.
    stats=$(python3 - "$out" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    l, m = d["latency_us"] or {}, d["messages"]
    print(m["expected"], m["received"], l.get("p50", 0), l.get("p99", 0), l.get("max", 0))
except (OSError, ValueError, KeyError):
    print(0, 0, 0, 0, 0)
EOF
)
    rm -f "$out"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$qos" "$broker" "$rep" "$(tr ' ' '\t' <<<"$stats")" \
        "$((bcpu1 - bcpu0))" "$load" "bench:$rc" >>"$LAT"
    bench_log "$(printf 'latency qos %s %-12s rep %s: sent/received/p50/p99/max µs %s  exit %s  load %s' \
        "$qos" "$(label "$broker")" "$rep" "$(tr ' ' '/' <<<"$stats")" "$rc" "$load")"
}

# rss_settled PID: VmRSS (KiB) once two readings 0.5 s apart agree within 1%, at most ~5 s.
rss_settled() {
    local prev cur i
    prev=$(vm_kib "$1" VmRSS)
    for ((i = 0; i < 10; i++)); do
        sleep 0.5
        cur=$(vm_kib "$1" VmRSS)
        ((cur * 100 >= prev * 99 && cur * 100 <= prev * 101)) && break
        prev=$cur
    done
    echo "$cur"
}

# run_idle BROKER REP: appends a row to $IDLE.
run_idle() {
    local broker=$1 rep=$2 rss0 rss1 ipid line ok failed load
    load=$(load1)
    start_broker "$broker"
    rss0=$(rss_settled "$BROKER_PID")
    : >"$BENCH_TMP/idle.out"
    python3 "$BENCH_TMP/idle.py" "$BROKER_PORT" "$IDLE_CONNS" 64 10 >"$BENCH_TMP/idle.out" 2>"$BENCH_TMP/idle.err" </dev/null &
    ipid=$!
    bench_track "$ipid"
    bench_wait_for "$BENCH_TMP/idle.out" '^connected [0-9]+ [0-9]+$' "$RUN_TIMEOUT" "$ipid" ||
        bench_die "idle connections: no result after ${RUN_TIMEOUT}s: $(head -c 1000 "$BENCH_TMP/idle.err")"
    read -r line ok failed <"$BENCH_TMP/idle.out"
    rss1=$(rss_settled "$BROKER_PID")
    bench_stop "$ipid"
    bench_stop "$BROKER_PID"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$broker" "$rep" "$ok" "$failed" "$rss0" "$rss1" "$load" >>"$IDLE"
    bench_log "$(printf 'idle    %-12s rep %s: %s connected, %s failed; VmRSS %s -> %s KiB, %s bytes/conn  load %s' \
        "$(label "$broker")" "$rep" "$ok" "$failed" "$rss0" "$rss1" \
        "$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }')" "$load")"
}

# run_scale retained1m|wild100k BROKER REP: appends a row to $SCALE (scen, broker, rep, load,
# then scale.py's key=value line, or exit=CODE when it failed).
run_scale() {
    local scen=$1 broker=$2 rep=$3 load out rc=0
    local -a args
    load=$(load1)
    # serve-broker sets TCP_NODELAY on every connection; without it Mosquitto's SUBACK and the
    # retained PUBLISH after it meet the client's delayed ACK, 40 ms per SUBSCRIBE.
    MOSQ_EXTRA=("set_tcp_nodelay true")
    start_broker "$broker"
    MOSQ_EXTRA=()
    if [[ $scen == retained1m ]]; then
        args=(retained "$BROKER_PORT" "$BROKER_PID" "$RETAINED" "$RETAINED_SAMPLES" "$RETAINED_PLUS" "$RETAINED_BURST")
    else
        args=(wild "$BROKER_PORT" "$BROKER_PID" "$WILD" "$WILD_SAMPLES" "$WILD_CONNS")
    fi
    out=$(timeout -k 5 "$RUN_TIMEOUT" python3 "$BENCH_DIR/scale.py" "${args[@]}" "$SCALE_READ_TIMEOUT" \
        2>"$BENCH_TMP/scale.err" </dev/null) || rc=$?
    bench_stop "$BROKER_PID"
    if ((rc != 0)); then
        bench_log "$scen $(label "$broker") rep $rep: scale.py exited $rc: $(tail -c 1000 "$BENCH_TMP/scale.err")"
        out="exit=$rc"
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$scen" "$broker" "$rep" "$load" "$out" >>"$SCALE"
    bench_log "$(printf '%-10s %-12s rep %s: %s  load %s' "$scen" "$(label "$broker")" "$rep" "$out" "$load")"
}

bench_log "broker: N=$N deliveries per throughput run ($CLIENTS clients x $PER), REPS=$REPS, QoS $QOS_LIST, scenarios: $SCENARIOS"
read -ra brokers <<<"$BROKERS"
order_for() { # order_for REP: the brokers in this repetition's order (rotated by one every repetition)
    local i nb=${#brokers[@]}
    ORDER=()
    for ((i = 0; i < nb; i++)); do ORDER+=("${brokers[(i + $1 - 1) % nb]}"); done
}
for scen in $SCENARIOS; do
    for ((rep = 1; rep <= REPS; rep++)); do
        order_for "$rep"
        case $scen in
        fanin | fanout | latency)
            for qos in $QOS_LIST; do
                for b in "${ORDER[@]}"; do
                    if [[ $scen == latency ]]; then run_latency "$qos" "$b" "$rep"; else run_throughput "$scen" "$qos" "$b" "$rep"; fi
                done
            done
            ;;
        idle)
            for b in "${ORDER[@]}"; do run_idle "$b" "$rep"; done
            ;;
        retained1m | wild100k)
            for b in "${ORDER[@]}"; do run_scale "$scen" "$b" "$rep"; done
            ;;
        persist)
            # Rotated every repetition, so none of the three always runs first.
            PERSIST_ORDER=(smq-persist smq mosquitto-persist)
            for ((i = 0; i < 3; i++)); do
                run_throughput persist 1 "${PERSIST_ORDER[(i + rep) % 3]}" "$rep"
            done
            ;;
        esac
    done
done

# --- report ----------------------------------------------------------------------------------

echo "broker: smq serve-broker vs $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }'), $REPS reps, $(nproc) cores, load generator: $SMQ pub/sub (latency: $SMQ bench latency)"
echo "brokers: serve-broker --max-inflight $INFLIGHT --max-queued $MAX_QUEUED --max-queued-bytes 0 --sys-interval 0;" \
    "mosquitto max_inflight_messages $INFLIGHT, max_queued_messages 0, sys_interval 0"
AWK_LIB='
function median(a, n,    i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
function name(b) { return b == "smq" ? "serve-broker" : b == "base" ? "serve-b-base" : b == "smq-persist" ? "serve-b+persist" : b == "mosquitto-persist" ? "mosq+persist" : "mosquitto" }
function range(lo, hi, fmt) { return lo == hi ? sprintf(fmt, lo) : sprintf(fmt "-" fmt, lo, hi) }'

if [[ -s $TP ]]; then
    echo
    echo "== throughput: fan-in ($CLIENTS pubs -> 1 sub) and fan-out (1 pub -> $CLIENTS subs), 100-byte payloads, $N deliveries per run"
    echo "msgs/s = distinct messages received by all subscribers / (first publisher start -> last subscriber exit)"
    echo "CPU s: broker process (all threads) and load generator (all smq pub/sub processes), during the run"
    awk -F'\t' -v reps="$REPS" -v tck="$CLK_TCK" -v drain="$DRAIN_IDLE" "$AWK_LIB"'
    {
        k = $1 SUBSEP $2 SUBSEP $3; if (!(k in n)) { keys[++nk] = k }; n[k]++
        rv = $5 > 0 ? $6 / ($5 / 1e6) : 0
        rate[k, n[k]] = rv; prate[$1, $2, $3, $4] = rv
        bc[k, n[k]] = $8 / tck; cc[k, n[k]] = $9 / tck
        if ($10 > hwm[k]) hwm[k] = $10
        if (!(k in dmin) || $6 < dmin[k]) dmin[k] = $6
        if (!(k in dmax) || $6 > dmax[k]) dmax[k] = $6
        sent[k] = $7
        if (!(k in lmin) || $11 < lmin[k]) lmin[k] = $11
        if (!(k in lmax) || $11 > lmax[k]) lmax[k] = $11
        if (!((k, $12) in seen)) { seen[k, $12] = 1; ex[k] = ex[k] (ex[k] == "" ? "" : " ") $12 }
        scen[k] = $1; qos[k] = $2; brk[k] = $3
    }
    END {
        printf "%-7s %-3s %-15s %-30s %-19s %-9s %-9s %-14s %-9s %s\n", "scen", "qos", "broker", "msgs/s: median (min-max)", "delivered/expected", "broker", "loadgen", "broker peak", "loadavg1", "exits"
        printf "%-7s %-3s %-15s %-30s %-19s %-9s %-9s %-14s %-9s %s\n", "", "", "", "", "", "CPU s", "CPU s", "RSS KiB", "", ""
        for (i = 1; i <= nk; i++) {
            k = keys[i]; lo = hi = rate[k, 1]
            for (j = 1; j <= n[k]; j++) { r[j] = rate[k, j]; b[j] = bc[k, j]; c[j] = cc[k, j]; if (r[j] < lo) lo = r[j]; if (r[j] > hi) hi = r[j] }
            mr[k] = median(r, n[k]); mb[k] = median(b, n[k]); mc[k] = median(c, n[k])
            printf "%-7s %-3s %-15s %-30s %-19s %-9.2f %-9.2f %-14s %-9s %s\n", scen[k], qos[k], name(brk[k]),
                sprintf("%.0f (%.0f-%.0f)", mr[k], lo, hi), range(dmin[k], dmax[k], "%d") "/" sent[k], mb[k], mc[k], hwm[k],
                range(lmin[k], lmax[k], "%s"), ex[k]
        }
        paired = 0
        for (i = 1; i <= nk; i++) if (brk[keys[i]] == "mosquitto") paired = 1
        if (paired) {
            print ""
            print "ratios serve-broker/mosquitto: rate > 1 means serve-broker delivers faster (target >= 1.5); broker CPU per message < 1 means cheaper"
            printf "%-7s %-3s %-28s %-16s %s\n", "scen", "qos", "rate: median (paired min-max)", "CPU/msg", "notes"
        }
        for (i = 1; i <= nk; i++) {
            k = keys[i]; if (brk[k] != "smq" && brk[k] != "base") continue
            km = scen[k] SUBSEP qos[k] SUBSEP "mosquitto"; if (!(km in n)) continue
            lo = hi = ""
            for (rep = 1; rep <= reps; rep++) {
                if (!((scen[k], qos[k], brk[k], rep) in prate) || !((scen[k], qos[k], "mosquitto", rep) in prate)) continue
                if (prate[scen[k], qos[k], "mosquitto", rep] <= 0) continue
                pr = prate[scen[k], qos[k], brk[k], rep] / prate[scen[k], qos[k], "mosquitto", rep]
                if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
            }
            rr = mr[km] > 0 ? mr[k] / mr[km] : 0
            cpm = (mr[k] > 0 && mr[km] > 0 && mb[km] > 0) ? sprintf("%.2f", (mb[k] / sent[k]) / (mb[km] / sent[km])) : "n/a"
            notes = (brk[k] == "base" ? "serve-b-base: " : "") (rr >= 1.5 ? "target >= 1.5x: met" : "target >= 1.5x: NOT met")
            for (t = 0; t < 2; t++) {
                kk = t ? km : k
                if (dmin[kk] < sent[kk]) notes = notes sprintf("; %s LOSS: %d of %d not delivered in the worst run (its time includes the %d s idle timeout)", name(brk[kk]), sent[kk] - dmin[kk], sent[kk], drain)
            }
            printf "%-7s %-3s %-28s %-16s %s\n", scen[k], qos[k], sprintf("%.2f", rr) (lo == "" ? "" : sprintf(" (%.2f-%.2f)", lo, hi)), cpm, notes
        }
        kp = "persist" SUBSEP 1 SUBSEP "smq-persist"
        if (kp in n) {
            print ""
            print "persistence (fan-in QoS 1 to a persistent session): serve-broker --persist against serve-broker in memory and mosquitto with persistence true"
            printf "%-34s %-28s %s\n", "ratio", "rate: median (paired min-max)", "notes"
            split("smq mosquitto-persist", other, " ")
            for (t = 1; t <= 2; t++) {
                ko = "persist" SUBSEP 1 SUBSEP other[t]; if (!(ko in n) || mr[ko] <= 0) continue
                lo = hi = ""
                for (rep = 1; rep <= reps; rep++) {
                    if (!(("persist", 1, "smq-persist", rep) in prate) || !(("persist", 1, other[t], rep) in prate) || prate["persist", 1, other[t], rep] <= 0) continue
                    pr = prate["persist", 1, "smq-persist", rep] / prate["persist", 1, other[t], rep]
                    if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
                }
                rr = mr[kp] / mr[ko]
                goal = t == 1 ? 1 / 1.5 : 1
                notes = sprintf("target >= %.2f%s: %s", goal, t == 1 ? " (within 1.5x)" : "", rr >= goal ? "met" : "NOT met")
                for (u = 0; u < 2; u++) {
                    kk = u ? ko : kp
                    if (dmin[kk] < sent[kk]) notes = notes sprintf("; %s LOSS: %d of %d not delivered in the worst run", name(brk[kk]), sent[kk] - dmin[kk], sent[kk])
                }
                printf "%-34s %-28s %s\n", "serve-b+persist / " name(other[t]), sprintf("%.2f", rr) (lo == "" ? "" : sprintf(" (%.2f-%.2f)", lo, hi)), notes
            }
        }
    }' "$TP"
fi

if [[ -s $LAT ]]; then
    echo
    echo "== latency: smq bench latency, 1 publisher at $LAT_RATE msg/s for $LAT_SECS s -> 1 subscriber, from the scheduled send time"
    awk -F'\t' -v reps="$REPS" -v tck="$CLK_TCK" "$AWK_LIB"'
    {
        k = $1 SUBSEP $2; if (!(k in n)) { keys[++nk] = k }; n[k]++
        p50[k, n[k]] = $6; p99[k, n[k]] = $7; if ($8 > mx[k]) mx[k] = $8
        pp99[$1, $2, $3] = $7
        if (!(k in rmin) || $5 < rmin[k]) rmin[k] = $5
        if (!(k in rmax) || $5 > rmax[k]) rmax[k] = $5
        sent[k] = $4; bc[k, n[k]] = $9 / tck
        if (!(k in lmin) || $10 < lmin[k]) lmin[k] = $10
        if (!(k in lmax) || $10 > lmax[k]) lmax[k] = $10
        if (!((k, $11) in seen)) { seen[k, $11] = 1; ex[k] = ex[k] (ex[k] == "" ? "" : " ") $11 }
        qos[k] = $1; brk[k] = $2
    }
    END {
        printf "%-3s %-13s %-12s %-24s %-12s %-17s %-11s %-9s %s\n", "qos", "broker", "p50 µs", "p99 µs: median (min-max)", "max µs", "received/sent", "broker CPU s", "loadavg1", "exits"
        for (i = 1; i <= nk; i++) {
            k = keys[i]; lo = hi = p99[k, 1]
            for (j = 1; j <= n[k]; j++) { a[j] = p50[k, j]; b[j] = p99[k, j]; c[j] = bc[k, j]; if (b[j] + 0 < lo + 0) lo = b[j]; if (b[j] + 0 > hi + 0) hi = b[j] }
            m50[k] = median(a, n[k]); m99[k] = median(b, n[k])
            printf "%-3s %-13s %-12.1f %-24s %-12.1f %-17s %-11.2f %-9s %s\n", qos[k], name(brk[k]), m50[k], sprintf("%.1f (%.1f-%.1f)", m99[k], lo, hi), mx[k],
                range(rmin[k], rmax[k], "%d") "/" sent[k], median(c, n[k]), range(lmin[k], lmax[k], "%s"), ex[k]
        }
        print ""
        print "ratios serve-broker/mosquitto: < 1 means serve-broker is faster (target p99 <= 1)"
        printf "%-3s %-8s %-28s %s\n", "qos", "p50", "p99: median (paired min-max)", "notes"
        for (i = 1; i <= nk; i++) {
            k = keys[i]; if (brk[k] != "smq" && brk[k] != "base") continue
            km = qos[k] SUBSEP "mosquitto"; if (!(km in n) || m50[km] <= 0 || m99[km] <= 0) continue
            lo = hi = ""
            for (rep = 1; rep <= reps; rep++) {
                if (!((qos[k], brk[k], rep) in pp99) || !((qos[k], "mosquitto", rep) in pp99) || pp99[qos[k], "mosquitto", rep] <= 0) continue
                pr = pp99[qos[k], brk[k], rep] / pp99[qos[k], "mosquitto", rep]
                if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
            }
            rr = m99[k] / m99[km]
            notes = (brk[k] == "base" ? "serve-b-base: " : "") (rr <= 1 ? "target p99 <= mosquitto: met" : "target p99 <= mosquitto: NOT met")
            for (t = 0; t < 2; t++) { kk = t ? km : k; if (rmin[kk] < sent[kk]) notes = notes sprintf("; %s LOSS: %d of %d not received in the worst run", name(brk[kk]), sent[kk] - rmin[kk], sent[kk]) }
            printf "%-3s %-8.2f %-28s %s\n", qos[k], m50[k] / m50[km], sprintf("%.2f", rr) (lo == "" ? "" : sprintf(" (%.2f-%.2f)", lo, hi)), notes
        }
    }' "$LAT"
fi

if [[ -s $IDLE ]]; then
    echo
    echo "== idle connections: $IDLE_CONNS MQTT 3.1.1 connections (CONNECT, keepalive 0) held open; broker VmRSS settled before and after"
    awk -F'\t' -v reps="$REPS" "$AWK_LIB"'
    {
        k = $1; if (!(k in n)) { keys[++nk] = k }; n[k]++
        per = $3 > 0 ? ($6 - $5) * 1024 / $3 : 0
        pc[k, n[k]] = per; r0[k, n[k]] = $5; r1[k, n[k]] = $6; pper[$1, $2] = per
        if (!(k in okmin) || $3 < okmin[k]) okmin[k] = $3
        if ($4 > fmax[k]) fmax[k] = $4
        if (!(k in lmin) || $7 < lmin[k]) lmin[k] = $7
        if (!(k in lmax) || $7 > lmax[k]) lmax[k] = $7
    }
    END {
        printf "%-13s %-12s %-16s %-15s %-28s %-9s\n", "broker", "connected", "RSS before KiB", "RSS after KiB", "bytes/conn: median (min-max)", "loadavg1"
        for (i = 1; i <= nk; i++) {
            k = keys[i]; lo = hi = pc[k, 1]
            for (j = 1; j <= n[k]; j++) { a[j] = pc[k, j]; b[j] = r0[k, j]; c[j] = r1[k, j]; if (a[j] < lo) lo = a[j]; if (a[j] > hi) hi = a[j] }
            mp[k] = median(a, n[k])
            printf "%-13s %-12s %-16d %-15d %-28s %-9s\n", name(k), okmin[k] (fmax[k] ? " (" fmax[k] " failed)" : ""), median(b, n[k]), median(c, n[k]),
                sprintf("%.0f (%.0f-%.0f)", mp[k], lo, hi), range(lmin[k], lmax[k], "%s")
        }
        if (("smq" in n) && ("mosquitto" in n) && mp["mosquitto"] > 0) {
            lo = hi = ""
            for (rep = 1; rep <= reps; rep++) {
                if (!(("smq", rep) in pper) || !(("mosquitto", rep) in pper) || pper["mosquitto", rep] <= 0) continue
                pr = pper["smq", rep] / pper["mosquitto", rep]; if (lo == "" || pr < lo) lo = pr; if (hi == "" || pr > hi) hi = pr
            }
            rr = mp["smq"] / mp["mosquitto"]
            printf "\nratio serve-broker/mosquitto bytes per idle connection: %.2f%s (< 1 means serve-broker uses less; target <= 1: %s)\n", rr,
                (lo == "" ? "" : sprintf(" (paired %.2f-%.2f)", lo, hi)), (rr <= 1 ? "met" : "NOT met")
        }
    }' "$IDLE"
fi

if [[ -s $SCALE ]]; then
    # scale_report SCEN TITLE COLUMNS...: per broker the median of each key over the runs (the
    # first column with its min-max), then each serve-broker's ratios to Mosquitto.
    # A column is KEY:HEADER:RATIO (RATIO 1: it gets a ratio column).
    scale_report() {
        local scen=$1 title=$2
        shift 2
        [[ $(cut -f1 "$SCALE") == *"$scen"* ]] || return 0
        echo
        echo "$title"
        awk -F'\t' -v scen="$scen" -v cols="$*" "$AWK_LIB"'
        function num(x) { return x >= 100 ? sprintf("%.0f", x) : sprintf("%.3g", x) }
        $1 == scen {
            b = $2; if (!(b in n)) { brokers[++nb] = b }; n[b]++
            if (!(b in lmin) || $4 < lmin[b]) lmin[b] = $4
            if (!(b in lmax) || $4 > lmax[b]) lmax[b] = $4
            m = split($5, kv, " ")
            for (i = 1; i <= m; i++) { split(kv[i], p, "="); v[b, p[1], n[b]] = p[2]; if (p[1] == "exit") failed[b]++ }
        }
        END {
            nc = split(cols, col, " ")
            for (c = 1; c <= nc; c++) { split(col[c], f, ":"); key[c] = f[1]; head[c] = f[2]; ratio[c] = f[3] }
            line = sprintf("%-18s", "broker")
            for (c = 1; c <= nc; c++) line = line sprintf(c == 1 ? " %-30s" : " %-13s", head[c] (c == 1 ? ": median (min-max)" : ""))
            print line sprintf(" %-10s %s", "loadavg1", "failed runs")
            for (i = 1; i <= nb; i++) {
                b = brokers[i]; line = sprintf("%-18s", name(b))
                for (c = 1; c <= nc; c++) {
                    cnt = 0; lo = hi = ""
                    for (j = 1; j <= n[b]; j++) if ((b, key[c], j) in v) {
                        x = v[b, key[c], j] + 0; a[++cnt] = x
                        if (lo == "" || x < lo) lo = x; if (hi == "" || x > hi) hi = x
                    }
                    med[b, c] = cnt ? median(a, cnt) : ""
                    cell = cnt ? num(med[b, c]) : "n/a"
                    if (c == 1 && cnt) cell = cell " (" (lo == hi ? num(lo) : num(lo) "-" num(hi)) ")"
                    line = line sprintf(c == 1 ? " %-30s" : " %-13s", cell)
                }
                print line sprintf(" %-10s %d", range(lmin[b], lmax[b], "%s"), failed[b])
            }
            if (!("mosquitto" in n)) exit
            print ""
            print "ratios serve-broker/mosquitto of the medians: < 1 means serve-broker is faster (or smaller)"
            line = sprintf("%-18s", "ratio")
            for (c = 1; c <= nc; c++) if (ratio[c]) line = line sprintf(" %-13s", head[c])
            print line
            for (i = 1; i <= nb; i++) {
                b = brokers[i]; if (b == "mosquitto") continue
                line = sprintf("%-18s", name(b) "/mosq")
                for (c = 1; c <= nc; c++) if (ratio[c]) {
                    ok = med[b, c] != "" && med["mosquitto", c] != "" && med["mosquitto", c] > 0
                    line = line sprintf(" %-13s", ok ? sprintf("%.2f", med[b, c] / med["mosquitto", c]) : "n/a")
                }
                print line
            }
        }' "$SCALE"
    }
    scale_report retained1m "== retained: $RETAINED retained topics r/<i/1000>/<i%1000>; SUBSCRIBE -> SUBACK + retained: $RETAINED_SAMPLES exact, $RETAINED_PLUS r/<k>/+ (1,000 each), $RETAINED_BURST exact at once; a probe's own publish round trips meanwhile (mosquitto: set_tcp_nodelay true)" \
        exact_p50_us:exact-p50-µs:1 exact_p99_us:exact-p99-µs:1 plus_p50_us:r/k/+-p50-µs:1 burst_ms:burst-ms:1 \
        probe_p99_us:probe-p99-µs:1 probe_max_us:probe-max-µs:1 load_s:load-s:1 rss_kib:RSS-KiB:1
    scale_report wild100k "== wildcard subscriptions: $WILD filters w/<n>/+ over $WILD_CONNS+1 connections; round trip of a QoS 0 publish that one matches, $WILD_SAMPLES samples (mosquitto: set_tcp_nodelay true)" \
        rtt_p50_us:rtt-p50-µs:1 rtt_p99_us:rtt-p99-µs:1 rtt_max_us:rtt-max-µs:1 subscribe_s:subscribe-s:1 rss_kib:RSS-KiB:1
fi
