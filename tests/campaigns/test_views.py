"""The campaign pages (MSG-2, MSG-4, MSG-10): the persona matrix, four eyes at the button and at
the POST, the organisation boundary, pause and cancel from the detail page, the builder's count
endpoint (numbers only) and the results' masked small cells."""

from __future__ import annotations

import json

import pytest

from campaigns.materialise import campaign_materialise
from campaigns.models import Audience, Campaign, CampaignStep, State
from campaigns.services import campaign_approve, campaign_submit
from messaging.models import Message
from tests.conftest import login


def _body(response) -> str:
    return response.content.decode()


def _sending(campaign, staff_a, admin_a):
    """The fixture campaign approved and materialised: its messages queued, not yet sent."""
    campaign_submit(campaign=campaign, actor=staff_a)
    campaign_approve(campaign=campaign, actor=admin_a)
    campaign_materialise(campaign.pk)
    campaign.refresh_from_db()
    return campaign


# --- persona matrix ------------------------------------------------------------------------------
@pytest.mark.obligation("SEC-2")
def test_anonymous_goes_to_sign_in_and_the_dpo_is_refused(client, dpo_a, campaign):
    paths = [
        "/campaigns/",
        "/campaigns/new/",
        f"/campaigns/{campaign.pk}/",
        "/campaigns/audiences/",
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], path
    login(client, dpo_a)
    for path in [*paths, "/campaigns/approvals/", "/campaigns/audience-count/?audience=1"]:
        assert client.get(path).status_code == 403, path


@pytest.mark.obligation("SEC-2")
def test_staff_open_every_page_but_the_approval_queue(client, staff_a, campaign, everyone):
    login(client, staff_a)
    for path in [
        "/campaigns/",
        "/campaigns/?state=draft",
        "/campaigns/new/",
        f"/campaigns/{campaign.pk}/",
        f"/campaigns/{campaign.pk}/edit/",
        "/campaigns/audiences/",
        "/campaigns/audiences/new/",
        f"/campaigns/audiences/{everyone.pk}/",
    ]:
        assert client.get(path).status_code == 200, path
    assert client.get("/campaigns/approvals/").status_code == 403
    nav = _body(client.get("/"))
    assert 'href="/campaigns/"' in nav


@pytest.mark.obligation("TEN-1")
def test_another_organisations_campaign_is_not_found(client, admin_b, staff_a, campaign, everyone):
    login(client, admin_b)
    for path in [
        f"/campaigns/{campaign.pk}/",
        f"/campaigns/{campaign.pk}/edit/",
        f"/campaigns/{campaign.pk}/cancel/",
        f"/campaigns/{campaign.pk}/progress.json",
        f"/campaigns/audiences/{everyone.pk}/",
    ]:
        assert client.get(path).status_code == 404, path
    for action in ("submit", "approve", "pause", "cancel"):
        assert client.post(f"/campaigns/{campaign.pk}/{action}/").status_code == 404, action
    assert (
        client.get(
            f"/campaigns/audience-count/?audience={everyone.pk}&purpose=marketing&channels=sms"
        ).status_code
        == 400
    )
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    assert "November check-ups" not in _body(client.get("/campaigns/"))


# --- four eyes -----------------------------------------------------------------------------------
@pytest.mark.obligation("MSG-2")
def test_staff_build_and_submit_but_cannot_approve(client, staff_a, campaign, population):
    login(client, staff_a)
    response = client.post(f"/campaigns/{campaign.pk}/submit/", follow=True)
    assert "someone else will now approve" in _body(response)
    campaign.refresh_from_db()
    assert campaign.state == State.AWAITING_APPROVAL
    page = _body(client.get(f"/campaigns/{campaign.pk}/"))
    assert f'action="/campaigns/{campaign.pk}/approve/"' not in page
    assert "someone else must approve it" in page
    refused = client.post(f"/campaigns/{campaign.pk}/approve/", follow=True)
    assert "role cannot approve" in _body(refused)
    campaign.refresh_from_db()
    assert campaign.state == State.AWAITING_APPROVAL


@pytest.mark.obligation("MSG-2")
def test_a_staff_colleague_is_told_their_role_cannot_approve(client, org_a, staff_a, campaign):
    from tests.factories import MembershipFactory

    campaign_submit(campaign=campaign, actor=staff_a)
    colleague = MembershipFactory(organisation=org_a, role="staff").user
    login(client, colleague)
    page = _body(client.get(f"/campaigns/{campaign.pk}/"))
    assert f'action="/campaigns/{campaign.pk}/approve/"' not in page
    assert "Your role cannot approve campaigns" in page
    refused = client.post(f"/campaigns/{campaign.pk}/approve/", follow=True)
    assert "role cannot approve" in _body(refused)
    campaign.refresh_from_db()
    assert campaign.state == State.AWAITING_APPROVAL


