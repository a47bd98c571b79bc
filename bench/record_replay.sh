#!/usr/bin/env bash
# record_replay.sh: `smq record` receiving floods from a local Mosquitto broker (messages and
# readings layouts), and `smq replay --no-wait` against `mosquitto_pub -l` on the same messages.
# See bench/README.md.
#
#   N=200000 N_BATCHES=20000 REPS=1 SMQ=target/release/smq bench/record_replay.sh
#
# Scenarios (SCENARIOS), every run on a fresh broker (max_queued_messages 0: nothing is dropped):
#   messages  `smq record --layout messages -C N` while `smq pub -l` floods N distinct 100-byte
#             lines at QoS q (RECORD_QOS_LIST). Timed from the flood's start to record's exit.
#             For reference, `smq sub -C N` and `mosquitto_sub -C N` (> /dev/null) receive the
#             same flood (REFS), so the table shows what the pipeline itself allows.
#   readings  `smq record` (readings layout) -C N_BATCHES of Sensor Logger batches: the fixture
#             tests/fixtures/sensorlogger-android-mixed.json with its readings cycled to K entries
#             (BATCH_READINGS_LIST; 7 is the fixture itself) and a distinct messageId per batch.
#   replay    `smq replay CAPTURE --no-wait` against `mosquitto_pub -l < lines` at QoS q
#             (REPLAY_QOS_LIST), where CAPTURE is the messages file recorded at QoS q above (made
#             untimed when that run was skipped) and lines are the same N payloads. A counting
#             `mosquitto_sub -C N` checks delivery.
# Every client runs under `timeout`; record and the subscribers exit by themselves after their
# N-th message, so exit 0 plus the file checks mean nothing was lost. Progress goes to stderr;
# tables to stdout.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

N=${N:-200000}                            # small messages: messages scenario and replay
N_BATCHES=${N_BATCHES:-20000}             # Sensor Logger batches: readings scenario
REPS=${REPS:-1}
SCENARIOS=${SCENARIOS:-messages readings replay}
RECORD_QOS_LIST=${RECORD_QOS_LIST:-0 1}   # messages scenario: flood and subscription QoS
READINGS_QOS=${READINGS_QOS:-0}           # readings scenario: flood and subscription QoS
BATCH_READINGS_LIST=${BATCH_READINGS_LIST:-7 31 115} # readings per Sensor Logger batch
REPLAY_QOS_LIST=${REPLAY_QOS_LIST:-0 1}
FORMAT=${FORMAT:-csv}                     # messages layout file format: csv or jsonl
REFS=${REFS:-smq_sub mosquitto_sub}       # reference receivers in the messages scenario
SMQ=${SMQ:-target/release/smq}
RECORD_ARGS=${RECORD_ARGS:-}              # extra flags for smq record
REPLAY_ARGS=${REPLAY_ARGS:-}              # extra flags for smq replay
MOSQ_ARGS=${MOSQ_ARGS:-}                  # extra flags for mosquitto_pub (replay scenario)
BROKER_INFLIGHT=${BROKER_INFLIGHT:-1000}  # mosquitto max_inflight_messages; also the QoS>0 flood's -M
RUN_TIMEOUT=${RUN_TIMEOUT:-300}           # seconds before any one client is killed (exit 124)
READY_TIMEOUT=${READY_TIMEOUT:-10}        # seconds to wait for a subscription
DRAIN_IDLE=${DRAIN_IDLE:-5}               # replay: seconds without a new message before the count is final
FIXTURE=${FIXTURE:-tests/fixtures/sensorlogger-android-mixed.json}
TARGET_MSGS=${TARGET_MSGS:-100000}        # messages layout: msgs/s
TARGET_BATCHES=${TARGET_BATCHES:-2000}    # readings layout: batches/s
TARGET_REPLAY=${TARGET_REPLAY:-1.5}       # replay --no-wait / mosquitto_pub -l

for var in N N_BATCHES REPS BROKER_INFLIGHT RUN_TIMEOUT READY_TIMEOUT DRAIN_IDLE; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
((N <= 999999999 && N_BATCHES <= 999999999)) || bench_die "N and N_BATCHES must be at most 999999999"
((BROKER_INFLIGHT < 65535)) || bench_die "BROKER_INFLIGHT must stay below 65535 (MQTT packet ids)"
for s in $SCENARIOS; do [[ $s == messages || $s == readings || $s == replay ]] || bench_die "SCENARIOS may hold messages, readings and replay, got '$s'"; done
for q in $RECORD_QOS_LIST $REPLAY_QOS_LIST $READINGS_QOS; do [[ $q == [012] ]] || bench_die "QoS must be 0, 1 or 2, got '$q'"; done
for k in $BATCH_READINGS_LIST; do [[ $k =~ ^[1-9][0-9]{0,3}$ ]] || bench_die "BATCH_READINGS_LIST holds readings per batch (1-9999), got '$k'"; done
for r in $REFS; do [[ $r == smq_sub || $r == mosquitto_sub ]] || bench_die "REFS may hold smq_sub and mosquitto_sub, got '$r'"; done
[[ $FORMAT == csv || $FORMAT == jsonl ]] || bench_die "FORMAT must be csv or jsonl, got '$FORMAT'"

