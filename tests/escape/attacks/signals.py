# [signals] Kill whoever we can name: the fork server, our supervisor (our parent), the judge; and signal the
# agent. An attacker learns these pids from its stack, /proc or by guessing; here it is simply told them.
# ruff: noqa: F821 - a fragment: tests/escape/run.py prepends os, time, ESCAPE, report, attempt, keep
import signal

targets = {
    "fork_server": (ESCAPE["fork_server_pid"], signal.SIGKILL),
    "supervisor": (int(os.environ["ESCAPE_SUPERVISOR_PID"]), signal.SIGKILL),
    "judge": (ESCAPE["judge_pid"], signal.SIGKILL),
    "agent": (ESCAPE["agent_pid"], signal.SIGUSR2),
}
tries = {name: attempt(lambda pid=pid, sig=sig: pid and os.kill(pid, sig)) for name, (pid, sig) in targets.items()}
tries["agent_group"] = attempt(lambda: os.killpg(os.getpgid(ESCAPE["agent_pid"]), signal.SIGUSR2))
report(tries=tries, supervisor_pid=targets["supervisor"][0])
