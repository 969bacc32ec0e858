"""Resource ids: a type prefix + 12 hex digits of milliseconds + 16 hex digits that are random per millisecond.

Time-ordered, so `ORDER BY id` is creation order and the last id of a page is a valid cursor; random enough to
be unguessable; built only from [a-z0-9_], so they are safe inside storage keys. Within one process, ids made
in the same millisecond still sort in creation order (as ULIDs do): the second one's random part is the
first one's plus a random step, instead of a fresh draw that would sort before it half the time.
"""

from __future__ import annotations

import re
import secrets
import threading
import time

ID_PATTERN = re.compile(r"^[a-z]{2,4}_[0-9a-f]{28}$")
_RANDOM_BITS = 64
_lock = threading.Lock()
_last = (0, 0)  # (millis, random part) of the newest id made here


def new_id(prefix: str) -> str:
    global _last
    with _lock:
        millis = int(time.time() * 1000) & 0xFFFFFFFFFFFF
        last_millis, last_random = _last
        if millis <= last_millis:  # the same millisecond, or the clock stepped back: keep counting up
            millis, random_part = last_millis, last_random + 1 + secrets.randbelow(1 << 20)
            if random_part >> _RANDOM_BITS:  # overflow: borrow the next millisecond
                millis, random_part = millis + 1, secrets.randbits(_RANDOM_BITS - 1)
        else:
            random_part = secrets.randbits(_RANDOM_BITS - 1)  # the top bit left free to count up into
        _last = (millis, random_part)
    return f"{prefix}_{millis:012x}{random_part:016x}"


def is_valid_id(value: str) -> bool:
    return bool(ID_PATTERN.match(value))