bench_init # cd to the repo root: a relative SMQ or FIXTURE is relative to it
bench_require_gnu_time
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v "$MOSQUITTO_PUB" >/dev/null || bench_die "$MOSQUITTO_PUB not found (apt-get install -y mosquitto-clients)"
command -v "$MOSQUITTO_SUB" >/dev/null || bench_die "$MOSQUITTO_SUB not found (apt-get install -y mosquitto-clients)"
command -v python3 >/dev/null || bench_die "python3 not found (it writes the Sensor Logger batches)"
[[ -r $FIXTURE ]] || bench_die "fixture $FIXTURE not readable"
"$SMQ" record --help >/dev/null 2>&1 || bench_die "$SMQ has no record command; rebuild it"

CLK_TCK=$(getconf CLK_TCK)
TOPIC=smq-bench/record-replay # every run has its own broker
REC_ID=smq-bench-rec          # client ids, for the broker log's subscribe lines (readiness)
SUB_ID=smq-bench-sub

load1() { awk '{ print $1 }' /proc/loadavg; }
secs() { awk -v us="$1" 'BEGIN { printf "%.3f", us / 1e6 }'; }
# CPU ticks (user + system) of a live process, all threads; the comm field may hold spaces.
proc_cpu() { sed 's/^.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
ticks_s() { awk -v t="$1" -v h="$CLK_TCK" 'BEGIN { printf "%.2f", t / h }'; }
time_field() { awk -F': ' -v k="$2" '$1 ~ k { print $2 }' "$1" 2>/dev/null || true; }

# --- inputs ---------------------------------------------------------------------------------

# N distinct lines of 99 bytes plus "\n": "m000000001 xxx…" (the other benches' lines). Sorted.
SMALL=$BENCH_TMP/small.txt
awk -v n="$N" 'BEGIN { pad = sprintf("%88s", ""); gsub(/ /, "x", pad)
                       for (i = 1; i <= n; i++) printf "m%09d %s\n", i, pad }' >"$SMALL"

