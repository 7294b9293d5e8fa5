"""What a function's import and first request must not pay for (found with bench/cold_start.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess:
    """A fresh interpreter (nothing imported yet), with this checkout's layer first on sys.path."""
    return subprocess.run(  # noqa: S603 - our own interpreter and code
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=dict(os.environ), check=False
    )


def test_importing_the_http_client_builds_no_opener_until_a_call_is_made():
    # Given a fresh interpreter that counts urllib openers built (each HTTPS handler loads the CA bundle)
    # When a function imports LeadFlow's HTTP client (every form capture does, via the CAPTCHA check)
    done = _run(
        """
        import urllib.request
        built = []
        original = urllib.request.build_opener
        urllib.request.build_opener = lambda *handlers: built.append(handlers) or original(*handlers)
        import leadflow.http
        assert built == [], f"opener built at import: {built}"
        first = leadflow.http._opener()
        assert len(built) == 1 and leadflow.http._opener() is first, "one opener, built on first use"
        """
    )
    # Then no opener is built before the first call, and the first call builds exactly one
    assert done.returncode == 0, done.stderr


def test_a_valid_journey_configuration_loads_without_jsonschema():
    # Given the shipped journey configuration (valid)
    # When the journey router loads it on its first request
    done = _run(
        """
        import sys
        from leadflow.journey_config import configured_journeys
        assert configured_journeys().journeys
        assert "jsonschema" not in sys.modules, "jsonschema imported for a valid configuration"
        """
    )
    # Then the stdlib fast path answered: jsonschema (only for documents it does not call valid) is not loaded
    assert done.returncode == 0, done.stderr


def test_planning_a_new_leads_first_touch_loads_neither_phone_metadata_nor_the_scoring_model():
    # Given a new lead with a phone number, eligible for the shipped default journey
    # When the journey router plans its first state (what a new lead's stream record costs it)
    done = _run(
        """
        import sys
        from leadflow.services import journeys
        lead = {"lead_id": "L1", "lifecycle_stage": "lead", "consent": {"email": True}, "email": "a@example.org",
                "phone": "+4915123456789", "country": "DE"}
        journey = journeys.eligible_journey(lead)
        assert journey is not None and journeys.first_state(lead, journey, 1)["route"] == "wait"
        loaded = sorted(m for m in sys.modules if m.startswith(("phonenumbers", "leadflow.domain.scoring_model")))
        assert loaded == [], f"loaded for a plan that needs no time zone nor a configuration error: {loaded}"
        """
    )
    # Then neither phonenumbers (the lead's time zone is only needed by a local-time wait, quiet hours and
    # the cap, all decided by the Touch task) nor the scoring model module (only a broken file's errors
    # need its path formatting) is imported
    assert done.returncode == 0, done.stderr