@pytest.mark.obligation("MSG-2")
def test_an_admin_who_wrote_the_campaign_cannot_approve_it(
    client, org_a, admin_a, everyone, offer_sms_sl
):
    from campaigns.services import campaign_create

    own = campaign_create(
        organisation=org_a,
        actor=admin_a,
        name="Own",
        purpose="marketing",
        channels=["sms"],
        audience=everyone,
        templates={("sms", "sl"): offer_sms_sl},
    )
    campaign_submit(campaign=own, actor=admin_a)
    login(client, admin_a)
    page = _body(client.get(f"/campaigns/{own.pk}/"))
    assert f'action="/campaigns/{own.pk}/approve/"' not in page
    assert "someone else must approve it" in page
    queue = _body(client.get("/campaigns/approvals/"))
    assert "Own" in queue and "yours: someone else must approve it" in queue
    refused = client.post(f"/campaigns/{own.pk}/approve/", follow=True)
    assert "someone else must approve it (four eyes)" in _body(refused)
    own.refresh_from_db()
    assert own.state == State.AWAITING_APPROVAL


@pytest.mark.obligation("MSG-2")
def test_the_approver_sends_back_with_a_note_then_approves(
    client, staff_a, admin_a, campaign, population
):
    campaign_submit(campaign=campaign, actor=staff_a)
    login(client, admin_a)
    queue = _body(client.get("/campaigns/approvals/"))
    assert "November check-ups" in queue and "contacts match" in queue
    page = _body(client.get(f"/campaigns/{campaign.pk}/"))
    assert f'action="/campaigns/{campaign.pk}/approve/"' in page
    empty = client.post(f"/campaigns/{campaign.pk}/send-back/", {"note": " "}, follow=True)
    assert "Say what needs to change" in _body(empty)
    client.post(f"/campaigns/{campaign.pk}/send-back/", {"note": "Add the price."})
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT
    history = _body(client.get(f"/campaigns/{campaign.pk}/"))
    assert "sent back" in history and "Add the price." in history
    campaign_submit(campaign=campaign, actor=staff_a)
    client.post(f"/campaigns/{campaign.pk}/approve/")
    campaign.refresh_from_db()
    assert campaign.state == State.SCHEDULED and campaign.approved_by == admin_a


def test_posts_need_the_csrf_token(staff_a, campaign):
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    login(strict, staff_a)
    assert strict.post(f"/campaigns/{campaign.pk}/submit/").status_code == 403
    campaign.refresh_from_db()
    assert campaign.state == State.DRAFT


# --- pause and cancel ----------------------------------------------------------------------------
@pytest.mark.obligation("MSG-2")
def test_pause_resume_and_cancel_from_the_detail_page(
    client, staff_a, admin_a, campaign, population
):
    campaign = _sending(campaign, staff_a, admin_a)
    queued = Message.objects.filter(campaign_id=campaign.pk, status="queued").count()
    assert queued > 0
    login(client, staff_a)
    page = _body(client.get(f"/campaigns/{campaign.pk}/"))
    assert f'action="/campaigns/{campaign.pk}/pause/"' in page
    assert f'data-progress-url="/campaigns/{campaign.pk}/progress.json"' in page
    client.post(f"/campaigns/{campaign.pk}/pause/")
    campaign.refresh_from_db()
    assert campaign.state == State.PAUSED
    assert Message.objects.filter(campaign_id=campaign.pk, status="held").count() == queued
    client.post(f"/campaigns/{campaign.pk}/resume/")
    campaign.refresh_from_db()
    assert campaign.state == State.SENDING
    confirm = _body(client.get(f"/campaigns/{campaign.pk}/cancel/"))
    assert f"This stops {queued} messages that have not reached the provider yet" in confirm
    campaign.refresh_from_db()
    assert campaign.state == State.SENDING  # the confirm page itself changes nothing
    client.post(f"/campaigns/{campaign.pk}/cancel/", {"note": "Wrong month"})
    campaign.refresh_from_db()
    assert campaign.state == State.CANCELLED
    assert Message.objects.filter(campaign_id=campaign.pk, status="cancelled").count() == queued
    step = CampaignStep.objects.get(campaign=campaign, kind="cancelled")
    assert step.actor == staff_a and step.note == "Wrong month"
    again = client.post(f"/campaigns/{campaign.pk}/cancel/", follow=True)
    assert "already cancelled" in _body(again)