# batch_file K: N_BATCHES one-line Sensor Logger batches of K readings (the fixture's readings
# cycled; each further cycle 10 ms later), messageId 1..N_BATCHES. Prints the file's path.
batch_file() {
    local k=$1 f=$BENCH_TMP/batches-$1.txt
    [[ -s $f ]] || python3 - "$FIXTURE" "$k" "$N_BATCHES" "$f" <<'EOF'
import json, sys
fixture, k, n, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
with open(fixture) as fh:
    d = json.load(fh)
base = d["payload"]
readings = []
for i in range(k):
    r = json.loads(json.dumps(base[i % len(base)]))
    if "time" in r and i >= len(base):
        r["time"] = int(r["time"]) + (i // len(base)) * 10_000_000
    readings.append(r)
d["payload"] = readings
d["messageId"] = 0
line = json.dumps(d, separators=(",", ":"))
pre, post = line.split('"messageId":0', 1)
with open(out, "w") as fh:
    for i in range(1, n + 1):
        fh.write(f'{pre}"messageId":{i}{post}\n')
EOF
    echo "$f"
}

# --- runs -----------------------------------------------------------------------------------

# flood INPUT QOS: `smq pub -l` of INPUT to $TOPIC in the background under GNU time; sets FLOOD_PID.
flood() {
    local -a m=()
    (($2 > 0)) && m=(-M "$BROKER_INFLIGHT")
    timeout -k 5 "$RUN_TIMEOUT" "$GNU_TIME" -v -o "$BENCH_TMP/flood.time" \
        "$SMQ" pub -h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -l -q "$2" "${m[@]}" \
        <"$1" >/dev/null 2>"$BENCH_TMP/flood.err" &
    FLOOD_PID=$!
    bench_track "$FLOOD_PID"
}

# finish_flood OK: reap the flood (stop it when the receiver failed); dies if it failed while the
# receiver succeeded. Sets FLOOD_CPU (seconds).
finish_flood() {
    local rc=0
    if (($1)); then wait "$FLOOD_PID" || rc=$?; else bench_stop "$FLOOD_PID"; fi
    bench_untrack "$FLOOD_PID"
    (($1 == 0 || rc == 0)) || bench_die "flood publisher exited $rc: $(head -c 1000 "$BENCH_TMP/flood.err")"
    FLOOD_CPU=$(awk -v u="$(time_field "$BENCH_TMP/flood.time" 'User time')" -v s="$(time_field "$BENCH_TMP/flood.time" 'System time')" \
        'BEGIN { printf "%.2f", u + s }')
}

# receive KIND TOOL QOS INPUT COUNT OUT [LAYOUT]: start receiver TOOL (record, smq_sub,
# mosquitto_sub), wait for its subscription, flood COUNT lines of INPUT at QOS, wait for the
# receiver's exit. Sets R_WALL_US R_RC R_USER R_SYS R_RSS R_BROKER_CPU R_FLOOD_CPU R_SUMMARY.
receive() {
    local tool=$1 qos=$2 input=$3 count=$4 out=$5 layout=${6:-messages}
    local timef=$BENCH_TMP/recv.time err=$BENCH_TMP/recv.err id pid start end b0 b1 rc=0
    local -a cmd extra=()
    case $tool in
    record)
        read -ra extra <<<"$RECORD_ARGS"
        cmd=("$SMQ" record --layout "$layout" -o "$out" --no-reconnect "${extra[@]}")
        [[ $layout == messages ]] && cmd+=(--format "$FORMAT")
        id=$REC_ID
        ;;
    smq_sub) cmd=("$SMQ" sub --no-reconnect) id=$SUB_ID ;;
    mosquitto_sub) cmd=("$MOSQUITTO_SUB") id=$SUB_ID ;;
    esac
    cmd+=(-h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -i "$id" -q "$qos" -C "$count")
    rm -f "$timef" "$out"
    if [[ $tool == record ]]; then
        timeout -k 5 "$RUN_TIMEOUT" "$GNU_TIME" -v -o "$timef" "${cmd[@]}" >/dev/null 2>"$err" </dev/null &
    else
        timeout -k 5 "$RUN_TIMEOUT" "$GNU_TIME" -v -o "$timef" "${cmd[@]}" >"$out" 2>"$err" </dev/null &
    fi
    pid=$!
    bench_track "$pid"
    # Readiness: mosquitto's log_type subscribe line "<time>: <id> <qos> <filter>", written once
    # the SUBSCRIBE is processed. No -d: it would cost the receivers a stderr line per message.
    bench_wait_for "$MOSQ_LOG" ": $id [0-2] $TOPIC\$" "$READY_TIMEOUT" "$pid" ||
        bench_die "$tool not subscribed after ${READY_TIMEOUT}s: $(head -c 2000 "$err")"
    b0=$(proc_cpu "$MOSQ_PID")
    start=$(bench_now_us)
    flood "$input" "$qos"
    wait "$pid" || rc=$?
    end=$(bench_now_us)
    b1=$(proc_cpu "$MOSQ_PID")
    bench_untrack "$pid"
    finish_flood $((rc == 0))
    R_WALL_US=$((end - start)) R_RC=$rc R_FLOOD_CPU=$FLOOD_CPU
    R_BROKER_CPU=$(ticks_s $((b1 - b0)))
    R_USER=$(time_field "$timef" 'User time') R_SYS=$(time_field "$timef" 'System time')
    R_RSS=$(time_field "$timef" 'Maximum resident set size')
    R_SUMMARY=$(grep '^smq: recorded' "$err" || true)
    if ((rc != 0)); then
        bench_log "  $tool exit $rc: $(grep -v '^Command exited with non-zero status\|^Command terminated by signal' "$err" | head -n 3)"
    fi
}

# summary_field WORD: the number before WORD in record's summary line
# ("smq: recorded N messages (R rows, B payload bytes) to FILE in T s").
summary_field() { sed -nE "s/^smq: recorded ([0-9]+) messages \\(([0-9]+) rows, ([0-9]+) payload bytes\\).*/\\$1/p" <<<"$R_SUMMARY"; }

# small_delivered FILE: distinct "m<9 digits> x…" payloads in FILE (CSV, JSONL or raw lines).
# Only ids 1..N exist, so N distinct means every message arrived.
small_delivered() { { grep -oE 'm[0-9]{9} x{88}' "$1" || true; } | sort -u | wc -l; }

MSG_RESULTS=$BENCH_TMP/messages.tsv
RDG_RESULTS=$BENCH_TMP/readings.tsv
RPL_RESULTS=$BENCH_TMP/replay.tsv
: >"$MSG_RESULTS"
: >"$RDG_RESULTS"
: >"$RPL_RESULTS"

capture_file() { echo "$BENCH_TMP/capture-q$1.$FORMAT"; }

