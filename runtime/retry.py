"""The one retry layer (tenacity around the SDK, whose own retries are off) and the circuit
breaker that every model call of a run shares."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from runtime.config import RetrySettings
from runtime.errors import CircuitOpenError, TransientModelError

T = TypeVar("T")


class CircuitBreaker:
    """Opens after `threshold` consecutive transient failures; fails fast while open; after
    `cooldown_s` lets exactly one probe through (half-open); a success closes it again."""

    def __init__(
        self, threshold: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.threshold, self.cooldown_s, self._clock = threshold, cooldown_s, clock
        self._lock = threading.Lock()
        self.failures = 0
        self.opened_at: float | None = None
        self._probe_in_flight = False

    @property
    def state(self) -> str:
        with self._lock:
            return self._state()

    def _state(self) -> str:
        if self.opened_at is None:
            return "closed"
        return "half-open" if self._clock() - self.opened_at >= self.cooldown_s else "open"

    def before_call(self) -> None:
        with self._lock:
            state = self._state()
            if state == "closed":
                return
            if state == "half-open" and not self._probe_in_flight:
                self._probe_in_flight = True
                return
            wait = (
                max(self.cooldown_s - (self._clock() - self.opened_at), 0.0)
                if self.opened_at is not None
                else 0.0
            )
            raise CircuitOpenError(
                f"The model server failed {self.failures} times in a row, so calls are paused; "
                f"the next attempt is allowed in {wait:.1f} s.",
                retry_after=wait,
            )

    def on_success(self) -> None:
        with self._lock:
            self.failures, self.opened_at, self._probe_in_flight = 0, None, False

    def on_failure(self) -> None:
        with self._lock:
            self.failures += 1
            if self._probe_in_flight or self.failures >= self.threshold:
                self.opened_at = self._clock()
            self._probe_in_flight = False

    def release_probe(self) -> None:
        """A probe ended without a verdict (cancelled, non-transient error): allow another."""
        with self._lock:
            self._probe_in_flight = False


@contextmanager
def verdict(breaker: CircuitBreaker | None) -> Iterator[None]:
    """Tell the breaker how the call inside ended: a transient failure counts against it, any
    other error or a cancellation only frees the probe, and a return closes it."""
    if breaker is None:
        yield
        return
    try:
        yield
    except TransientModelError:
        breaker.on_failure()
        raise
    except BaseException:
        breaker.release_probe()
        raise
    breaker.on_success()


def _retryable(settings: RetrySettings) -> Callable[[BaseException], bool]:
    def check(e: BaseException) -> bool:
        if not isinstance(e, TransientModelError):
            return False
        # A server asking for a longer pause than we accept: surface it instead of sleeping.
        return e.retry_after is None or e.retry_after <= settings.max_retry_after_s

    return check


def _wait(settings: RetrySettings) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientModelError) and exc.retry_after is not None:
            return exc.retry_after
        backoff = min(settings.initial_delay_s * 2 ** (state.attempt_number - 1), settings.max_delay_s)
        return random.uniform(backoff / 2, backoff)  # "equal jitter": spread parallel agents apart

    return wait


async def with_retries(
    attempt: Callable[[], Awaitable[T]],
    settings: RetrySettings,
    on_retry: Callable[[BaseException, float, int], None],
    sleep: Callable[[float], Awaitable[None]],
) -> T:
    """Run `attempt` until it succeeds or fails for good. `sleep` is cancellation-aware."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        delay = state.next_action.sleep if state.next_action else 0.0
        if exc is not None:
            on_retry(exc, delay, state.attempt_number)

    retrying = AsyncRetrying(
        stop=stop_after_attempt(settings.attempts),
        wait=_wait(settings),
        retry=retry_if_exception(_retryable(settings)),
        before_sleep=before_sleep,
        sleep=sleep,
        reraise=True,
    )
    return await retrying(attempt)
