"""API keys: created by an operator, stored as sha256 hashes, shown in clear exactly once.

    python -m core.keys create --owner NAME

prints a new key for NAME (creating the owner, with its webhook signing secret, if needed).
"""

from __future__ import annotations

import argparse
import hashlib
import secrets
import sys

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.db import Database
from core.ids import new_id
from core.models import ApiKey, Owner, utcnow
from core.settings import Settings, get_settings
from core.webhooks import new_secret

KEY_PREFIX = "csk_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def get_or_create_owner(session: Session, name: str) -> Owner:
    owner = session.scalar(select(Owner).where(Owner.name == name))
    if owner is None:
        owner = Owner(id=new_id("own"), name=name, webhook_secret=new_secret(), created_at=utcnow())
        session.add(owner)
        session.flush()
    return owner


def create_key(session: Session, owner: Owner) -> str:
    """Returns the key in clear; only its hash is stored."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    session.add(ApiKey(id=new_id("key"), owner_id=owner.id, key_hash=hash_key(key), prefix=key[:10]))
    return key


def owner_for_key(session: Session, key: str) -> Owner | None:
    # The lookup is by hash, so comparing secrets in constant time is not needed: the hash is not secret.
    api_key = session.scalar(
        select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked_at.is_(None))
    )
    return api_key.owner if api_key else None


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m core.keys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an API key (and the owner if new)")
    create.add_argument("--owner", required=True, help="owner name, e.g. a team or service")
    args = parser.parse_args(argv)

    settings = settings or get_settings()
    if settings.is_sqlite:
        # Embedded mode has no separate migrate step: make the key usable on a fresh checkout.
        from core.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
    db = Database(settings.database_url)
    with db.transaction() as session:
        owner = get_or_create_owner(session, args.owner)
        key = create_key(session, owner)
        secret = owner.webhook_secret
    db.dispose()
    print(f"owner:          {args.owner}")
    print(f"api key:        {key}")
    print(f"webhook secret: {secret}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