# record_messages QOS TOOL REP [prep]: one messages-scenario run; appends a row to $MSG_RESULTS
# (not with prep). record's file is kept as the replay capture for QOS when complete.
record_messages() {
    local qos=$1 tool=$2 rep=$3 prep=${4:-} out=$BENCH_TMP/recv.out load rows=0 delivered bad=0 msgs=0
    load=$(load1)
    bench_start_mosquitto "max_inflight_messages $BROKER_INFLIGHT"
    receive "$tool" "$qos" "$SMALL" "$N" "$out" messages
    bench_stop "$MOSQ_PID"
    if [[ $tool == record ]]; then
        rows=$(wc -l <"$out" 2>/dev/null || echo 0)
        [[ $FORMAT == csv ]] && ((rows > 0)) && rows=$((rows - 1)) # header
        msgs=$(summary_field 1)
        # Rows whose qos column is not QOS: replay would publish them at another QoS.
        if [[ $FORMAT == csv ]]; then
            bad=$(awk -F, -v q="$qos" 'NR > 1 && $4 != q { n++ } END { print n + 0 }' "$out" 2>/dev/null || echo 0)
        else
            bad=$({ grep -vc "\"qos\":$qos," "$out" || true; })
        fi
    else
        rows=$({ grep -cE '^m[0-9]{9} ' "$out" || true; })
        msgs=$rows
    fi
    delivered=$(small_delivered "$out")
    if [[ $tool == record ]] && ((R_RC == 0 && delivered == N && rows == N && bad == 0)); then
        mv "$out" "$(capture_file "$qos")"
    fi
    rm -f "$out"
    bench_log "$(printf 'messages q%s %-13s rep %s: %8s s  %7.0f msgs/s  cpu %s+%s s  broker %s s  flood %s s  rows %s  delivered %s/%s  exit %s  load %s%s' \
        "$qos" "$tool" "$rep" "$(secs "$R_WALL_US")" "$(awk -v n="$N" -v us="$R_WALL_US" 'BEGIN { print n / (us / 1e6) }')" \
        "${R_USER:-?}" "${R_SYS:-?}" "$R_BROKER_CPU" "$R_FLOOD_CPU" "$rows" "$delivered" "$N" "$R_RC" "$load" "${prep:+ (capture for replay, untimed)}")"
    [[ -n $prep ]] && return 0
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$qos" "$tool" "$rep" "$R_WALL_US" \
        "${R_USER:-0}" "${R_SYS:-0}" "${R_RSS:-0}" "$R_BROKER_CPU" "$R_FLOOD_CPU" "$R_RC" "${msgs:-0}" "$rows" "$delivered" "$load" >>"$MSG_RESULTS"
    [[ $tool != record ]] || ((bad == 0)) || bench_log "  $bad rows with a qos other than $qos"
}

