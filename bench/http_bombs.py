#!/usr/bin/env python3
"""Peak memory of `smq serve-broker --http` under concurrent gzip bombs (issue 12, item 6).

Starts the broker on 127.0.0.1 (ports picked by the OS), reads its resident memory, then sends
CLIENTS (300) pushes at once, each a ~16 KiB gzip body that decodes to exactly --http-max-body
(16 MiB) of valid JSON, and reports the broker's peak resident memory (VmHWM) with the answers'
status counts. docs/http-push.md documents that the bytes pushes hold stay within
4 × --http-max-body; the peak minus the idle size shows whether they do.

    python3 bench/http_bombs.py [path/to/smq]     # default target/release/smq
    CLIENTS=300 MAX_BODY=16MiB ROUNDS=3 SETTLE=15 python3 bench/http_bombs.py
"""

import collections
import gzip
import os
import re
import socket
import subprocess
import sys
import threading
import time

SMQ = sys.argv[1] if len(sys.argv) > 1 else "target/release/smq"
CLIENTS = int(os.environ.get("CLIENTS", "300"))
ROUNDS = int(os.environ.get("ROUNDS", "3"))
MAX_BODY = os.environ.get("MAX_BODY", "16MiB")
SETTLE = int(os.environ.get("SETTLE", "15"))


def size(text):
    m = re.fullmatch(r"(\d+)(KiB|MiB)?", text)
    return int(m.group(1)) << {"KiB": 10, "MiB": 20, None: 0}[m.group(2)]


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def main():
    decoded = size(MAX_BODY)
    pad = decoded - len('{"pad":""}')
    body = gzip.compress(b'{"pad":"' + b"x" * pad + b'"}', 9)
    broker = subprocess.Popen(
        [SMQ, "serve-broker", "--listen", "mqtt://127.0.0.1:0", "--listen", "ws://127.0.0.1:0",
         "--http", "--http-max-body", MAX_BODY, "--sys-interval", "0"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in broker.stderr:
            m = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("smq serve-broker did not print its ws:// address")
        threading.Thread(target=lambda: broker.stderr.read(), daemon=True).start()
        idle = status_kib(broker.pid, "VmRSS")
        head = (f"POST /data HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
        statuses = collections.Counter()
        lock = threading.Lock()

        def push(barrier):
            status = "error"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=120) as s:
                    barrier.wait()
                    s.sendall(head + body)
                    answer = b""
                    while b"\r\n" not in answer:
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        answer += chunk
                    status = answer.split(b" ")[1].decode() if answer else "closed"
            except (OSError, threading.BrokenBarrierError) as e:
                status = type(e).__name__
            with lock:
                statuses[status] += 1

        for _ in range(ROUNDS):
            barrier = threading.Barrier(CLIENTS, timeout=60)
            threads = [threading.Thread(target=push, args=(barrier,)) for _ in range(CLIENTS)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        peak = status_kib(broker.pid, "VmHWM")
        after = status_kib(broker.pid, "VmRSS")
        # tokio ends blocking threads idle for 10 s; their allocator caches go with them.
        time.sleep(SETTLE)
        settled = status_kib(broker.pid, "VmRSS")
        print(f"clients={CLIENTS} rounds={ROUNDS} body={len(body)} B gzip -> {decoded} B "
              f"(--http-max-body {MAX_BODY}, documented bound 4 x = {4 * decoded >> 20} MiB)")
        print(f"answers: {dict(sorted(statuses.items()))}")
        print(f"broker RSS: idle {idle >> 10} MiB, peak {peak >> 10} MiB "
              f"(+{(peak - idle) >> 10} MiB), after {after >> 10} MiB, "
              f"{SETTLE} s later {settled >> 10} MiB")
    finally:
        broker.terminate()
        broker.wait(timeout=30)


if __name__ == "__main__":
    main()
