"""Where LangGraph checkpoints live: SQLite in the runs folder (default) or a PostgreSQL server shared by hosts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.sqlite import SqliteSaver

from kernelagent.errors import UsageError

CHECKPOINT_DB = "checkpoints.sqlite"
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# Several runs of a suite write to one SQLite file from several threads/connections: wait for the lock, don't fail.
SQLITE_BUSY_TIMEOUT_S = 60.0


@contextmanager
def open_saver(url: str | None, runs_dir: str | Path) -> Iterator[BaseCheckpointSaver]:
    """A ready saver: PostgresSaver for a postgresql:// URL (tables created on first use), else SqliteSaver."""
    if url and url.startswith(POSTGRES_SCHEMES):
        with _postgres_saver(url) as saver:
            yield saver
        return
    if url:
        raise UsageError(f"unsupported checkpoint URL {redact(url)!r}: use postgresql://user@host:port/db")
    Path(runs_dir).mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(Path(runs_dir) / CHECKPOINT_DB, check_same_thread=False, timeout=SQLITE_BUSY_TIMEOUT_S)
    try:
        yield SqliteSaver(conn)
    finally:
        conn.close()


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
