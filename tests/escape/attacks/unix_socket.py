# [network] A Unix socket with a path crosses the network namespace: connect to a listener the agent's side keeps in
# /tmp and hand it the run's data.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import socket


def send_out():
    client = socket.socket(socket.AF_UNIX)
    client.settimeout(5)
    client.connect(ESCAPE["listener_path"])
    client.sendall(b"exfiltrated by a candidate")
    client.close()


report(tries={"connect": attempt(send_out)})
