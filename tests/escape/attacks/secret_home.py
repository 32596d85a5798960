# [secret read] Read the agent's ~/.config (the real home, not the HOME the sandbox gave us) and anything under it.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
found = {}
for path in (ESCAPE["home_secret"], os.path.expanduser("~root/.config"), "/root/.config"):
    found[path] = attempt(lambda path=path: open(path).read() if os.path.isfile(path) else os.listdir(path))
leaked = any(ESCAPE["secret"] in value for value in found.values())
report(tries=found, leaked=ESCAPE["secret"] if leaked else None)
