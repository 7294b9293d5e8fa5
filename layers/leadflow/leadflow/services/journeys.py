"""Nurture journeys: enrol a lead, run each touch (re-checking everything at send time), stop, resume.

The state machine (statemachines/journey.asl.json) carries a small PII-free state between its tasks:
``{lead_id, journey, enrolment, step, route, next_touch_at, timeout_seconds}``. `route` says what it
does next: ``wait`` (Wait until ``next_touch_at``, then `touch`), ``wait_event`` (park on a task token
until the event or ``timeout_seconds``), ``done``. The lead's ``journey`` map (the contract's
{name, status, next_step_at}, plus enrolment, execution, step, variants, the task token while parked and
``sends``: the last week's send times across all journeys, for the frequency cap) is the source of truth
that each touch re-reads.

`now()` is journey time: the real clock on AWS; the local runtime installs a scaled clock (`set_clock`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from leadflow import channels
from leadflow.domain.journey import (
    Condition,
    Journey,
    Touch,
    exit_reason,
    field_holds,
    is_eligible,
    lead_time_zone,
    next_allowed_time,
    plan_from,
    recent_sends,
    send_refusal,
    variant_for,
)
from leadflow.journey_config import JourneyConfig, configured_journeys
from leadflow.observability import logger, mask_email, mask_phone
from leadflow.store import journeys as store

_clock: Callable[[], datetime] = lambda: datetime.now(UTC)  # noqa: E731 - replaced by set_clock locally
ACTIVE = ("active", "waiting_event")
# What a webhook touch tells the external tool about the person (it sends the message on our behalf).
CONTACT_FIELDS = ("email", "phone", "first_name", "last_name", "company", "job_title", "country")


def set_clock(clock: Callable[[], datetime]) -> None:
    """Journey time for this process (the local runtime scales it with the Wait states)."""
    global _clock
    _clock = clock


def now() -> datetime:
    return _clock()


def iso(moment: datetime) -> str:
    """A Wait state's timestamp: whole seconds, rounded up so a Wait never ends before the moment."""
    whole = datetime.fromtimestamp(math.ceil(moment.timestamp()), UTC)
    return whole.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def config() -> JourneyConfig:
    return configured_journeys()


def _journey(name: str) -> Journey:
    return config().journeys[name]


def execution_name(lead_id: str, journey: str, enrolment: int) -> str:
    """Deterministic per enrolment: Step Functions refuses a second start with the same name."""
    return f"{lead_id}-{journey}-{enrolment}"[:80]


# ------------------------------------------------------------------------------------------ planning
def _state(
    lead_id: str, journey: Journey, enrolment: int, step: int, moment: datetime, lead: dict, decide: bool = True
) -> dict:
    """The state machine's next state from `step`. Branches reached at `moment` are decided here (`decide`);
    the router leaves them to the task (it never reads events), which costs no extra state transition."""
    zone = lambda: lead_time_zone(lead, config().policy)  # noqa: E731 - only a local-time wait asks for it
    plan = plan_from(journey, step, moment, zone, _decider(lead, moment) if decide else None)
    state: dict[str, Any] = {
        "lead_id": lead_id,
        "journey": journey.name,
        "enrolment": enrolment,
        "step": plan.step,
        "route": plan.route,
    }
    if plan.at is not None:
        state["next_touch_at"] = iso(plan.at)
    if plan.route == "wait_event":
        state["event"] = plan.event
        state["timeout_seconds"] = max(1, math.ceil((plan.at - moment).total_seconds()))
    return state


def first_state(lead: dict, journey: Journey, enrolment: int) -> dict:
    """The execution input of a new enrolment: the first touch (or branch) planned from now."""
    return _state(lead["lead_id"], journey, enrolment, 0, now(), lead, decide=False)


