"""Memory per idle client of the proxy: starts `pgvshard` (the embedded
default) on a free port, opens N sessions (protocol 3.0 startup, trust)
that then stay idle, and prints the RSS before and after as a table row.
Usage: python3 scripts/idle_client_memory.py target/release/pgvshard 1000
(raise `ulimit -n` above N first)."""

import re
import socket
import struct
import subprocess
import sys
import tempfile
import time

binary, n = sys.argv[1], int(sys.argv[2])
data = tempfile.mkdtemp(prefix="pgvshard-idle-")
proxy = subprocess.Popen(
    [binary, "--listen", "127.0.0.1:0", "--data-dir", data],
    stdout=subprocess.PIPE,
    stderr=subprocess.DEVNULL,
    text=True,
)
port = None
for line in proxy.stdout:
    m = re.search(r"proxy on 127\.0\.0\.1:(\d+)", line)
    if m:
        port = int(m.group(1))
        break


def rss_kib():
    for line in open(f"/proc/{proxy.pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])


def session():
    s = socket.create_connection(("127.0.0.1", port))
    body = struct.pack("!i", 196608) + b"user\0postgres\0database\0postgres\0\0"
    s.sendall(struct.pack("!i", len(body) + 4) + body)
    got = b""
    while not got.endswith(b"Z\0\0\0\x05I"):
        got += s.recv(4096)
    return s


try:
    for s in [session() for _ in range(50)]:  # warm-up: pools, allocator
        s.close()
    time.sleep(1)
    before = rss_kib()
    held = [session() for _ in range(n)]
    time.sleep(1)
    after = rss_kib()
    print("| idle clients | RSS before (KiB) | RSS after (KiB) | KiB per client |")
    print("|---|---|---|---|")
    print(f"| {n} | {before} | {after} | {(after - before) / n:.1f} |")
finally:
    proxy.kill()
