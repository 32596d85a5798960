# [Triton cache poisoning] Plant a "compiled kernel" in the shared Triton cache every candidate loads from, and in
# whatever cache folder we were given.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
shared = os.path.join(ESCAPE["shared_cache"], f"escape-{ESCAPE['tag']}")
given = os.environ.get("TRITON_CACHE_DIR", "")


def plant(folder):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "kernel.so"), "w") as f:
        f.write("planted")


tries = {"shared": attempt(lambda: plant(shared)), "given": attempt(lambda: plant(os.path.join(given, "planted")))}
report(tries=tries, triton_cache_dir=given, cwd=os.getcwd())
