"""Run a generator in a forked child process, one item ahead of the caller (ADR 0008).

Preparing a batch (reading, validating, deciding, rendering, encrypting) is pure Python and
about as much work as writing it; threads share one interpreter lock, so a forked process
prepares the next batch while the caller writes this one. The pipe's back-pressure keeps the
child at most an item or two ahead, so memory stays flat.

The caller gets the items in order. An exception of one of the ``expected`` types raised in the
child is raised again in the caller as the same type with the same attributes; anything else
becomes a ``RuntimeError`` carrying the child's traceback. Used by the contact import and the
campaign materialiser.
"""

from __future__ import annotations

import gc
import multiprocessing
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from django.db import connections

T = TypeVar("T")


def _rebuilt(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def run_ahead(
    produce: Callable[[], Iterable[T]],
    *,
    name: str,
    what: str,
    expected: tuple[type[BaseException], ...] = (),
    reconnect: bool = False,
) -> Iterator[T]:
    """The items of ``produce()``, made in a forked process named ``name``; ``what`` names it
    in errors ("the import's reading process").

    ``reconnect``: the child reads the database. Connections are closed before the fork so
    each side opens its own (a shared socket would interleave both sides' queries), and the
    child closes its own when done. Without it the child must not touch the database."""
    if reconnect:
        connections.close_all()
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        receiver.close()
        # What the child inherits (Django, the apps, the parent's state) outlives it: frozen,
        # the cycle collector no longer walks it again and again, and its pages stay shared
        # with the parent. A batch makes tens of thousands of short-lived objects, so the
        # first generation is collected less often. Together a sixth of the materialiser's
        # reading time (bench/README.md); the collector still runs, so memory stays bounded.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        try:
            for item in produce():
                sender.send(("item", item))
            sender.send(("end",))
        except expected as exc:
            sender.send(("raise", type(exc), exc.args, dict(exc.__dict__)))
        except BaseException:  # reported to the caller, which raises it
            sender.send(("crash", traceback.format_exc()))
        finally:
            sender.close()
            if reconnect:
                connections.close_all()

    process = context.Process(target=child, name=name, daemon=True)
    process.start()
    sender.close()
    try:
        while True:
            try:
                message = receiver.recv()
            except EOFError:
                process.join(5)
                raise RuntimeError(
                    f"{what} ended unexpectedly (exit code {process.exitcode})"
                ) from None
            kind = message[0]
            if kind == "end":
                return
            if kind == "item":
                yield message[1]
            elif kind == "raise":
                raise _rebuilt(message[1], message[2], message[3])
            else:
                raise RuntimeError(f"{what} failed:\n{message[1]}")
    finally:
        receiver.close()
        if process.is_alive():
            process.terminate()
        process.join(5)
