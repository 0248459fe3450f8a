"""A cancellation token shared by every part of one run."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import TypeVar

from runtime.errors import RunCancelled

T = TypeVar("T")


class CancellationToken:
    """Thread-safe, idempotent and awaitable.

    Event loops waiting on it are woken with `call_soon_threadsafe`, so a signal handler or a
    worker thread can cancel a run that lives on another thread's loop.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cancelled = False
        self._reason = ""
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def cancelled(self) -> bool:
        return self._cancelled

    @property
    def reason(self) -> str:
        return self._reason

    def cancel(self, reason: str = "cancelled") -> bool:
        """Cancel; returns False when it was already cancelled (the call is then a no-op)."""
        with self._lock:
            if self._cancelled:
                return False
            self._cancelled, self._reason = True, reason
            waiters, self._waiters = self._waiters, []
        for loop, fut in waiters:
            if not loop.is_closed():
                loop.call_soon_threadsafe(_resolve, fut)
        return True

    def raise_if_cancelled(self, finished: object = None) -> None:
        if self._cancelled:
            raise RunCancelled(f"The run was cancelled ({self._reason}).", finished=finished)

    async def wait(self) -> None:
        """Return once the token is cancelled."""
        loop = asyncio.get_running_loop()
        with self._lock:
            if self._cancelled:
                return
            fut: asyncio.Future[None] = loop.create_future()
            entry = (loop, fut)
            self._waiters.append(entry)
        try:
            await fut
        finally:
            if not fut.done() or fut.cancelled():  # abandoned (guard finished first): forget it
                with self._lock:
                    if entry in self._waiters:
                        self._waiters.remove(entry)

    async def guard(self, awaitable: Awaitable[T]) -> T:
        """Await `awaitable`, abandoning (cancelling) it the moment the token fires.

        Cancelling the inner task closes in-flight HTTP streams and kills child processes
        through their own cleanup, then `RunCancelled` is raised.
        """
        self.raise_if_cancelled()
        task = asyncio.ensure_future(awaitable)
        waiter = asyncio.ensure_future(self.wait())
        try:
            done, _ = await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            task.cancel()
            raise
        finally:
            waiter.cancel()
        if task in done:
            return task.result()
        task.cancel()
        try:
            await task
        except BaseException:  # noqa: BLE001 - the inner failure is moot once cancelled
            pass
        raise RunCancelled(f"The run was cancelled ({self._reason}).")


def _resolve(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)
