"""A client-side token bucket shaped like HubSpot's rolling limit: `limit` tokens, each spent token comes
back `window` seconds after it was spent (plus a small margin for latency between our clock and the CRM's).

A bucket that refilled steadily (limit/window per second) would let a full burst plus the refill through
within one rolling window and earn 429s; returning each token exactly one window after use never sends
more than `limit` calls in any window, and still sends at the ceiling when there is work.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class TokenBucket:
    def __init__(
        self,
        limit: int,
        window: float = 10.0,
        *,
        margin: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limit, self.window, self.margin = max(1, int(limit)), window, margin
        self._clock, self._sleep = clock, sleep
        self._spent: deque[float] = deque()
        self._lock = threading.Lock()

    def _wait_needed(self) -> float:
        now = self._clock()
        while self._spent and self._spent[0] + self.window + self.margin <= now:
            self._spent.popleft()
        if len(self._spent) < self.limit:
            self._spent.append(now)
            return 0.0
        return self._spent[0] + self.window + self.margin - now

    def take(self) -> float:
        """Spend a token, waiting for one if needed; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                wait = self._wait_needed()
            if wait <= 0:
                return waited
            self._sleep(wait)
            waited += wait

    def pause(self, seconds: float) -> None:
        """The CRM said 429: hold every token for `seconds` (the window is not what we thought)."""
        with self._lock:
            until = self._clock() + seconds - self.window - self.margin
            self._spent = deque(max(t, until) for t in self._spent)
            while len(self._spent) < self.limit:
                self._spent.append(until)
