# [network] Set up an io_uring: its SOCKET and CONNECT operations open and connect sockets without the socket and
# connect calls, past a filter on those (an outside attacker reached a host listener that way on the CPU rules).
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
params = ctypes.create_string_buffer(120)  # struct io_uring_params
fd = libc.syscall(425, 8, params)  # io_uring_setup: the same number on x86-64 and aarch64
errno_seen = ctypes.get_errno()
if fd >= 0:
    os.close(fd)
report(tries={"io_uring_setup": "ok" if fd >= 0 else f"refused (errno {errno_seen})"})