# record_readings K REP: one readings-scenario run with K-reading batches; appends to $RDG_RESULTS.
record_readings() {
    local k=$1 rep=$2 input out=$BENCH_TMP/readings.csv load rows=0 ids=0 rmin=0 rmax=0 msgs bytes
    input=$(batch_file "$k")
    bytes=$(($(head -n 1 "$input" | wc -c) - 1))
    load=$(load1)
    bench_start_mosquitto "max_inflight_messages $BROKER_INFLIGHT"
    receive record "$READINGS_QOS" "$input" "$N_BATCHES" "$out" readings
    bench_stop "$MOSQ_PID"
    msgs=$(summary_field 1)
    if [[ -s $out ]]; then
        rows=$(($(wc -l <"$out") - 1))
        # message_id (column 5; nothing before it holds a comma): distinct ids, rows per batch.
        read -r ids rmin rmax < <(cut -d, -f5 "$out" | tail -n +2 | uniq -c |
            awk '{ if (!($2 in s)) { s[$2] = 1; n++ } if (min == "" || $1 < min) min = $1; if ($1 > max) max = $1 }
                 END { print n + 0, min + 0, max + 0 }')
    fi
    rm -f "$out"
    bench_log "$(printf 'readings k=%-4s rep %s: %8s s  %6.0f batches/s  %8.0f rows/s  cpu %s+%s s  broker %s s  flood %s s  rows %s (%s-%s per batch)  batches %s/%s  exit %s  load %s' \
        "$k" "$rep" "$(secs "$R_WALL_US")" "$(awk -v n="$N_BATCHES" -v us="$R_WALL_US" 'BEGIN { print n / (us / 1e6) }')" \
        "$(awk -v n="$rows" -v us="$R_WALL_US" 'BEGIN { print n / (us / 1e6) }')" \
        "${R_USER:-?}" "${R_SYS:-?}" "$R_BROKER_CPU" "$R_FLOOD_CPU" "$rows" "$rmin" "$rmax" "$ids" "$N_BATCHES" "$R_RC" "$load")"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$k" "$bytes" "$rep" "$R_WALL_US" \
        "${R_USER:-0}" "${R_SYS:-0}" "${R_RSS:-0}" "$R_BROKER_CPU" "$R_FLOOD_CPU" "$R_RC" "${msgs:-0}" "$rows" "$ids" "$rmin" "$rmax" "$load" >>"$RDG_RESULTS"
}

# replay_one QOS TOOL REP: smq replay --no-wait of the QOS capture, or mosquitto_pub -l of the
# same lines, to $TOPIC; a counting mosquitto_sub checks delivery. Appends to $RPL_RESULTS.
replay_one() {
    local qos=$1 tool=$2 rep=$3 subout=$BENCH_TMP/count.out err=$BENCH_TMP/pub.err timef=$BENCH_TMP/pub.time
    local spid ppid rc=0 start pend end b0 b1 size last_size idle_since load received delivered
    local -a cmd extra
    load=$(load1)
    bench_start_mosquitto "max_inflight_messages $BROKER_INFLIGHT"
    timeout -k 5 "$RUN_TIMEOUT" "$MOSQUITTO_SUB" -h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -i "$SUB_ID" \
        -q "$qos" -C "$N" >"$subout" 2>"$BENCH_TMP/count.err" </dev/null &
    spid=$!
    bench_track "$spid"
    bench_wait_for "$MOSQ_LOG" ": $SUB_ID [0-2] $TOPIC\$" "$READY_TIMEOUT" "$spid" ||
        bench_die "counting subscriber not subscribed after ${READY_TIMEOUT}s: $(head -c 2000 "$BENCH_TMP/count.err")"
    case $tool in
    smq_replay)
        read -ra extra <<<"$REPLAY_ARGS"
        cmd=("$SMQ" replay "$(capture_file "$qos")" --no-wait -h 127.0.0.1 -p "$MOSQ_PORT" "${extra[@]}")
        ;;
    mosquitto_pub)
        read -ra extra <<<"$MOSQ_ARGS"
        cmd=("$MOSQUITTO_PUB" -h 127.0.0.1 -p "$MOSQ_PORT" -t "$TOPIC" -l -q "$qos" "${extra[@]}")
        ;;
    esac
    rm -f "$timef"
    b0=$(proc_cpu "$MOSQ_PID")
    start=$(bench_now_us)
    timeout -k 5 "$RUN_TIMEOUT" "$GNU_TIME" -v -o "$timef" "${cmd[@]}" <"$SMALL" >/dev/null 2>"$err" &
    ppid=$!
    bench_track "$ppid"
    wait "$ppid" || rc=$?
    pend=$(bench_now_us)
    bench_untrack "$ppid"
    # Drain: the subscriber exits on the N-th message; otherwise it is stopped once its output
    # has not grown for DRAIN_IDLE seconds. end is the last time the output grew.
    last_size=-1 end=$pend idle_since=$(bench_now_us)
    while kill -0 "$spid" 2>/dev/null; do
        size=$(stat -c %s "$subout")
        if ((size != last_size)); then
            last_size=$size end=$(bench_now_us) idle_since=$end
        elif (($(bench_now_us) - idle_since >= DRAIN_IDLE * 1000000)); then
            break
        fi
        sleep 0.02
    done
    kill -0 "$spid" 2>/dev/null || end=$(bench_now_us)
    b1=$(proc_cpu "$MOSQ_PID")
    bench_stop "$spid"
    bench_stop "$MOSQ_PID"
    received=$({ grep -cE '^m[0-9]{9} ' "$subout" || true; })
    delivered=$(small_delivered "$subout")
    rm -f "$subout"
    bench_log "$(printf 'replay   q%s %-13s rep %s: pub %8s s  %7.0f msgs/s  to last delivery %8s s  cpu %s+%s s  %s KiB  broker %s s  delivered %s/%s  exit %s  load %s' \
        "$qos" "$tool" "$rep" "$(secs $((pend - start)))" "$(awk -v n="$delivered" -v us=$((pend - start)) 'BEGIN { print n / (us / 1e6) }')" \
        "$(secs $((end - start)))" "$(time_field "$timef" 'User time')" "$(time_field "$timef" 'System time')" \
        "$(time_field "$timef" 'Maximum resident set size')" "$(ticks_s $((b1 - b0)))" "$delivered" "$N" "$rc" "$load")"
    if ((rc != 0)) && [[ -s $err ]]; then
        bench_log "  $tool stderr: $(grep -v '^Command exited with non-zero status\|^Command terminated by signal' "$err" | head -n 3)"
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$qos" "$tool" "$rep" $((pend - start)) $((end - start)) \
        "$(time_field "$timef" 'User time')" "$(time_field "$timef" 'System time')" "$(time_field "$timef" 'Maximum resident set size')" \
        "$(ticks_s $((b1 - b0)))" "$rc" "$delivered" "$received" "$load" >>"$RPL_RESULTS"
}

