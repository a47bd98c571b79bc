#!/usr/bin/env bash
# idle.sh: what an idle connection costs, `smq serve-broker` and Mosquitto side by side in the
# same run. See bench/README.md.
#
#   SMQ=target/release/smq bench/idle.sh
#   N=100000 SOURCES="127.0.0.1 127.0.0.2 127.0.0.3 127.0.0.4 127.0.0.5" bench/idle.sh
#
# For each broker and transport (TRANSPORTS: tcp ws): a fresh broker, its VmRSS settled, then
# N (20,000) MQTT 3.1.1 clients (CONNECT, clean session, keep-alive KEEPALIVE seconds, 0 by
# default; 60 is what mosquitto's clients and most boards send, and costs a broker a timer per
# connection; the clients send no PINGREQ, so a run must end within 1.5 x KEEPALIVE) opened
# CONC (128) at a time and held open; VmRSS settled again. Prints bytes per connection and the seconds from the
# first connect to the last CONNACK. One source address gives about 28,000 ports to connect
# from (net.ipv4.ip_local_port_range), so past that give more in SOURCES (all of 127/8 is
# loopback on Linux). Source ports are picked at connect() (IP_BIND_ADDRESS_NO_PORT), so the
# ports an earlier run left in TIME_WAIT do not slow the next one. Every process needs N+1,024
# open files: the script raises its soft limit
# to the hard one (`ulimit -Hn`), and the hard one too when it may (as root); otherwise raise
# the hard limit first (e.g. in /etc/security/limits.conf, or `prlimit --nofile=200000 --pid $$`).
# Tables go to stdout, progress to stderr.
set -euo pipefail
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

SMQ=${SMQ:-target/release/smq}
N=${N:-20000}
CONC=${CONC:-128}
TRANSPORTS=${TRANSPORTS:-tcp ws}
BROKERS=${BROKERS:-smq mosquitto}
SOURCES=${SOURCES:-127.0.0.1}
RUN_TIMEOUT=${RUN_TIMEOUT:-600}
KEEPALIVE=${KEEPALIVE:-0}

[[ $KEEPALIVE =~ ^[0-9]+$ ]] && ((KEEPALIVE < 65536)) || bench_die "KEEPALIVE must be 0-65535 seconds, got '$KEEPALIVE'"
for var in N CONC RUN_TIMEOUT; do
    [[ ${!var} =~ ^[1-9][0-9]*$ ]] || bench_die "$var must be a positive integer, got '${!var}'"
