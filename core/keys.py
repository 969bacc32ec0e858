"""API keys: created by an operator, stored as sha256 hashes, shown in clear exactly once.

python -m core.keys create --owner NAME     # a new key for NAME (and the owner, with its webhook secret)
python -m core.keys list [--owner NAME]     # id, first characters, owner, created, revoked
python -m core.keys revoke KEY_ID           # or the key itself; requests with it get 401 from then on
"""

from __future__ import annotations

import argparse
import datetime as dt
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


LOCAL_OWNER = "local"  # the owner the embedded runner creates on a fresh database


def first_key(session: Session) -> str | None:
    """On a database with no API key at all (a fresh `make run`): a key for a `local` owner, in clear (only
    its hash is stored, so this is the one time it can be shown). None when any key exists, revoked ones
    included: a service someone set up is never handed a key by a restart."""
    if session.scalar(select(ApiKey.id).limit(1)) is not None:
        return None
    return create_key(session, get_or_create_owner(session, LOCAL_OWNER))


class KeyNotFound(Exception):
    pass


def list_keys(session: Session, owner_name: str | None = None) -> list[ApiKey]:
    query = select(ApiKey).join(Owner).order_by(ApiKey.id)
    if owner_name is not None:
        query = query.where(Owner.name == owner_name)
    return list(session.scalars(query))


def revoke_key(session: Session, id_or_key: str) -> ApiKey:
    """By the id `list` shows, or by the key itself. Revoking twice keeps the first time."""
    column = ApiKey.key_hash if id_or_key.startswith(KEY_PREFIX) else ApiKey.id
    value = hash_key(id_or_key) if id_or_key.startswith(KEY_PREFIX) else id_or_key
    api_key = session.scalar(select(ApiKey).where(column == value))
    if api_key is None:
        raise KeyNotFound(f"no API key {id_or_key if column is ApiKey.id else id_or_key[:10] + '...'}")
    if api_key.revoked_at is None:
        api_key.revoked_at = utcnow()
    return api_key


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core.keys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="create an API key (and the owner if new)")
    create.add_argument("--owner", required=True, help="owner name, e.g. a team or service")
    listing = sub.add_parser("list", help="list API keys (never the keys themselves: only hashes are stored)")
    listing.add_argument("--owner", help="only this owner's keys")
    revoke = sub.add_parser("revoke", help="revoke an API key")
    revoke.add_argument("key", help="the key's id (from `list`) or the key itself")
    return parser


def _when(value: dt.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def main(argv: list[str] | None = None, settings: Settings | None = None) -> int:
    args = _parser().parse_args(argv)
    settings = settings or get_settings()
    if settings.is_sqlite:
        # Embedded mode has no separate migrate step: make the key usable on a fresh checkout.
        from core.migrate import upgrade_to_head

        upgrade_to_head(settings.database_url)
    db = Database(settings.database_url)
    try:
        with db.transaction() as session:
            if args.command == "create":
                owner = get_or_create_owner(session, args.owner)
                key = create_key(session, owner)
                print(f"owner:          {args.owner}")
                print(f"api key:        {key}")
                print(f"webhook secret: {owner.webhook_secret}")
            elif args.command == "list":
                print(f"{'id':34}  {'starts':10}  {'owner':20}  {'created':20}  revoked")
                for api_key in list_keys(session, args.owner):
                    print(
                        f"{api_key.id:34}  {api_key.prefix:10}  {api_key.owner.name:20}  "
                        f"{_when(api_key.created_at):20}  {_when(api_key.revoked_at)}"
                    )
            else:
                revoked = revoke_key(session, args.key)
                print(f"revoked {revoked.id} ({revoked.prefix}..., owner {revoked.owner.name})")
    except KeyNotFound as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    finally:
        db.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