# --- main -----------------------------------------------------------------------------------

has() { [[ " $SCENARIOS " == *" $1 "* ]]; }

bench_log "record_replay: scenarios: $SCENARIOS; N=$N x 100 B, N_BATCHES=$N_BATCHES, REPS=$REPS, loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
if has messages; then
    for qos in $RECORD_QOS_LIST; do
        for ((rep = 1; rep <= REPS; rep++)); do
            # Rotate the order every repetition, so drift doesn't favour one receiver.
            read -ra tools <<<"record $REFS"
            for ((i = 0; i < (rep - 1) % ${#tools[@]}; i++)); do tools=("${tools[@]:1}" "${tools[0]}"); done
            for tool in "${tools[@]}"; do record_messages "$qos" "$tool" "$rep"; done
        done
    done
fi
if has readings; then
    for k in $BATCH_READINGS_LIST; do
        for ((rep = 1; rep <= REPS; rep++)); do record_readings "$k" "$rep"; done
    done
fi
if has replay; then
    for qos in $REPLAY_QOS_LIST; do
        [[ -s $(capture_file "$qos") ]] || record_messages "$qos" record 0 prep
        [[ -s $(capture_file "$qos") ]] || bench_die "no complete QoS $qos capture to replay (smq record lost messages?)"
        for ((rep = 1; rep <= REPS; rep++)); do
            if ((rep % 2)); then order=(smq_replay mosquitto_pub); else order=(mosquitto_pub smq_replay); fi
            for tool in "${order[@]}"; do replay_one "$qos" "$tool" "$rep"; done
        done
    done
fi

# --- report ---------------------------------------------------------------------------------

AWK_LIB='
function median(a, n,    i, j, t, s) {
    for (i = 1; i <= n; i++) s[i] = a[i]
    for (i = 2; i <= n; i++) { t = s[i]; for (j = i - 1; j >= 1 && s[j] > t; j--) s[j + 1] = s[j]; s[j + 1] = t }
    return n % 2 ? s[(n + 1) / 2] : (s[n / 2] + s[n / 2 + 1]) / 2
}
function range(lo, hi) { return lo == hi ? lo : lo "-" hi }
function addexit(k, e) { if (!((k, e) in seen)) { seen[k, e] = 1; exits[k] = nexit[k]++ ? exits[k] "," e : e } }
'

echo "record_replay: $(nproc) cores, $("$MOSQUITTO" -h 2>/dev/null | head -n 1 | awk '{ print $1, $3 }') (max_queued_messages 0, max_inflight_messages $BROKER_INFLIGHT), fresh broker per run, flood by $SMQ pub -l, REPS=$REPS"
echo "smq: $SMQ${RECORD_ARGS:+ (record: $RECORD_ARGS)}${REPLAY_ARGS:+ (replay: $REPLAY_ARGS)}   loadavg now: $(cut -d' ' -f1-3 /proc/loadavg)"

if [[ -s $MSG_RESULTS ]]; then
    echo
    echo "== record --layout messages --format $FORMAT: $N messages x 100 B, flood start to receiver exit"
    # Rows: qos tool rep wall_us user sys rss broker_cpu flood_cpu exit msgs rows delivered load
    awk -F'\t' -v n_msgs="$N" -v target="$TARGET_MSGS" "$AWK_LIB"'
    {
        k = $1 SUBSEP $2; addexit(k, $10)
        if (!(k in cnt)) { order[++nk] = k }
        cnt[k]++
        if ($10 == 0 && $13 == n_msgs) { ok[k]++; w[k, ok[k]] = $4 / 1e6; c[k, ok[k]] = $5 + $6; b[k, ok[k]] = $8; f[k, ok[k]] = $9 }
        if (!(k in dmin) || $13 < dmin[k]) dmin[k] = $13
        if (!(k in rmin) || $12 < rmin[k]) rmin[k] = $12
        if ($7 > rss[k]) rss[k] = $7
        if (!(k in lmin) || $14 < lmin[k]) lmin[k] = $14; if (!(k in lmax) || $14 > lmax[k]) lmax[k] = $14
    }
    END {
        printf "%-4s %-14s %-10s %10s %9s %-8s %8s %-12s %-9s %-10s %-9s %s\n", "qos", "receiver", "wall s", "msgs/s", "CPU s", "busy %", "RSS KiB", "broker CPU s", "flood CPU", "loadavg1", "rows", "delivered/sent exit"
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, kk, SUBSEP)
            if (k in ok) {
                for (j = 1; j <= ok[k]; j++) { ww[j] = w[k, j]; cc[j] = c[k, j]; bb[j] = b[k, j]; ff[j] = f[k, j] }
                mw = median(ww, ok[k]); mc = median(cc, ok[k]); rate[k] = n_msgs / mw
                printf "%-4s %-14s %-10.3f %10.0f %9.2f %-8.0f %8s %-12.2f %-9.2f %-10s %-9s %s/%s %s\n", kk[1], kk[2], mw, rate[k], mc, 100 * mc / mw, rss[k],
                    median(bb, ok[k]), median(ff, ok[k]), range(lmin[k], lmax[k]), (kk[2] == "record" ? rmin[k] : "-"), dmin[k], n_msgs, exits[k]
            } else
                printf "%-4s %-14s all %d runs lost messages or failed (delivered %d/%d, exit %s)\n", kk[1], kk[2], cnt[k], dmin[k], n_msgs, exits[k]
        }
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, kk, SUBSEP); if (kk[2] != "record") continue
            note = !(k in ok) ? "NOT met (messages lost or record failed)" : rate[k] >= target ? "met" : "NOT met"
            if ((k in ok) && ok[k] < cnt[k]) note = note sprintf("; %d of %d runs lost messages or failed", cnt[k] - ok[k], cnt[k])
            line = sprintf("qos %s: record %s msgs/s, target >= %d msgs/s with no message lost: %s", kk[1], (k in ok) ? sprintf("%.0f", rate[k]) : "n/a", target, note)
            for (t = 1; t <= 2; t++) { r = t == 1 ? "smq_sub" : "mosquitto_sub"; kr = kk[1] SUBSEP r
                if ((k in ok) && (kr in ok)) line = line sprintf("; record/%s %.2f", r, rate[k] / rate[kr]) }
            print line
        }
    }' "$MSG_RESULTS"
