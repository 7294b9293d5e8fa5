"""A recording stream function for the stream-delivery tests (test-only; never in template.yaml).

`tests/support/stream_functions/app.py` is loaded from its CodeUri like a real function (a separate module
object), so the recording lives here, in a module both the handler and the tests import normally.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field


class PoisonRecordError(Exception):
    """What the test function raises for a poison record."""


@dataclass
class Invocation:
    event: dict
    keys: list[str]
    outcome: str  # "ok", "error" (raised) or "partial"
    failed_from: int | None = None  # index of the first reported failure when partial

    @property
    def delivered(self) -> list[str]:
        """The records this invocation processed for good (none when it raised)."""
        if self.outcome == "ok":
            return self.keys
        if self.outcome == "partial":
            return self.keys[: self.failed_from]
        return []


@dataclass
class StreamProbe:
    poison: set[str] = field(default_factory=set)
    mode: str = "report"  # "report": batchItemFailures; "raise": an exception
    invocations: list[Invocation] = field(default_factory=list)

    def reset(self, poison: set[str] | None = None, mode: str = "report") -> None:
        self.poison, self.mode, self.invocations = set(poison or ()), mode, []

    def handle(self, event: dict, context: object) -> dict:
        keys = [record["dynamodb"]["Keys"]["pk"]["S"] for record in event["Records"]]
        snapshot = copy.deepcopy(event)
        for index, record in enumerate(event["Records"]):
            if keys[index] not in self.poison:
                continue
            if self.mode == "raise":
                self.invocations.append(Invocation(snapshot, keys, "error"))
                raise PoisonRecordError(keys[index])
            # Ordered processing: stop at the first failure and report it (Lambda retries from it).
            self.invocations.append(Invocation(snapshot, keys, "partial", index))
            return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        self.invocations.append(Invocation(snapshot, keys, "ok"))
        return {"batchItemFailures": []}

    @property
    def delivered(self) -> list[str]:
        return [key for invocation in self.invocations for key in invocation.delivered]

    @property
    def batches(self) -> list[list[str]]:
        return [invocation.keys for invocation in self.invocations]


PROBE = StreamProbe()
