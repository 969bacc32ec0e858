"""Resource ids: a type prefix + 12 hex digits of milliseconds + 16 random hex digits.

Time-ordered, so `ORDER BY id` is creation order and the last id of a page is a valid cursor;
random enough to be unguessable; built only from [a-z0-9_], so they are safe inside storage keys.
"""

from __future__ import annotations

import re
import secrets
import time

ID_PATTERN = re.compile(r"^[a-z]{2,4}_[0-9a-f]{28}$")


def new_id(prefix: str) -> str:
    millis = int(time.time() * 1000) & 0xFFFFFFFFFFFF
    return f"{prefix}_{millis:012x}{secrets.token_hex(8)}"


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))
