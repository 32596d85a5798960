# [persistence] SysV IPC objects that outlive the run: a shared-memory segment, a semaphore set, a message queue.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
key = ESCAPE["ipc_key"]
IPC_CREAT = 0o1000
made = {
    "shm": libc.shmget(key, 1 << 20, IPC_CREAT | 0o666),
    "sem": libc.semget(key, 1, IPC_CREAT | 0o666),
    "msg": libc.msgget(key, IPC_CREAT | 0o666),
}
report(made=made)
