# [process and thread floods] Fork until refused (children sleep), then start threads until refused.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import signal
import threading

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
threads = 0
for _ in range(ESCAPE["flood"]):
    try:
        threading.Thread(target=time.sleep, args=(3600,), daemon=True).start()
    except RuntimeError:
        break
    threads += 1
report(processes=len(children), threads=threads, pids=children[:5] + children[-5:])
for pid in children:
    os.kill(pid, signal.SIGKILL)