def test_progress_json_counts_queued_and_sent(client, staff_a, admin_a, campaign, population):
    campaign = _sending(campaign, staff_a, admin_a)
    Message.objects.filter(campaign_id=campaign.pk).order_by("pk")[:1].get()
    first = Message.objects.filter(campaign_id=campaign.pk).order_by("pk").first()
    Message.objects.filter(pk=first.pk).update(status="delivered")
    login(client, staff_a)
    data = client.get(f"/campaigns/{campaign.pk}/progress.json").json()
    assert data["state"] == "sending"
    assert data["queued"] == campaign.queued and data["audience_total"] == campaign.audience_total
    assert data["sent"] == 1


# --- the builder ---------------------------------------------------------------------------------
@pytest.mark.obligation("MSG-4")
def test_the_count_endpoint_returns_numbers_and_no_names(client, staff_a, everyone, population):
    login(client, staff_a)
    response = client.get(
        f"/campaigns/audience-count/?audience={everyone.pk}&purpose=marketing&channels=sms,email"
    )
    assert response.status_code == 200
    data = response.json()
    assert data["matched"] == len(population)
    assert data["eligible"] == data["by_channel"]["sms"] + data["by_channel"]["email"]
    assert data["excluded"]["suppressed"] == 1
    assert "on the do-not-contact list" in data["text"]
    assert f"{len(population)} contacts match" in data["text"]
    raw = json.dumps(data)
    for person in population.values():
        assert person.first_name not in raw.replace("contacts", "")
        assert person.phone not in raw if person.phone else True
    bad = client.get(f"/campaigns/audience-count/?audience={everyone.pk}&purpose=nope&channels=sms")
    assert bad.status_code == 400 and "no purpose 'nope'" in bad.json()["error"]


@pytest.mark.obligation("MSG-4")
def test_the_builder_creates_a_draft_with_templates_and_a_window_in_local_time(
    client, org_a, staff_a, everyone, offer_sms_sl, offer_email_sl, population
):
    login(client, staff_a)
    page = _body(client.get("/campaigns/new/"))
    assert 'name="tpl_sms_sl"' in page and 'name="tpl_email_sl"' in page
    response = client.post(
        "/campaigns/new/",
        {
            "name": "December",
            "purpose": "marketing",
            "channel_1": "email",
            "channel_2": "sms",
            "channel_3": "",
            "audience": str(everyone.pk),
            "fallback_language": "sl",
            "tpl_sms_sl": str(offer_sms_sl.pk),
            "tpl_email_sl": str(offer_email_sl.pk),
            "schedule": "window",
            "send_at": "2030-12-01T09:00",
            "send_until": "2030-12-01T12:00",
        },
    )
    assert response.status_code == 302, _body(response)
    created = Campaign.objects.get(name="December")
    assert created.channels == ["email", "sms"]
    assert created.send_at.isoformat() == "2030-12-01T08:00:00+00:00"  # 09:00 in Ljubljana
    assert {(t.channel, t.language) for t in created.templates.all()} == {
        ("sms", "sl"),
        ("email", "sl"),
    }
    detail = _body(client.get(response["Location"]))
    assert "Ana, ta mesec popust" in detail  # the sample, never a patient
    assert "GSM-7" in detail or "UCS-2" in detail
    edit = _body(client.get(f"/campaigns/{created.pk}/edit/"))
    assert 'value="2030-12-01T09:00"' in edit
    assert "contacts match" in edit


def test_the_builder_shows_problems_next_to_fields(client, staff_a, everyone, offer_sms_sl):
    login(client, staff_a)
    response = client.post(
        "/campaigns/new/",
        {
            "name": "  ",
            "purpose": "marketing",
            "channel_1": "sms",
            "channel_2": "sms",
            "audience": str(everyone.pk),
            "fallback_language": "sl",
            "schedule": "at",
            "send_at": "tomorrow",
        },
    )
    assert response.status_code == 200
    form = response.context["form"]
    assert "send_at" in form.errors and "name" in form.errors
    assert Campaign.objects.filter(organisation=everyone.organisation).count() == 0


def test_a_non_draft_cannot_be_edited(client, staff_a, campaign):
    campaign_submit(campaign=campaign, actor=staff_a)
    login(client, staff_a)
    response = client.get(f"/campaigns/{campaign.pk}/edit/", follow=True)
    assert "Only a draft can be changed" in _body(response)
    client.post(f"/campaigns/{campaign.pk}/edit/", {"name": "Changed"})
    campaign.refresh_from_db()
    assert campaign.name == "November check-ups"


def test_template_preview_json_uses_sample_values_only(
    client, staff_a, offer_sms_sl, org_a, admin_b
):
    login(client, staff_a)
    data = client.get(f"/campaigns/template-preview/?template={offer_sms_sl.pk}").json()
    assert data["body"].startswith("Ana, ta mesec popust")
    assert data["encoding"] in ("GSM-7", "UCS-2") and data["parts"] >= 1
    login(client, admin_b)
    assert client.get(f"/campaigns/template-preview/?template={offer_sms_sl.pk}").status_code == 404


