"""`make run`'s journeys end to end: a new lead from the website form enters the default journey under
`leadflow up`, the terminal shows its send and its wait, and `leadflow outbox` lists the send."""

from __future__ import annotations

import io
import json
import time
import urllib.request
from types import SimpleNamespace

import pytest

from leadflow_local.outbox import run as outbox
from tests.support.local_stack import running_stack


@pytest.fixture
def loud_stack():
    yield from running_stack(capture_lines=False)  # not quiet: terminal lines printed


@pytest.mark.slow
def test_a_new_website_lead_enters_the_default_journey_and_its_send_is_in_the_terminal_and_the_outbox(
    loud_stack, capsys
):
    # Given `leadflow up` running, and a new lead with email consent from the website form
    body = json.dumps({"email": "journey.e2e@parity-labs.com", "consent_email": True, "utm_source": "e2e"})
    request = urllib.request.Request(
        loud_stack.url + "/v1/forms/website",
        data=body.encode(),
        headers={"content-type": "application/json", "origin": "http://localhost:8080"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local stack
        lead_id = json.loads(response.read())["lead_id"]

    # When the stream enrols it and journey time passes (a day per second)
    deadline, printed = time.monotonic() + 30, ""
    sent = f"journey   lead {lead_id} sent default/welcome"
    waits = f"journey   lead {lead_id} in default: next touch"
    while not (sent in printed and waits in printed) and time.monotonic() < deadline:
        time.sleep(0.2)
        printed += capsys.readouterr().out

    # Then the terminal showed its first send (masked recipient, its A/B variant) and its wait for the next
    line = next(line for line in printed.splitlines() if sent in line)
    assert "(email to ***@parity-labs.com, variant " in line
    assert waits in printed
    assert "journey.e2e@" not in printed
    # And `leadflow outbox --lead` lists the send, and `leadflow outbox` the email embedded SES took
    args = SimpleNamespace(endpoint_url=loud_stack.aws.endpoint, table=loud_stack.tables["LeadsTable"], lead=lead_id)
    out = io.StringIO()
    assert outbox(args, out) == 0
    assert "sent      default/welcome" in out.getvalue() and "email to ***@parity-labs.com" in out.getvalue()
    out = io.StringIO()
    assert outbox(SimpleNamespace(**{**vars(args), "lead": None}), out) == 0
    assert any(line.startswith("email ") and "***@parity-labs.com" in line for line in out.getvalue().splitlines())
