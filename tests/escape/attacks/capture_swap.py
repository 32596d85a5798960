# [agent wedge] Replace the files our stdout and stderr go to by a FIFO and a folder, and plant a FIFO at sandbox.log:
# a trusted side that reopens them by name would block forever or crash.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
swapped = {}
for fd, make in ((1, os.mkfifo), (2, os.mkdir)):
    target = os.readlink(f"/proc/self/fd/{fd}")
    swapped[target] = (
        "not a path"
        if not target.startswith("/")
        else attempt(lambda target=target, make=make: (os.unlink(target), make(target.removesuffix(" (deleted)"))))
    )
swapped["sandbox.log"] = attempt(lambda: os.mkfifo("sandbox.log"))
report(swapped=swapped)
