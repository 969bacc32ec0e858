"""One set of Alembic migrations for SQLite and Postgres; the keys CLI; the queue producer on real Redis."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, select

from core.db import Base, Database
from core.keys import hash_key, main, owner_for_key
from core.migrate import alembic_config, upgrade_to_head
from core.models import ApiKey, JobKind
from core.queue import CeleryQueue
from core.settings import get_settings


def _schema_drift(url: str) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    return diff


def test_sqlite_upgrade_downgrade_upgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade_to_head(url)
    assert _schema_drift(url) == []
    command.downgrade(alembic_config(url), "base")
    upgrade_to_head(url)


def test_postgres_schema_matches_the_models(pg_url: str) -> None:
    assert _schema_drift(pg_url) == []


def test_keys_cli_prints_a_key_that_authenticates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    assert main(["create", "--owner", "team-a"], settings=settings) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.strip().splitlines())
    key, secret = lines["api key"].strip(), lines["webhook secret"].strip()
    assert key.startswith("csk_") and secret.startswith("whsec_")
    db = Database(settings.database_url)
    with db.read() as session:
        owner = owner_for_key(session, key)
        assert owner is not None and owner.name == "team-a" and owner.webhook_secret == secret
        stored = session.scalars(select(ApiKey.key_hash)).all()
        assert stored == [hash_key(key)] and key not in stored  # only the hash is kept
        assert owner_for_key(session, key + "x") is None
    db.dispose()


def test_celery_queue_sends_json_by_task_name(settings: Any, redis_url: str) -> None:
    import redis

    queue_name = settings.gpu_queue + "-producer"
    producer = CeleryQueue(settings.model_copy(update={"broker_url": redis_url, "gpu_queue": queue_name}))
    client = redis.Redis.from_url(redis_url)
    client.delete(queue_name)
    producer.check()
    producer.send_job("job_0123", JobKind.TRAIN, "long")
    (raw,) = client.lrange(queue_name, 0, -1)
    client.delete(queue_name)
    message = json.loads(raw)
    assert message["headers"]["task"] == "consingan.train"
    assert message["content-type"] == "application/json"


def test_keys_cli_lists_and_revokes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = get_settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    main(["create", "--owner", "team-a"], settings=settings)
    main(["create", "--owner", "team-b"], settings=settings)
    keys = [
        line.split(":", 1)[1].strip() for line in capsys.readouterr().out.splitlines() if "api key" in line
    ]
    assert main(["list"], settings=settings) == 0
    listing = capsys.readouterr().out
    assert "team-a" in listing and "team-b" in listing and keys[0] not in listing  # never the key itself
    key_id = next(line.split()[0] for line in listing.splitlines() if "team-a" in line)
    assert main(["revoke", key_id], settings=settings) == 0
    assert main(["revoke", keys[1]], settings=settings) == 0  # by the key itself
    assert main(["revoke", "key_nothing"], settings=settings) == 1
    assert "no API key key_nothing" in capsys.readouterr().err
    db = Database(settings.database_url)
    with db.read() as session:
        assert owner_for_key(session, keys[0]) is None and owner_for_key(session, keys[1]) is None
    db.dispose()
    main(["list", "--owner", "team-a"], settings=settings)
    (row,) = capsys.readouterr().out.splitlines()[1:]
    assert row.split()[0] == key_id and not row.rstrip().endswith("-")  # revoked, with its time


def test_a_new_sqlite_database_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "data" / "consingan.db"
    upgrade_to_head(f"sqlite:///{path}")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
