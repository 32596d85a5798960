"""Where LangGraph checkpoints live: SQLite in the runs folder (default) or a PostgreSQL server shared by hosts.
Either way they name the run's files relative to the runs folder (RelocatableSaver), so the folder may move."""

from __future__ import annotations

import copy
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import BaseCheckpointSaver, Checkpoint, CheckpointTuple
from langgraph.checkpoint.sqlite import SqliteSaver

from kernelagent.errors import UsageError
from kernelagent.runs.paths import legacy_roots, loaded, stored

CHECKPOINT_DB = "checkpoints.sqlite"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Several runs of a suite write to one SQLite file from several threads/connections: wait for the lock, don't fail.
SQLITE_BUSY_TIMEOUT_S = 60.0


@contextmanager
def open_saver(url: str | None, runs_dir: str | Path) -> Iterator[BaseCheckpointSaver]:
    """A ready saver: PostgresSaver for a postgresql:// URL (tables created on first use), else SqliteSaver; either
    one storing the paths of runs_dir relative to it."""
    if url and url.startswith(POSTGRES_SCHEMES):
        with _postgres_saver(url) as saver:
            yield RelocatableSaver(saver, runs_dir)
        return
    if url:
        raise UsageError(f"unsupported checkpoint URL {redact(url)!r}: use postgresql://user@host:port/db")
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(Path(runs_dir) / CHECKPOINT_DB, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        yield RelocatableSaver(SqliteSaver(conn), runs_dir)
    finally:
        conn.close()


class RelocatableSaver(BaseCheckpointSaver):
    """A saver whose checkpoints and pending writes (Send payloads included) name the run's files from the runs
    folder, resolved against the folder's place when they are loaded: a runs folder moved or copied resumes where it
    is. (PostgresSaver keeps string channels outside its serializer, so this wraps the saver, not the serializer.)"""

    def __init__(self, inner: BaseCheckpointSaver, runs_dir: str | Path) -> None:
        super().__init__(serde=inner.serde)
        self.inner = inner
        self.runs_dir = Path(runs_dir)

    @property
    def config_specs(self) -> list:
        return self.inner.config_specs

    def get_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        return self._loaded(self.inner.get_tuple(config))

    def list(self, config: RunnableConfig | None, **options: Any) -> Iterator[CheckpointTuple]:
        for found in self.inner.list(config, **options):
            yield self._loaded(found)

    def put(self, config: RunnableConfig, checkpoint: Checkpoint, metadata: dict, new_versions: dict) -> RunnableConfig:
        values = stored(checkpoint["channel_values"], self.runs_dir)
        return self.inner.put(config, {**checkpoint, "channel_values": values}, metadata, new_versions)

    def put_writes(self, config: RunnableConfig, writes: Sequence[tuple[str, Any]], task_id: str,
                   task_path: str = "") -> None:
        writes = [(channel, stored(value, self.runs_dir)) for channel, value in writes]
        self.inner.put_writes(config, writes, task_id, task_path)

    def delete_thread(self, thread_id: str) -> None:
        self.inner.delete_thread(thread_id)

    def get_next_version(self, current: Any, channel: None) -> Any:
        return self.inner.get_next_version(current, channel)

    def with_allowlist(self, extra_allowlist: Any) -> RelocatableSaver:
        clone = copy.copy(self)
        clone.inner = self.inner.with_allowlist(extra_allowlist)
        clone.serde = clone.inner.serde
        return clone

    def _loaded(self, found: CheckpointTuple | None) -> CheckpointTuple | None:
        if found is None:
            return None
        values, writes = found.checkpoint["channel_values"], found.pending_writes
        legacy = legacy_roots([values, [value for _, _, value in writes or []]])  # absolute paths of older versions
        if writes is not None:
            writes = [(task, channel, loaded(value, self.runs_dir, legacy)) for task, channel, value in writes]
        values = loaded(values, self.runs_dir, legacy)
        return found._replace(checkpoint={**found.checkpoint, "channel_values": values}, pending_writes=writes)


@contextmanager
def _postgres_saver(url: str) -> Iterator[BaseCheckpointSaver]:
    import psycopg
    from langgraph.checkpoint.postgres import PostgresSaver
    from psycopg.rows import dict_row

    try:
        # The settings PostgresSaver.from_conn_string uses; connecting here lets a bad URL become a clear error.
        conn = psycopg.Connection.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except psycopg.OperationalError as err:
        raise UsageError(f"cannot connect to the checkpoint database {redact(url)}: {_first_line(err)}") from err
    with conn:
        saver = PostgresSaver(conn)
        saver.setup()  # idempotent: creates or migrates the checkpoint tables
        yield saver


def redact(url: str | None) -> str | None:
    """The URL without its password: what may be written to run.json or printed."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = (parts.username or "") + ":***"
    return urlunsplit(parts._replace(netloc=f"{user}@{netloc[1]}"))


def storable_url(url: str | None) -> str | None:
    """What a run folder keeps: the URL less its password (give it again via PGPASSWORD, ~/.pgpass or the option)."""
    if not url or "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}@{host}"))


def stored_context(context: dict) -> dict:
    """The run context as run.json keeps it: never a database password (resume takes it from PGPASSWORD,
    ~/.pgpass or --checkpoint-url again)."""
    return context | {"checkpoint_url": storable_url(context.get("checkpoint_url"))}


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:300]