fi

if [[ -s $RDG_RESULTS ]]; then
    echo
    echo "== record --layout readings (CSV): $N_BATCHES Sensor Logger batches at QoS $READINGS_QOS, flood start to record exit"
    # Rows: k bytes rep wall_us user sys rss broker_cpu flood_cpu exit msgs rows ids rmin rmax load
    awk -F'\t' -v n_b="$N_BATCHES" -v target="$TARGET_BATCHES" "$AWK_LIB"'
    {
        k = $1; addexit(k, $10); bytes[k] = $2
        if (!(k in cnt)) { order[++nk] = k }
        cnt[k]++
        good = $10 == 0 && $11 == n_b && $13 == n_b && $12 > 0 && $14 == $15
        if (good) { ok[k]++; w[k, ok[k]] = $4 / 1e6; c[k, ok[k]] = $5 + $6; b[k, ok[k]] = $8; rpb[k] = $14; rows[k] = $12 }
        if (!(k in imin) || $13 < imin[k]) imin[k] = $13
        if ($7 > rss[k]) rss[k] = $7
        if (!(k in lmin) || $16 < lmin[k]) lmin[k] = $16; if (!(k in lmax) || $16 > lmax[k]) lmax[k] = $16
        detail[k] = detail[k] sprintf(" [rep %s: exit %s, %s messages, %s rows, %s ids, %s-%s rows/batch]", $3, $10, $11, $12, $13, $14, $15)
    }
    END {
        printf "%-9s %-9s %-9s %-9s %9s %10s %9s %-7s %8s %-12s %-10s %s\n", "readings", "payload B", "rows/bat", "wall s", "batches/s", "rows/s", "CPU s", "busy %", "RSS KiB", "broker CPU s", "loadavg1", "batches/sent exit"
        for (i = 1; i <= nk; i++) {
            k = order[i]
            if (!(k in ok)) { printf "%-9s %-9s all %d runs failed or lost batches:%s\n", k, bytes[k], cnt[k], detail[k]; continue }
            for (j = 1; j <= ok[k]; j++) { ww[j] = w[k, j]; cc[j] = c[k, j]; bb[j] = b[k, j] }
            mw = median(ww, ok[k]); mc = median(cc, ok[k]); rate[k] = n_b / mw
            printf "%-9s %-9s %-9s %-9.3f %9.0f %10.0f %9.2f %-7.0f %8s %-12.2f %-10s %s/%s %s\n", k, bytes[k], rpb[k], mw, rate[k], rows[k] / mw, mc, 100 * mc / mw, rss[k],
                median(bb, ok[k]), range(lmin[k], lmax[k]), imin[k], n_b, exits[k]
        }
        for (i = 1; i <= nk; i++) {
            k = order[i]
            note = !(k in ok) ? "NOT met (batches lost or record failed)" : rate[k] >= target ? "met" : "NOT met"
            if ((k in ok) && ok[k] < cnt[k]) note = note sprintf("; %d of %d runs failed:%s", cnt[k] - ok[k], cnt[k], detail[k])
            printf "%s readings/batch: record %s batches/s, target >= %d batches/s with no batch lost: %s\n", k, (k in ok) ? sprintf("%.0f", rate[k]) : "n/a", target, note
        }
    }' "$RDG_RESULTS"
