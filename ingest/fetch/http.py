"""One polite HTTP client: a rate limiter per host group, retries with backoff, Retry-After.

Every request to a group (``"ncbi"`` for E-utilities and the OA service, ``"ctgov"``) starts at
least ``1.05 / rate`` seconds after the previous one, retries included, so the group's rate limit
holds in every one-second window. 429 and 5xx answers, timeouts and lost connections are retried
with exponential backoff and jitter; a ``Retry-After`` header is honoured. What cannot be fetched
ends in a :class:`FetchError` that names the URL and says why.
"""

from __future__ import annotations

import email.utils
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httpx

from core.errors import LitragError

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: NCBI's rate-limit body; NCBI sends it with 429, but a 200 with it is retried too.
_NCBI_RATE_LIMIT_BODY = b'"API rate limit exceeded"'


class FetchError(LitragError):
    """A request that could not be completed: the URL, what happened, and after how many tries."""


class RateLimiter:
    """At most ``rate`` request starts per second: each start waits for its turn (thread-safe)."""

    def __init__(self, rate: float, clock: Callable[[], float] = time.monotonic) -> None:
        # 5 % over 1/rate: requests reach the server with a few ms of jitter, and no one-second
        # window there may hold rate + 1 of them (measured: 1/rate + 2 ms let 4 in at 3/s).
        self.interval = 1.05 / rate
        self._clock = clock
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        """Sleep until this caller may start a request."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to retry."""

    retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry ``attempt`` (1-based): doubling, capped, with +-25 % jitter."""
        base = min(self.backoff_s * 2 ** (attempt - 1), self.max_backoff_s)
        return float(base * random.uniform(0.75, 1.25))  # jitter, not security


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _describe(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot connect ({exc or 'connection refused'})"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection lost ({exc})"
    return f"{type(exc).__name__}: {exc}"


def _snippet(body: bytes) -> str:
    text = body[:300].decode("utf-8", errors="replace")
    return " ".join(text.split())


class PoliteClient:
    """An ``httpx.Client`` that waits for the group's rate limiter and retries what may pass."""

    def __init__(
        self,
        *,
        rates: Mapping[str, float],
        policy: RetryPolicy,
        timeout_s: float,
        user_agent: str,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.limiters = {group: RateLimiter(rate) for group, rate in rates.items()}
        self.policy = policy
        self.requests = 0
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout_s),
            headers={"User-Agent": user_agent},
            follow_redirects=True,
            transport=transport,
        )

    def close(self) -> None:
        """Close the connection pool."""
        self._client.close()

    def __enter__(self) -> PoliteClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self,
        method: str,
        url: str,
        *,
        group: str,
        params: Mapping[str, str] | None = None,
        data: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """A successful (2xx) response, or :class:`FetchError` after the retries are spent.

        4xx answers other than 429 are not retried: asking again would not change them.
        """
        limiter = self.limiters[group]
        shown = _shown_url(url, params)
        last = ""
        for attempt in range(self.policy.retries + 1):
            limiter.wait()
            self.requests += 1
            wait: float | None = None
            try:
                response = self._client.request(method, url, params=params, data=data)
            except httpx.HTTPError as exc:
                last = _describe(exc)
            else:
                status = response.status_code
                if status < 300 and not _is_rate_limit_body(response.content):
                    return response
                if status < 300 or status == 429:
                    last = f"HTTP {status} rate limited: {_snippet(response.content)}"
                else:
                    last = f"HTTP {status}: {_snippet(response.content)}"
                if status >= 300 and status not in RETRY_STATUSES:
                    raise FetchError(f"{method} {shown} failed: {last}")
                wait = retry_after_seconds(response.headers.get("Retry-After"))
                if wait is not None and wait > self.policy.max_retry_after_s:
                    raise FetchError(
                        f"{method} {shown}: the server asks to retry after {wait:.0f} s (more "
                        f"than max_retry_after_s={self.policy.max_retry_after_s:.0f}); {last}"
                    )
            if attempt == self.policy.retries:
                break
            delay = max(self.policy.delay(attempt + 1), wait or 0.0)
            log.warning("%s %s: %s; retry %d in %.1f s", method, shown, last, attempt + 1, delay)
            time.sleep(delay)
        tries = self.policy.retries + 1
        raise FetchError(
            f"{method} {shown} failed after {tries} attempt{'s' if tries > 1 else ''}: {last}"
        )


def _is_rate_limit_body(body: bytes) -> bool:
    return body[:200].lstrip().startswith(b"{") and _NCBI_RATE_LIMIT_BODY in body[:200]


def _shown_url(url: str, params: Mapping[str, str] | None) -> str:
    """The URL as it appears in messages, without the api_key."""
    shown = httpx.URL(url, params={k: v for k, v in (params or {}).items() if k != "api_key"})
    text = str(shown)
    return text if len(text) <= 300 else text[:297] + "..."


__all__ = ["FetchError", "PoliteClient", "RateLimiter", "RetryPolicy", "retry_after_seconds"]
