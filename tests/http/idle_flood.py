#!/usr/bin/env python3
"""Holds COUNT idle TCP connections to the admin API from SOURCE (a local address such as
127.0.0.2: Linux routes all of 127/8 to the loopback), then times one ordinary request from
127.0.0.1 while they are held. Prints one JSON object:

  {"opened": n, "answers": {"503": k, ...}, "status": 200, "seconds": 0.01}

"answers" counts the status lines that the held connections received within a moment
(refusals come at once; the others are still waiting for their request, so they have none).

  idle_flood.py PORT SOURCE COUNT
"""
import json
import socket
import sys
import time


def main():
    port, source, count = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    held = []
    for _ in range(count):
        s = socket.socket()
        s.bind((source, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
        except OSError:
            s.close()
            break
        held.append(s)

    t0 = time.monotonic()
    status = 0
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as c:
            c.sendall(b"GET / HTTP/1.1\r\nHost: kdao\r\nConnection: close\r\n\r\n")
            first = c.recv(64).split(b"\r\n", 1)[0].split()
            status = int(first[1]) if len(first) > 1 else 0
    except OSError:
        status = 0
    seconds = time.monotonic() - t0

    answers = {}
    for s in held:
        s.settimeout(0.05)
        try:
            line = s.recv(64).split(b"\r\n", 1)[0].split()
            key = line[1].decode() if len(line) > 1 else "closed"
        except socket.timeout:
            key = "none"
        except OSError:
            key = "error"
        answers[key] = answers.get(key, 0) + 1
        s.close()
    print(json.dumps({"opened": len(held), "answers": answers, "status": status,
                      "seconds": round(seconds, 3)}))


if __name__ == "__main__":
    main()
