"""What the PostgreSQL benchmarks share: their own database, created when missing, and a free
loopback port for the fake provider. Imported as ``bench._support`` (the scripts put the
repository root on sys.path)."""

from __future__ import annotations

import os
import socket


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def ensure_database() -> None:
    """Create the database DATABASE_URL names when it does not exist yet (migrations are the
    caller's: ``call_command("migrate")`` after ``django.setup()``)."""
    import psycopg

    url = os.environ["DATABASE_URL"]
    name = url.rsplit("/", 1)[-1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
