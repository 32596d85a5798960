# [disk fill] Hold disk space the folder does not show: open a file, unlink it, fill it through the descriptor.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
held = 0
fds = []
for i in range(3):
    try:
        fd = os.open(f"hidden-{i}", os.O_RDWR | os.O_CREAT, 0o600)
        os.unlink(f"hidden-{i}")
        os.posix_fallocate(fd, 0, 512 * 1024**2)
        fds.append(fd)
        held += 512
    except OSError as err:
        report(held_mib=held, stopped_by=repr(err))
        break
report(held_mib=held)
time.sleep(5)
