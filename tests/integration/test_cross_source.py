"""The same person arriving from different sources is one lead (contract: identity keys, first/last touch)."""

from __future__ import annotations

from tests.integration.test_provider_typeform import delivery as typeform_delivery
from tests.support.providers import encode, typeform_headers

EMAIL = "lin.chen@orbit-analytics.io"


def test_typeform_then_html_form_is_one_lead_first_touch_typeform_last_touch_form(api):
    # Given Lin answered the Typeform demo form (utm from LinkedIn in its hidden fields)
    body = encode(typeform_delivery())
    first = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body))
    assert first.status == 200
    lead_id = first.json["leads"][0]["lead_id"]
    # When she later submits the website's plain HTML form with her email in another case and a newsletter utm
    reply = api.post_form(
        "website",
        {
            "email": "LIN.CHEN@orbit-analytics.io",
            "company": "Orbit Analytics",
            "utm_source": "newsletter",
            "utm_medium": "email",
            "utm_campaign": "december-digest",
            "_redirect": "https://www.example.com/thanks",
        },
        as_json=False,
    )
    assert reply.status == 303
    # Then there is one lead with two touches
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["lead_id"] == lead_id
    assert lead["touches"]["count"] == 2
    # And the first touch is still Typeform's, the last touch is the form's (it carries a utm)
    attribution = lead["attribution"]
    assert attribution["first_touch"]["source"] == "typeform"
    assert attribution["first_touch"]["utm_campaign"] == "q4-demo"
    assert attribution["last_touch"]["source"] == "form:website"
    assert attribution["last_touch"]["utm_campaign"] == "december-digest"
    # And what Typeform said is kept
    assert (lead["first_name"], lead["job_title"]) == ("Lin", "Head of Growth")


def test_typeform_then_meta_then_html_form_is_one_lead(api, monkeypatch):
    # Given a Graph API holding Lin's Meta lead, and the fetch queue of the template
    from tests.integration.test_provider_meta import META, graph_lead, leadgen_delivery, meta_headers
    from tests.support.fake_graph import FakeGraph
    from tests.support.fetch import fetch_queues

    graph = FakeGraph(access_token=META["access_token"])
    monkeypatch.setenv("LEADFLOW_META_GRAPH_URL", graph.url)
    fetch = fetch_queues(monkeypatch)
    try:
        # When Lin answers Typeform first
        body = encode(typeform_delivery())
        lead_id = api.request("POST", "/v1/webhooks/typeform", body, typeform_headers(body)).json["leads"][0]["lead_id"]
        # Then a Meta lead ad (same email, other case), fetched through the queue
        graph.add_lead("900000000000077", graph_lead("Lin.Chen@Orbit-Analytics.io"))
        meta_body = leadgen_delivery("900000000000077")
        assert api.request("POST", "/v1/webhooks/meta", meta_body, meta_headers(meta_body)).status == 200
        fetch.drain()
        # And finally the website's plain HTML form with a campaign
        reply = api.post_form(
            "website",
            {
                "email": EMAIL,
                "utm_source": "newsletter",
                "utm_campaign": "december-digest",
                "_redirect": "https://www.example.com/thanks",
            },
            as_json=False,
        )
        assert reply.status == 303
    finally:
        graph.stop()
    # Then it is one lead with three touches: first touch Typeform, last touch the form
    lead = api.get_lead_by_email(EMAIL).json
    assert lead["lead_id"] == lead_id
    assert lead["touches"]["count"] == 3
    assert lead["attribution"]["first_touch"]["source"] == "typeform"
    assert lead["attribution"]["last_touch"]["source"] == "form:website"
    assert lead["attribution"]["last_touch"]["utm_campaign"] == "december-digest"
    # And Meta's answers filled what was empty (its ad ids are kept)
    assert lead["attributes"]["meta_campaign_id"] == "500000000000005"
