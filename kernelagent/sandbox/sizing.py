"""Per-run host-memory limits sized from this host: its memory shared between the runs that may be live at once."""

from __future__ import annotations

import functools
import os

# The share of the host's memory that sandboxed runs may hold together: the rest is for the agent, the judges (which
# hold every draw's inputs and expected outputs) and the system.
RUNS_SHARE = 0.75
_FLOOR_BYTES = 2 * 1024**3  # below this torch alone does not import reliably alongside a candidate


@functools.cache
def run_memory_bytes() -> int:
    """Resident memory one run's process tree may hold (SandboxLimits.rss_bytes): RUNS_SHARE of the memory this
    host (or its container's memory cgroup) has, divided by the runs that may be live at once: the local executor
    runs one per usable core (GPU slots may allow fewer at a time, never more), KERNELAGENT_CONCURRENT_RUNS
    overrides the count."""
    override = os.environ.get("KERNELAGENT_CONCURRENT_RUNS")
    runs = int(override) if override else len(os.sched_getaffinity(0))
    return max(_FLOOR_BYTES, int(host_memory_bytes() * RUNS_SHARE / max(1, runs)))


def host_memory_bytes() -> int:
    """MemTotal, or the container's memory cgroup limit where that is lower."""
    total = _meminfo_total()
    for path in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            continue
        if text.isdigit():
            total = min(total, int(text))
    return total


def _meminfo_total() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    raise OSError("no MemTotal in /proc/meminfo")
