# [process and thread floods] Start threads until refused, let them go; then fork until refused (children sleep).
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import signal
import threading

release = threading.Event()
threads = []
for _ in range(ESCAPE["flood"]):
    try:
        thread = threading.Thread(target=release.wait, daemon=True)
        thread.start()
    except RuntimeError:
        break
    threads.append(thread)
release.set()
for thread in threads:
    thread.join()
children = []
for _ in range(ESCAPE["flood"]):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(3600)
        os._exit(0)
    children.append(pid)
report(processes=len(children), threads=len(threads), pids=children[:5] + children[-5:])
for pid in children:
    os.kill(pid, signal.SIGKILL)