# --- audiences -----------------------------------------------------------------------------------
@pytest.mark.obligation("MSG-4")
def test_audience_form_saves_filters_and_shows_problems_by_field(client, staff_a, org_a):
    login(client, staff_a)
    bad = client.post(
        "/campaigns/audiences/new/",
        {"name": "Seniors", "age_min": "70", "age_max": "40", "relationship_started_from": "x"},
    )
    assert bad.status_code == 200
    errors = bad.context["form"].errors
    assert "lower than Age from" in errors["age_max"][0]
    assert "YYYY-MM-DD" in errors["relationship_started_from"][0]
    assert not Audience.objects.filter(organisation=org_a, name="Seniors").exists()
    ok = client.post(
        "/campaigns/audiences/new/",
        {
            "name": "Seniors",
            "age_band": "65-",
            "languages": ["sl", "en"],
            "tags_any": "implant, ortho",
            "consent_purpose": "marketing",
            "consent_channel": "sms",
            "consent_state": "given",
        },
    )
    assert ok.status_code == 302
    audience = Audience.objects.get(organisation=org_a, name="Seniors")
    assert audience.filters == {
        "age_min": 65,
        "languages": ["en", "sl"],
        "tags_any": ["implant", "ortho"],
        "consent": [{"purpose": "marketing", "channel": "sms", "state": "given"}],
    }
    edit = _body(client.get(f"/campaigns/audiences/{audience.pk}/"))
    assert 'value="implant, ortho"' in edit


# --- results -------------------------------------------------------------------------------------
@pytest.mark.obligation("MSG-10")
def test_results_mask_small_cells_and_draw_the_charts(
    client, staff_a, admin_a, campaign, population, admin_b
):
    from django.utils import timezone

    campaign = _sending(campaign, staff_a, admin_a)
    queued = list(Message.objects.filter(campaign_id=campaign.pk).order_by("pk"))
    assert 0 < len(queued) < 5
    now = timezone.now()
    Message.objects.filter(pk=queued[0].pk).update(status="delivered", sent_at=now, final_at=now)
    login(client, staff_a)
    response = client.get(f"/campaigns/{campaign.pk}/results/")
    assert response.status_code == 200
    page = _body(response)
    assert "&lt;5" in page
    stats = response.context["counts"]
    assert stats["queued"] == "<5" and stats["sent"] == "<5" and stats["delivered"] == "<5"
    # Excluded reasons with one contact each are masked too, never shown as 1.
    assert dict(response.context["excluded"])["on the do-not-contact list"] == "<5"
    assert "<svg" in page and 'class="bar' in page and "<table" in page
    for person in population.values():
        assert person.phone not in page if person.phone else True
    login(client, admin_b)
    assert client.get(f"/campaigns/{campaign.pk}/results/").status_code == 404


def test_the_list_costs_the_same_queries_for_one_campaign_or_many(
    client, org_a, staff_a, admin_a, everyone, offer_sms_sl
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from campaigns.services import campaign_create

    def make(n):
        made = campaign_create(
            organisation=org_a,
            actor=staff_a,
            name=f"C{n}",
            purpose="marketing",
            channels=["sms"],
            audience=everyone,
            templates={("sms", "sl"): offer_sms_sl},
        )
        campaign_submit(campaign=made, actor=staff_a)
        campaign_approve(campaign=made, actor=admin_a)

    login(client, staff_a)
    make(0)
    with CaptureQueriesContext(connection) as one:
        assert client.get("/campaigns/").status_code == 200
    for n in range(1, 6):
        make(n)
    with CaptureQueriesContext(connection) as six:
        page = _body(client.get("/campaigns/"))
    assert page.count("approved by") == 6

    def reads(ctx):
        return [q["sql"] for q in ctx.captured_queries if q["sql"].startswith("SELECT")]

    assert len(reads(six)) == len(reads(one)), reads(six)


def test_the_count_reads_in_slovenian_with_the_right_plural(client, staff_a, everyone, population):
    login(client, staff_a)
    client.post("/language/", {"language": "sl", "next": "/campaigns/"})
    data = client.get(
        f"/campaigns/audience-count/?audience={everyone.pk}&purpose=marketing&channels=sms"
    ).json()
    assert data["text"].startswith(f"Ujema se {len(population)} kontaktov")
    assert "na seznamu »ne kontaktiraj«" in data["text"]
    assert "Nova kampanja" in _body(client.get("/campaigns/"))
