# [survivors] Processes meant to outlive the run: a double-forked daemon, a setsid'd session leader and a child
# that ignores SIGTERM and SIGHUP; each tells us its pid, then sleeps.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import signal

r, w = os.pipe()


def linger():
    for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)
    os.write(w, f"{os.getpid()}\n".encode())
    time.sleep(3600)
    os._exit(0)


if os.fork() == 0:  # double fork: the daemon's parent exits at once, so it is nobody's child
    if os.fork() == 0:
        os.setsid()
        linger()
    os._exit(0)
if os.fork() == 0:
    os.setsid()
    linger()
if os.fork() == 0:
    linger()
os.close(w)
time.sleep(0.3)
os.set_blocking(r, False)
pids = [int(p) for p in os.read(r, 4096).split()]
report(pids=pids)