fi

if [[ -s $RPL_RESULTS ]]; then
    echo
    echo "== replay: smq replay CAPTURE --no-wait vs mosquitto_pub -l < lines, $N messages x 100 B; a mosquitto_sub -C N counts deliveries"
    echo "msgs/s = delivered / publisher wall time; e2e = delivered / time from publisher start to the last delivery"
    # Rows: qos tool rep pub_us e2e_us user sys rss broker_cpu exit delivered received load
    awk -F'\t' -v n_msgs="$N" -v target="$TARGET_REPLAY" "$AWK_LIB"'
    {
        k = $1 SUBSEP $2; addexit(k, $10)
        if (!(k in n)) { order[++nk] = k }
        n[k]++
        w[k, n[k]] = $4 / 1e6; e[k, n[k]] = $5 / 1e6; c[k, n[k]] = $6 + $7; b[k, n[k]] = $9
        r[k, n[k]] = $4 > 0 ? $11 / ($4 / 1e6) : 0; re[k, n[k]] = $5 > 0 ? $11 / ($5 / 1e6) : 0
        pr[$1, $2, $3] = r[k, n[k]]
        if ($8 > rss[k]) rss[k] = $8
        if (!(k in dmin) || $11 < dmin[k]) dmin[k] = $11
        if ($12 - $11 > dups[k]) dups[k] = $12 - $11
        if (!(k in lmin) || $13 < lmin[k]) lmin[k] = $13; if (!(k in lmax) || $13 > lmax[k]) lmax[k] = $13
        qs[$1] = 1
    }
    END {
        printf "%-4s %-14s %-9s %9s %-9s %9s %7s %9s %-12s %-10s %s\n", "qos", "publisher", "wall s", "msgs/s", "e2e s", "e2e msg/s", "CPU s", "RSS KiB", "broker CPU s", "loadavg1", "delivered/sent exit"
        for (i = 1; i <= nk; i++) {
            k = order[i]; split(k, kk, SUBSEP)
            for (j = 1; j <= n[k]; j++) { ww[j] = w[k, j]; ee[j] = e[k, j]; cc[j] = c[k, j]; bb[j] = b[k, j]; rr[j] = r[k, j]; rre[j] = re[k, j] }
            mr[k] = median(rr, n[k]); mre[k] = median(rre, n[k])
            printf "%-4s %-14s %-9.3f %9.0f %-9.3f %9.0f %7.2f %9s %-12.2f %-10s %s/%s %s\n", kk[1], kk[2], median(ww, n[k]), mr[k], median(ee, n[k]), mre[k],
                median(cc, n[k]), rss[k], median(bb, n[k]), range(lmin[k], lmax[k]), dmin[k], n_msgs, exits[k]
        }
        for (q = 0; q <= 2; q++) {
            if (!(q in qs)) continue
            ks = q SUBSEP "smq_replay"; km = q SUBSEP "mosquitto_pub"
            if (!(ks in n) || !(km in n)) continue
            lo = hi = ""
            for (rep = 1; rep <= n[ks]; rep++) {
                if (!((q, "mosquitto_pub", rep) in pr) || pr[q, "mosquitto_pub", rep] <= 0) continue
                p = pr[q, "smq_replay", rep] / pr[q, "mosquitto_pub", rep]
                if (lo == "" || p < lo) lo = p; if (hi == "" || p > hi) hi = p
            }
            ratio = mr[km] > 0 ? mr[ks] / mr[km] : 0
            note = dmin[ks] < n_msgs ? sprintf("NOT met: smq replay lost %d messages", n_msgs - dmin[ks]) : ratio >= target ? "met" : "NOT met"
            if (dmin[km] < n_msgs) note = note sprintf("; mosquitto_pub DATA LOSS: %d of %d not delivered (exit %s)", n_msgs - dmin[km], n_msgs, exits[km])
            if (dups[ks] > 0) note = note sprintf("; smq replay %d duplicates", dups[ks])
            printf "qos %d: replay/mosquitto_pub rate %.2f%s, e2e %.2f; target >= %.1fx with no message lost: %s\n", q, ratio,
                (n[ks] > 1 && lo != "" ? sprintf(" (paired %.2f-%.2f)", lo, hi) : ""), (mre[km] > 0 ? mre[ks] / mre[km] : 0), target, note
        }
    }' "$RPL_RESULTS"
fi
echo
echo "busy % = receiver CPU / wall: near 100 means record itself is the bound (one core); well below, it waits for the broker or the flood."
