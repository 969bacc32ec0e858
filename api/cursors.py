"""The `after` query parameter of the lists that page by id: only a cursor this service could have given.

A cursor is the last id of a page (ids are time-ordered, `core/ids.py`), so it has that list's id prefix and
shape. A made-up one (`after=abc`, a job id for the model list) used to answer an empty 200 page, which reads
as "you have nothing": now it is a 422 naming `query.after`. A well-formed id whose item was deleted since is
still a good cursor (the position in time stays), so existence is not checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from core.ids import ID_PATTERN


def id_cursor(prefix: str, example: str) -> object:
    shape = ID_PATTERN.pattern.removeprefix("^[a-z]{2,4}_")
    return Query(
        pattern=f"^{prefix}_{shape}",
        description=f"`next_cursor` of the previous page (a `{prefix}_` id); anything else is a 422",
        examples=[example],
    )


ModelCursor = Annotated[str | None, id_cursor("mdl", "mdl_018f2a7c9b1e4d2a8f3c5e7a9b10")]
JobCursor = Annotated[str | None, id_cursor("job", "job_018f2a7c9b1e4d2a8f3c5e7a9b11")]
SampleCursor = Annotated[str | None, id_cursor("smp", "smp_018f2a7c9b1e4d2a8f3c5e7a9b12")]
