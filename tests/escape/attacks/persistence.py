# [persistence] Leave files that outlive the run: shared memory, /tmp, /var/tmp, a POSIX message queue.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
tries = {}
for folder in ("/dev/shm", "/tmp", "/var/tmp", "/dev/mqueue"):
    path = os.path.join(folder, f"escape-{ESCAPE['tag']}")
    tries[path] = attempt(lambda path=path: open(path, "w").write("still here"))
report(tries=tries)