def _decider(lead: dict, moment: datetime) -> Callable[[Condition], bool]:
    """How a branch is decided for this lead at `moment`: lead data as read, past events from the store."""

    def holds(condition: Condition) -> bool:
        if condition.event is None:
            return field_holds(condition, lead)
        since = None
        if condition.within_days is not None:
            since = (moment - timedelta(days=condition.within_days)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return store.had_event(lead["lead_id"], condition.event, since)

    return holds


def _journey_map(lead: dict, **changes: Any) -> dict:
    current = dict(lead.get("journey") or {})
    current.update(changes)
    return {k: v for k, v in current.items() if v is not None}


# ------------------------------------------------------------------------------------------ the touch
def touch(state: dict) -> dict:
    """Task `Touch`: re-check everything for the step's touch at send time, then send, defer or end."""
    cfg = config()  # once per task: each read of it reads and resolves its file again
    lead_id, journey = state["lead_id"], cfg.journeys[state["journey"]]
    step, moment = int(state["step"]), now()
    lead = store.get_lead(lead_id)
    reason = exit_reason(journey, lead, moment)
    if reason is None and not _is_current(lead, state):
        reason = "superseded"
    if reason is not None:
        return _finish(lead, state, reason, moment)
    if state.get("route") == "wait_event":  # the event did not come in time: plan on from the timeout
        lead = _save(lead_id, state, lead, status="active", task_token=None, waiting_for=None) or lead
        state = _state(lead_id, journey, int(state["enrolment"]), step, moment, lead)
        if state["route"] != "wait" or _parse(state["next_touch_at"]) > moment + timedelta(seconds=1):
            return _planned(lead, state)
        step = int(state["step"])
    if step >= len(journey.steps) or not isinstance(journey.steps[step], Touch):  # a wait or branch: plan on
        state = _state(lead_id, journey, int(state["enrolment"]), step, moment, lead)
        if state["route"] != "wait":
            return _planned(lead, state)
        step = int(state["step"])
    if _parse(state["next_touch_at"]) > moment + timedelta(seconds=1):  # resumed early: wait for the time
        return {**state, "route": "wait"}
    current = journey.steps[step]
    assert isinstance(current, Touch)  # noqa: S101 - checked just above
    if int((lead.get("journey") or {}).get("step", step)) > step:  # an earlier attempt sent it and moved on
        return _planned(lead, _state(lead_id, journey, int(state["enrolment"]), step + 1, moment, lead))
    policy = cfg.policy
    zone = lead_time_zone(lead, policy)
    sends = [_parse(s) for s in (lead.get("journey") or {}).get("sends") or []]
    refusal = send_refusal(current, lead)
    if refusal is not None:
        _record(lead_id, moment, state, "skipped", current, reason=refusal)
        return _advance(lead, state, journey, step + 1, moment, sends)
    allowed = next_allowed_time(moment, sends, zone, policy)
    if allowed > moment:
        why = "quiet_hours" if not _capped(moment, sends, policy) else "frequency_cap"
        _record(lead_id, moment, state, "deferred", current, reason=why, until=iso(allowed))
        _save(lead_id, state, lead, status="active", next_step_at=iso(allowed))
        return {**state, "route": "wait", "next_touch_at": iso(allowed)}
    variant = variant_for(lead_id, journey.name, current)
    sent = _send_once(current, variant, lead, state, moment, cfg)
    if sent is None:  # refused for good by the channel: nothing was sent
        return _advance(lead, state, journey, step + 1, moment, sends)
    sent_at, message_id, recipient = sent
    _record(lead_id, sent_at, state, "sent", current, variant=variant, message_id=message_id, to=recipient)
    if sent_at not in sends:  # a retried task appends the first attempt's time once
        sends.append(sent_at)
    return _advance(lead, state, journey, step + 1, moment, sends, variant={current.id: variant} if variant else None)


def _send_once(
    touch_: Touch, variant: str | None, lead: dict, state: dict, moment: datetime, cfg: JourneyConfig
) -> tuple[datetime, str | None, str | None] | None:
    """Send the touch at most once per enrolment, whatever the retries: (time, message id, masked recipient).

    The send ledger entry is claimed (conditional write) before the send and completed after it. A retry
    that finds it claimed does not send again: the store write that failed after the send is redone with
    what the ledger kept. A claim left `sending` (the task died between the send and its completion) counts
    as sent for email and SMS, which have no idempotency key; a webhook is sent again under the same
    `webhook-id`, which the receiver drops as a duplicate. None when the channel refused the touch for good."""
    lead_id = lead["lead_id"]
    key = (state["journey"], int(state["enrolment"]), touch_.id)
    expires = int((moment + timedelta(days=store.SEND_LEDGER_DAYS)).timestamp())
    earlier = store.claim_send(lead_id, key, iso(moment), touch_.channel, expires)
    if earlier is not None:
        at = _parse(earlier["at"])
        if earlier["status"] == "sent" or touch_.channel != "webhook":
            return at, earlier.get("message_id"), earlier.get("to")
    else:
        at = moment
    try:
        message_id, recipient = _send(touch_, variant, lead, state, at, cfg)
    except channels.ChannelRefused as refused:
        store.release_send(lead_id, key)
        _record(lead_id, at, state, "failed", touch_, reason=f"refused:HTTP {refused.status}")
        return None
    except (channels.ChannelUnavailable, ClientError):
        store.release_send(lead_id, key)  # the provider answered no (or a webhook): a retry may send it
        raise
    store.complete_send(lead_id, key, message_id, recipient)
    return at, message_id, recipient


def _planned(lead: dict, state: dict) -> dict:
    """A plan made without a touch (a branch decided, a timeout): a journey that ends here is completed."""
    if state["route"] == "done":
        _save(lead["lead_id"], state, lead, status="completed", step=state["step"], next_step_at=None)
    return state


def _capped(moment: datetime, sends: list[datetime], policy: Any) -> bool:
    return any(
        len([s for s in sends if moment - window < s <= moment]) >= limit
        for window, limit in ((timedelta(days=1), policy.per_day), (timedelta(days=7), policy.per_week))
    )


def _is_current(lead: dict, state: dict) -> bool:
    journey = lead.get("journey") or {}
    return journey.get("name") == state["journey"] and int(journey.get("enrolment", 0)) == int(state["enrolment"])


def _advance(
    lead: dict, state: dict, journey: Journey, step: int, moment: datetime, sends: list, variant: dict | None = None
) -> dict:
    following = _state(lead["lead_id"], journey, int(state["enrolment"]), step, moment, lead)
    status = {"wait": "active", "wait_event": "waiting_event", "done": "completed"}[following["route"]]
    variants = {**((lead.get("journey") or {}).get("variants") or {}), **(variant or {})}

    def change(current: dict) -> dict | None:
        if not _is_current(current, state):
            return None
        return _journey_map(
            current,
            status=status,
            step=following["step"],
            next_step_at=following.get("next_touch_at"),
            sends=[iso(s) for s in recent_sends(sends, moment)],
            variants=variants or None,
        )

    store.update_journey(lead["lead_id"], change, read=lead)  # at the version the touch read: no second read
    return following


def _save(lead_id: str, state: dict, read: dict | None = None, **changes: Any) -> dict | None:
    """Change the journey of `state`'s enrolment (nothing when another enrolment is current); `read`: the lead
    as this task read it (written at its version, no read of its own). The lead as written or read."""

    def change(current: dict) -> dict | None:
        return _journey_map(current, **changes) if _is_current(current, state) else None

    return store.update_journey(lead_id, change, read=read)


def _finish(lead: dict | None, state: dict, reason: str, moment: datetime) -> dict:
    if lead is not None and reason != "superseded":
        _record(state["lead_id"], moment, state, "exited", None, reason=reason)
        _save(state["lead_id"], state, lead, status="stopped", exit_reason=reason, next_step_at=None, task_token=None)
    return {**state, "route": "done", "exit_reason": reason}


def _send(
    touch_: Touch, variant: str | None, lead: dict, state: dict, at: datetime, cfg: JourneyConfig
) -> tuple[str, str | None]:
    template = cfg.templates[f"{touch_.template}_{variant}" if variant else touch_.template]
    if touch_.channel == "webhook":
        url = channels.webhook_url(cfg.webhook.get("url"))
        event = _webhook_event(touch_, variant, template, lead, state, at)
        timeout = float(cfg.webhook.get("timeout_seconds") or channels.WEBHOOK_TIMEOUT)
        message_id = channels.send_webhook(url=url, message_id=event["data"]["touch_id"], event=event, timeout=timeout)
        return message_id, _host(url)
    if touch_.channel == "email":
        message_id = channels.send_email(
            to=lead["email"],
            sender=cfg.email["from"],
            subject=template["subject"],
            body=template["body"],
            configuration_set=cfg.email.get("configuration_set"),
            unsubscribe_url=cfg.email.get("unsubscribe_url"),
        )
        return message_id, mask_email(lead["email"])
    message_id = channels.send_sms(to=lead["phone"], body=template["body"])
    return message_id, mask_phone(lead["phone"])


def _webhook_event(
    touch_: Touch, variant: str | None, template: dict, lead: dict, state: dict, at: datetime
) -> dict[str, Any]:
    """The body of a webhook touch: who (the lead's contact fields and consent), what (journey, touch,
    variant, the template's text) and a touch id that is the same on every retry (the `webhook-id`)."""
    contact = {name: lead.get(name) for name in CONTACT_FIELDS if lead.get(name) not in (None, "")}
    touch_id = f"{execution_name(lead['lead_id'], state['journey'], int(state['enrolment']))}-{touch_.id}"
    data = {
        "touch_id": touch_id,
        "lead_id": lead["lead_id"],
        "journey": state["journey"],
        "touch": touch_.id,
        "template": touch_.template,
        "variant": variant,
        "subject": template.get("subject"),
        "body": template["body"],
        "contact": contact,
        "consent": lead.get("consent") or {},
    }
    return {"type": "journey.touch", "timestamp": iso(at), "data": {k: v for k, v in data.items() if v is not None}}


def _host(url: str) -> str:
    from urllib.parse import urlsplit

    return urlsplit(url).netloc.rsplit("@", 1)[-1]  # never user:password of a URL


def _record(lead_id: str, moment: datetime, state: dict, outcome: str, touch_: Touch | None, **detail: Any) -> None:
    entry = {"journey": state["journey"], "enrolment": int(state["enrolment"]), "outcome": outcome}
    if touch_ is not None:
        entry.update(touch=touch_.id, channel=touch_.channel, template=touch_.template)
    entry.update({k: v for k, v in detail.items() if v is not None})
    key = f"{state['journey']}-{state['enrolment']}-{state['step']}-{outcome}"
    store.record_journey_entry(lead_id, iso(moment), key, entry)
    logger.info("journey step", extra={"lead_id": lead_id, "journey": state["journey"], "outcome": outcome})


def park_for_event(state: dict, token: str) -> None:
    """Task `AwaitEvent` (.waitForTaskToken): store the token on the lead; `resume_on_event` sends it."""
    _save(
        state["lead_id"],
        state,
        status="waiting_event",
        task_token=token,
        waiting_for=state.get("event"),
        next_step_at=state.get("next_touch_at"),
    )


def eligible_journey(lead: dict) -> Journey | None:
    """The journey a lead enters now: the default journey when the lead meets its entry criteria."""
    journey = config().default
    return journey if journey is not None and is_eligible(journey, lead) else None


# ------------------------------------------------------------------------------------------ start / stop
def _sfn() -> Any:
    return channels._client("stepfunctions")


def _state_machine_arn() -> str:
    import os

    return os.environ["LEADFLOW_JOURNEY_STATE_MACHINE_ARN"]


def _enrolment_due(lead: dict) -> int | None:
    """The enrolment number to start (or restart) for this lead now, or None.

    First enrolment: no journey yet. Again: only a recycled lead whose last run ended. An enrolment that
    was written but whose start may not have happened (status `starting`) is started again under the
    same execution name, which Step Functions runs at most once."""
    current = lead.get("journey") or {}
    if not current:
        return 1
    enrolment = int(current.get("enrolment", 1))
    if current.get("status") == "starting":
        return enrolment
    if current.get("status") in ("stopped", "completed") and lead.get("lifecycle_stage") == "recycled":
        if current.get("recycled_at") and current["recycled_at"] == lead.get("stage_changed_at"):
            return None  # this recycling had its run (or the CRM reason's journey): no endless re-enrolment
        return enrolment + 1
    return None


def enrol(lead_id: str) -> str | None:
    """Start the default journey for an eligible lead (idempotent per enrolment); the execution name."""
    lead = store.get_lead(lead_id)
    if lead is None:
        return None
    journey = eligible_journey(lead)
    enrolment = _enrolment_due(lead) if journey is not None else None
    if journey is None or enrolment is None:
        return None
    name = execution_name(lead_id, journey.name, enrolment)
    state = first_state(lead, journey, enrolment)
    sends = (lead.get("journey") or {}).get("sends") or []

    def claim(current: dict) -> dict | None:
        if _enrolment_due(current) != enrolment:
            return None  # someone else moved it on since the read
        claimed = {
            "name": journey.name,
            "enrolment": enrolment,
            "status": "starting",
            "execution": name,
            "step": 0,
            "next_step_at": state.get("next_touch_at"),
            "sends": sends,
        }
        if current.get("lifecycle_stage") == "recycled" and current.get("stage_changed_at"):
            claimed["recycled_at"] = current["stage_changed_at"]  # one run per recycling
        return claimed

    written = store.update_journey(lead_id, claim, read=lead)
    if written is None or (written.get("journey") or {}).get("execution") != name:
        return None
    client = _sfn()
    with contextlib.suppress(client.exceptions.ExecutionAlreadyExists):  # redelivered: this enrolment runs
        client.start_execution(stateMachineArn=_state_machine_arn(), name=name, input=_json(state))
    store.update_journey(
        lead_id,
        lambda current: (
            _journey_map(current, status="active")
            if (current.get("journey") or {}).get("execution") == name
            and current["journey"].get("status") == "starting"
            else None
        ),
        read=written,
    )
    return name


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


def _execution_arn(name: str) -> str:
    return _state_machine_arn().replace(":stateMachine:", ":execution:", 1) + ":" + name


def stop(lead_id: str, reason: str) -> bool:
    """Stop the lead's running execution at once (StopExecution) and mark its journey stopped."""
    lead = store.get_lead(lead_id)
    current = (lead or {}).get("journey") or {}
    if current.get("status") not in ("starting", *ACTIVE) or not current.get("execution"):
        return False
    client = _sfn()
    with contextlib.suppress(client.exceptions.ExecutionDoesNotExist):
        client.stop_execution(executionArn=_execution_arn(current["execution"]), error="LeadExited", cause=reason)
    state = {"journey": current["name"], "enrolment": current.get("enrolment", 1), "step": current.get("step", 0)}
    _record(lead_id, now(), state, "exited", None, reason=reason)
    _save(
        lead_id, state, lead, status="stopped", exit_reason=reason, next_step_at=None, task_token=None, waiting_for=None
    )
    return True


def on_lead_change(lead: dict) -> str | None:
    """A lead item changed (stream): stop its journey if it must exit, else enrol it if it is due; what was done."""
    current = lead.get("journey") or {}
    if current.get("status") == "scheduled":  # a later enrolment (CRM feedback): started with its initial wait
        return "scheduled" if start_scheduled(lead) else None
    journeys = config().journeys
    if current.get("status") in ("starting", *ACTIVE) and current.get("name") in journeys:
        reason = exit_reason(journeys[current["name"]], lead)
        if reason is not None and stop(lead["lead_id"], reason):
            return "stopped"
        if current.get("status") != "starting":
            return None
    return "enrolled" if enrol(lead["lead_id"]) else None


def resume_on_event(lead_id: str, event_type: str) -> bool:
    """An engagement event arrived (POST /v1/events): if the lead's journey waits for it, resume it now.

    The stored task token is cleared first (conditional on the lead's version), so it is used once; then
    SendTaskSuccess hands the state machine the plan from the step after the wait (AwaitEvent → Touch,
    which sends at once when that is the plan, or waits as planned)."""
    lead = store.get_lead(lead_id)
    current = (lead or {}).get("journey") or {}
    token = current.get("task_token")
    if lead is None or current.get("waiting_for") != event_type or not token:
        return False
    journey = _journey(current["name"])
    # a branch after the wait is left to the Touch task (the events function never reads a lead's events)
    state = _state(lead_id, journey, int(current.get("enrolment", 1)), int(current["step"]), now(), lead, False)
    if state["route"] != "wait":  # AwaitEvent goes on to Touch, which re-plans from the step after the event
        state = {**state, "route": "wait", "step": int(current["step"]), "next_touch_at": iso(now())}
        state.pop("timeout_seconds", None)

    def clear(latest: dict) -> dict | None:
        if (latest.get("journey") or {}).get("task_token") != token:
            return None
        return _journey_map(latest, status="active", task_token=None, waiting_for=None)

    written = store.update_journey(lead_id, clear, read=lead)
    if written is None or (written.get("journey") or {}).get("task_token") is not None:
        return False
    _record(lead_id, now(), {**state, "step": current["step"]}, "resumed", None, event=event_type)
    client = _sfn()
    with contextlib.suppress(client.exceptions.TaskTimedOut, client.exceptions.InvalidToken):
        client.send_task_success(taskToken=token, output=_json(state))
    return True


def start_scheduled(lead: dict) -> bool:
    """Start the enrolment a CRM reason scheduled (`journey.status` `scheduled`, written with the lead's stage
    move): an execution whose first Wait lasts until `next_step_at`, named per enrolment, so a redelivered
    stream record starts nothing twice. The status stays `scheduled` until its first touch, so neither the
    default enrolment nor an exit check (a CRM suppression that ends when the journey begins) interferes."""
    current = lead.get("journey") or {}
    if current.get("name") not in config().journeys or not current.get("execution"):
        return False
    state = {
        "lead_id": lead["lead_id"],
        "journey": current["name"],
        "enrolment": int(current.get("enrolment", 1)),
        "step": 0,
        "route": "wait",
        "next_touch_at": current.get("next_step_at") or iso(now()),
    }
    client = _sfn()
    with contextlib.suppress(client.exceptions.ExecutionAlreadyExists):
        client.start_execution(stateMachineArn=_state_machine_arn(), name=current["execution"], input=_json(state))
    return True