done
for t in $TRANSPORTS; do [[ $t == tcp || $t == ws ]] || bench_die "TRANSPORTS may hold tcp and ws, got '$t'"; done
for b in $BROKERS; do [[ $b == smq || $b == mosquitto ]] || bench_die "BROKERS may hold smq and mosquitto, got '$b'"; done
for s in $SOURCES; do [[ $s =~ ^127\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || bench_die "SOURCES must be 127.x.y.z loopback addresses, got '$s'"; done

bench_init
[[ -x $SMQ ]] || bench_die "$SMQ is not an executable; run cargo build --release or set SMQ"
command -v python3 >/dev/null || bench_die "python3 not found"
# Raising the hard limit works as root (up to fs.nr_open); otherwise the hard limit stands.
hard=$(ulimit -Hn)
if [[ $hard != unlimited ]] && ((hard < N + 1024)); then
    ulimit -Hn $((N + 1024)) 2>/dev/null || true
fi
ulimit -n "$(ulimit -Hn)"
[[ $(ulimit -n) == unlimited ]] || (($(ulimit -n) >= N + 1024)) ||
    bench_die "open files limited to $(ulimit -n); N=$N needs $((N + 1024)): raise the hard limit (ulimit -Hn)"

# The clients: prints "connected OK FAILED SECONDS", then holds the sockets until killed.
cat >"$BENCH_TMP/idle.py" <<'EOF'
import asyncio, resource, socket, sys, time
transport, port, n, conc = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
sources, keepalive = sys.argv[5].split(), int(sys.argv[6])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

def connect_packet(i):
    cid = b"idle-%07d" % i
    rest = b"\x00\x04MQTT\x04\x02" + keepalive.to_bytes(2, "big") + len(cid).to_bytes(2, "big") + cid
    return b"\x10" + bytes([len(rest)]) + rest

UPGRADE = (b"GET /mqtt HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
           b"Sec-WebSocket-Protocol: mqtt\r\n\r\n")

# The source port is picked at connect(), for the whole address pair, not at bind(): bind()
# would skip every port a previous run left in TIME_WAIT, whichever broker it went to, and a
# second run from the same source would crawl (tens of seconds to accept instead of 2-3).
IP_BIND_ADDRESS_NO_PORT = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)

async def dial(source, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.setsockopt(socket.IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, 1)
        s.bind((source, 0))
        s.setblocking(False)
        await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
    except BaseException:
        s.close()
        raise
    return await asyncio.open_connection(sock=s)

def ws_frame(payload):
    mask = b"\x01\x02\x03\x04"
    return b"\x82" + bytes([0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))

async def main():
    sem = asyncio.Semaphore(conc)
    held, failed = [], [0]
    async def one(i):
        async with sem:
            try:
                r, w = await asyncio.wait_for(dial(sources[i % len(sources)], port), 30)
                if transport == "ws":
                    w.write(UPGRADE)
                    head = await asyncio.wait_for(r.readuntil(b"\r\n\r\n"), 30)
                    if b" 101 " not in head.split(b"\r\n")[0]:
                        raise ValueError("upgrade refused: %r" % head[:80])
                    w.write(ws_frame(connect_packet(i)))
                    ack = (await asyncio.wait_for(r.readexactly(6), 30))[2:]
                else:
                    w.write(connect_packet(i))
                    ack = await asyncio.wait_for(r.readexactly(4), 30)
                if ack[0] != 0x20 or ack[3] != 0:
                    raise ValueError("CONNACK %r" % ack)
                held.append((r, w))
            except Exception as e:
                failed[0] += 1
                if failed[0] <= 3:
                    print("connection %d failed: %r" % (i, e), file=sys.stderr, flush=True)
    start = time.monotonic()
    await asyncio.gather(*(one(i) for i in range(n)))
    print("connected", len(held), failed[0], "%.2f" % (time.monotonic() - start), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
EOF

rss() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# rss_settled PID: VmRSS (KiB) once two readings 0.5 s apart agree within 1% (at most 30 s).
rss_settled() {
    local prev cur i
    prev=$(rss "$1")
    for ((i = 0; i < 60; i++)); do
        sleep 0.5
        cur=$(rss "$1")
        ((cur * 100 >= prev * 99 && cur * 100 <= prev * 101)) && break
        prev=$cur
    done
    echo "$cur"
}

# start_broker BROKER TRANSPORT: sets BROKER_PID and BROKER_PORT.
start_broker() {
    local log=$BENCH_TMP/serve-broker.log scheme=mqtt
    if [[ $1 == mosquitto ]]; then
        if [[ $2 == ws ]]; then
            local port
            port=$(bench_random_port)
            bench_start_mosquitto "max_connections -1" "connection_messages false" \
                "listener $port 127.0.0.1" "protocol websockets"
            BROKER_PORT=$port
        else
            bench_start_mosquitto "max_connections -1" "connection_messages false"
            BROKER_PORT=$MOSQ_PORT
        fi
        BROKER_PID=$MOSQ_PID
        return
    fi
    [[ $2 == ws ]] && scheme=ws
    : >"$log"
    "$SMQ" serve-broker --listen "$scheme://127.0.0.1:0" --max-connections $((N + 1000)) --sys-interval 0 >"$log" 2>&1 &
    BROKER_PID=$!
    bench_track "$BROKER_PID"
    bench_wait_for "$log" "^smq: listening on $scheme://" 10 "$BROKER_PID" || bench_die "serve-broker did not start: $(cat "$log")"
    BROKER_PORT=$(sed -n "s|^smq: listening on $scheme://127\.0\.0\.1:\([0-9]*\)$|\1|p" "$log" | head -1)
}

# mosquitto_has_websockets: whether this Mosquitto opens a WebSocket listener (Debian's 2.0.11
# is built without; it then refuses to start, so that pairing is skipped rather than fatal).
mosquitto_has_websockets() {
    local dir port pid ok=1
    dir=$(mktemp -d "$BENCH_TMP/wsprobe.XXXXXX")
    port=$(bench_random_port)
    printf 'listener %s 127.0.0.1\nprotocol websockets\nallow_anonymous true\n' "$port" >"$dir/conf"
    "$MOSQUITTO" -c "$dir/conf" >"$dir/log" 2>&1 &
    pid=$!
    bench_track "$pid"
    bench_wait_for "$dir/log" ' running$' 5 "$pid" && ok=0
    bench_stop "$pid"
    return "$ok"
}

ROWS=$BENCH_TMP/rows.tsv
: >"$ROWS"
for transport in $TRANSPORTS; do
    for broker in $BROKERS; do
        if [[ $broker == mosquitto && $transport == ws ]] && ! mosquitto_has_websockets; then
            bench_log "ws   mosquitto: this build has no WebSocket listener; skipped"
            continue
        fi
        load=$(awk '{ print $1 }' /proc/loadavg)
        start_broker "$broker" "$transport"
        rss0=$(rss_settled "$BROKER_PID")
        : >"$BENCH_TMP/idle.out"
        python3 "$BENCH_TMP/idle.py" "$transport" "$BROKER_PORT" "$N" "$CONC" "$SOURCES" "$KEEPALIVE" \
            >"$BENCH_TMP/idle.out" 2>"$BENCH_TMP/idle.err" </dev/null &
        ipid=$!
        bench_track "$ipid"
        bench_wait_for "$BENCH_TMP/idle.out" '^connected [0-9]+ [0-9]+ ' "$RUN_TIMEOUT" "$ipid" ||
            bench_die "$broker $transport: no result after ${RUN_TIMEOUT}s: $(head -c 1000 "$BENCH_TMP/idle.err")"
        read -r _ ok failed secs <"$BENCH_TMP/idle.out"
        rss1=$(rss_settled "$BROKER_PID")
        bench_stop "$ipid"
        bench_stop "$BROKER_PID"
        per=$(awk -v a="$rss0" -v b="$rss1" -v n="$ok" 'BEGIN { printf "%.0f", n ? (b - a) * 1024 / n : 0 }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$transport" "$broker" "$ok" "$failed" "$rss0" "$rss1" "$per" "$secs" "$load" >>"$ROWS"
        bench_log "$(printf '%-4s %-10s %s connected, %s failed in %s s; VmRSS %s -> %s KiB: %s bytes/conn  load %s' \
            "$transport" "$broker" "$ok" "$failed" "$secs" "$rss0" "$rss1" "$per" "$load")"
    done
done

echo "idle connections: N=$N, keep-alive $KEEPALIVE s, $(nproc) cores, load at start $(awk '{ print $1 }' /proc/loadavg | head -1)"
awk -F'\t' '
    { key = $1 SUBSEP $2; per[key] = $7; secs[key] = $8; seen[$1] = 1
      printf "%-4s %-10s %7d conns %5d failed  %8d -> %8d KiB  %6d bytes/conn  accept %6.2f s  load %s\n", $1, $2, $3, $4, $5, $6, $7, $8, $9 }
    END {
        for (t in seen) {
            s = t SUBSEP "smq"; m = t SUBSEP "mosquitto"
            if ((s in per) && (m in per) && per[m] > 0 && secs[m] > 0)
                printf "%-4s serve-broker/mosquitto: bytes/conn %.2fx, accept time %.2fx\n", t, per[s] / per[m], secs[s] / secs[m]
        }
    }' "$ROWS"
