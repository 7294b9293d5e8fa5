"""Recording journey functions for the journey tests (test-only; never in template.yaml).

`tests/support/journey_functions/app.py` is loaded from its CodeUri like a real function (a separate module
object), so the recording lives here, in a module both the handlers and the tests import normally.
"""

from __future__ import annotations

import copy
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta


class TouchRefusedError(Exception):
    """What the touch function raises when the test asks it to fail."""


@dataclass
class Call:
    function: str
    event: dict
    context_function_name: str
    context_request_id: str
    remaining_ms: int


@dataclass
class JourneyProbe:
    calls: list[Call] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self._lock:
            self.calls = []

    def record(self, function: str, event: dict, context: object) -> None:
        with self._lock:
            self.calls.append(
                Call(
                    function,
                    copy.deepcopy(event),
                    context.function_name,  # type: ignore[attr-defined]
                    context.aws_request_id,  # type: ignore[attr-defined]
                    context.get_remaining_time_in_millis(),  # type: ignore[attr-defined]
                )
            )

    def compute_next_touch(self, event: dict, context: object) -> dict:
        self.record("compute_next_touch", event, context)
        hours = float(event.get("touch_after_hours", 48))
        next_touch = datetime.now(UTC) + timedelta(hours=hours)
        return {**event, "next_touch_at": next_touch.strftime("%Y-%m-%dT%H:%M:%SZ")}

    def send_touch(self, event: dict, context: object) -> dict:
        self.record("send_touch", event, context)
        if event.get("fail_touch"):
            raise TouchRefusedError("the touch was refused")
        return {"sent": True, "step": "welcome"}


PROBE = JourneyProbe()
