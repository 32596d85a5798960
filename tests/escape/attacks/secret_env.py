# [secret read] Our own environment: the agent's keys or any variable it did not mean to pass.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
env = dict(os.environ)
report(canary=env.get("ESCAPE_CANARY"), names=sorted(env), leaked=[v for v in env.values() if ESCAPE["secret"] in v])
