"""EventBridge Scheduler off AWS: fire the one-time (`at(...)`) schedules of a group with the time scale.

The schedules live in embedded AWS (moto keeps them; it never fires them). A schedule created at C for time T
fires here at C + (T - C) / time_scale real seconds: a two-working-day SLA under `leadflow up`'s default scale
(a day per second) lapses within seconds. The target is invoked in process with the schedule's input, then
the schedule is deleted (`ActionAfterCompletion: DELETE`, as the service does). A target that fails is tried
again on the next poll, up to `max_attempts` times, as the Scheduler's retry policy would.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

Target = Callable[[dict], Any]


def _at(expression: str) -> datetime | None:
    if not expression.startswith("at(") or not expression.endswith(")"):
        return None  # rate()/cron() schedules are not used by LeadFlow
    return datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC)


def _epoch(value: Any) -> float:
    return value.timestamp() if isinstance(value, datetime) else float(value)


class LocalScheduler:
    def __init__(
        self,
        client: Any,
        group: str,
        target: Target,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], float] | None = None,
        max_attempts: int = 3,
    ) -> None:
        import time

        self.client = client
        self.group = group
        self.target = target
        self.time_scale = max(time_scale, 1e-9)
        self.clock = clock or time.time
        self.max_attempts = max_attempts
        self.fired: list[dict] = []
        self._failures: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def fire_due(self) -> int:
        """Invoke every schedule of the group that is due (scaled); returns how many fired."""
        fired = 0
        pages = self.client.get_paginator("list_schedules").paginate(GroupName=self.group)
        for summary in [s for page in pages for s in page.get("Schedules", [])]:
            schedule = self.client.get_schedule(Name=summary["Name"], GroupName=self.group)
            at = _at(schedule.get("ScheduleExpression", ""))
            if at is None:
                continue
            created = _epoch(schedule.get("CreationDate") or self.clock())
            if self.clock() < created + max(0.0, at.timestamp() - created) / self.time_scale:
                continue
            event = json.loads(schedule["Target"].get("Input") or "{}")
            try:
                self.target(event)
            except Exception:  # noqa: BLE001 - the Scheduler retries a failed target
                self._failures[summary["Name"]] = self._failures.get(summary["Name"], 0) + 1
                if self._failures[summary["Name"]] < self.max_attempts:
                    continue
            self.client.delete_schedule(Name=summary["Name"], GroupName=self.group)
            self.fired.append(event)
            fired += 1
        return fired

    def start(self, interval: float = 0.2) -> LocalScheduler:
        def loop() -> None:
            while not self._stop.is_set():
                with contextlib.suppress(Exception):  # embedded AWS stopping, or a transient error: poll again
                    self.fire_due()
                self._stop.wait(interval)

        self._thread = threading.Thread(target=loop, name="local-scheduler", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
