# [persistence] Keys in the uid's kernel keyrings (user, user-session, persistent), which outlive its processes.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
x86 = os.uname().machine == "x86_64"
ADD_KEY, KEYCTL = (248, 250) if x86 else (217, 219)
payload = b"left by an earlier run"


def add_key(ring):
    return libc.syscall(ADD_KEY, b"user", ESCAPE["key_name"].encode(), payload, len(payload), ring)


added = {str(ring): add_key(ring) for ring in (-4, -5)}
persistent = libc.syscall(KEYCTL, 22, -1, -5)  # keyctl_get_persistent, linked into the user-session keyring
if persistent >= 0:
    added["persistent"] = add_key(persistent)
report(added=added, uid=os.getuid())
