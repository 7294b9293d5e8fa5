"""One `leadflow up` stack for an end-to-end test: every port its own (0), the terminal lines captured on
`runtime.lines`, and after the test the process as it was (environment, caches and clients of the stack's
embedded AWS forgotten, the journeys' clock back to real time)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime

from leadflow_local.runtime import LocalRuntime


def running_stack(
    time_scale: float | None = None,
    env: dict[str, str] | None = None,
    *,
    quiet: bool = False,
    capture_lines: bool = True,
) -> Iterator[LocalRuntime]:
    """Yield a started stack (use with `yield from` in a fixture); `env` is set before it starts. Its terminal
    lines are captured on `runtime.lines`, or printed (`capture_lines=False`), or not made (`quiet`)."""
    from leadflow.observability import logger

    saved, level = dict(os.environ), logger.log_level
    os.environ.update(env or {})
    lines: list[str] = []
    options = {} if time_scale is None else {"time_scale": time_scale}
    runtime = LocalRuntime(port=0, crm_port=0, platforms_port=0, salesforce_port=0, quiet=quiet, **options)
    if capture_lines:
        runtime.emit = lines.append
    runtime.start()
    runtime.lines = lines
    try:
        yield runtime
    finally:
        runtime.stop()
        logger.setLevel(level)
        os.environ.clear()
        os.environ.update(saved)
        from leadflow import queues, schedules
        from leadflow.config import settings
        from leadflow.crm.config import crm_config
        from leadflow.services import journeys
        from leadflow.store import models

        settings.cache_clear()
        crm_config.cache_clear()
        queues.reset()  # its SQS client named this stack's embedded AWS
        schedules.reset()
        models.bind()
        journeys.set_clock(lambda: datetime.now(UTC))
