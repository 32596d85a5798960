# [metadata and limits of others] Set the agent's resource limits (its open files to 4: the agent crashed, or its CPU
# time to 1 s: it was killed and dumped a core holding its key) and change the metadata of a file of ours that the
# run can name (setuid bits, owner, an extended attribute): Landlock has no right for either.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import resource

canary = ESCAPE["canary"]
tries = {
    "agent_nofile": attempt(lambda: resource.prlimit(ESCAPE["agent_pid"], resource.RLIMIT_NOFILE, (4, 4))),
    "supervisor_cpu": attempt(
        lambda: resource.prlimit(int(os.environ.get("ESCAPE_SUPERVISOR_PID", "1")), resource.RLIMIT_CPU, (1, 1))
    ),
    "chmod_setuid": attempt(lambda: os.chmod(canary, 0o6777)),
    "chown": attempt(lambda: os.chown(canary, 65534, 65534)),
    "setxattr": attempt(lambda: os.setxattr(canary, "user.escape", b"candidate-was-here")),
}
report(tries=tries)
