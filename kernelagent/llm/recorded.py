"""LLM calls that leave a record in the run folder and are asked once per task, even across resumes."""

from __future__ import annotations

from kernelagent import budget
from kernelagent.llm.client import LLMSettings, ask
from kernelagent.runs.store import RunStore


def ask_recorded(
    store: RunStore, task: str, system: str, user: str, settings: LLMSettings, meta: dict[str, str | int]
) -> str:
    """The reply for `task` (e.g. "seed2_round3"); a node re-run after a crash reuses the stored reply."""
    stored = store.llm_reply(task)
    if stored is not None:
        return stored
    # The budget check comes before the call; the reservation holds until the usage is on disk, so concurrent seeds
    # see each other's calls and never pass a limit together.
    with budget.reserve(store, task, system + user):
        reply = ask(settings, system, user, meta)
        store.record_llm(
            task,
            f"# system\n{system}\n\n# user\n{user}",
            reply.text,
            {"input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens, "model": settings.model},
        )
    return reply.text
