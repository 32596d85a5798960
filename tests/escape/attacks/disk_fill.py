# [disk fill] Fill the disk from our own folder with many files, each below the per-file size limit.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
written = 0
for i in range(64):
    try:
        fd = os.open(f"fill-{i}", os.O_WRONLY | os.O_CREAT, 0o644)
        os.posix_fallocate(fd, 0, 128 * 1024**2)  # allocated blocks, as written data would be
        os.close(fd)
    except OSError as err:
        report(written_mib=written, stopped_by=repr(err))
        break
    written += 128
    time.sleep(0.05)
report(written_mib=written)
