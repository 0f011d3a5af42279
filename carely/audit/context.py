"""Who is acting, and in which request: set once per request or job, read by audit_record().

A context variable rather than a thread-local, so it is right under ASGI and in Celery tasks.
"""

from __future__ import annotations

import contextlib
import contextvars
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

from carely.audit.models import ActorType


@dataclass(frozen=True)
class Actor:
    type: str
    id: str = ""

    @classmethod
    def user(cls, user_id: object) -> Actor:
        return cls(ActorType.USER, str(user_id))

    @classmethod
    def api_key(cls, key_id: object) -> Actor:
        return cls(ActorType.API_KEY, str(key_id))

    @classmethod
    def system(cls, job: str) -> Actor:
        return cls(ActorType.SYSTEM, job)


ANONYMOUS = Actor(ActorType.ANONYMOUS)

_actor: contextvars.ContextVar[Actor] = contextvars.ContextVar("audit_actor", default=ANONYMOUS)
_request_id: contextvars.ContextVar[str] = contextvars.ContextVar("audit_request_id", default="")

# A request id from a proxy is kept only when it looks like one; anything else could smuggle data.
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{8,64}$")


def clean_request_id(value: str | None) -> str:
    if value and _REQUEST_ID_RE.match(value):
        return value
    return uuid.uuid4().hex


def current_actor() -> Actor:
    return _actor.get()


def current_request_id() -> str:
    return _request_id.get()


def set_actor(actor: Actor) -> None:
    _actor.set(actor)


@contextlib.contextmanager
def acting_as(actor: Actor, *, request_id: str | None = None) -> Iterator[None]:
    """Run a block (a task, a command) as ``actor``; restores the previous context after."""
    actor_token = _actor.set(actor)
    request_token = _request_id.set(request_id or _request_id.get() or uuid.uuid4().hex)
    try:
        yield
    finally:
        _actor.reset(actor_token)
        _request_id.reset(request_token)


def bind_request(request_id: str, actor: Actor) -> tuple[contextvars.Token, contextvars.Token]:
    return _request_id.set(request_id), _actor.set(actor)


def unbind_request(tokens: tuple[contextvars.Token, contextvars.Token]) -> None:
    _request_id.reset(tokens[0])
    _actor.reset(tokens[1])
