"""CNT-3: every view, export or download of a person's data is logged, and the DPO can review it."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest
import time_machine

from carely.audit.access_log import PurposeRequired, access_log_record, access_log_record_many
from carely.audit.context import Actor, acting_as
from carely.audit.models import AccessLogEntry
from tests.conftest import login

pytestmark = pytest.mark.obligation("CNT-3")


def test_a_view_is_recorded_with_actor_request_and_fields(org_a, staff_a):
    with acting_as(Actor.user(staff_a.pk), request_id="req-abcdef12"):
        entry = access_log_record(
            organisation=org_a, subject_type="contact", subject_id=42, what=["phone", "email"]
        )
    assert (entry.actor_type, entry.actor_id) == ("user", str(staff_a.pk))
    assert (entry.subject_type, entry.subject_id, entry.action) == ("contact", "42", "view")
    assert entry.what == ["email", "phone"]
    assert entry.purpose == "routine" and entry.request_id == "req-abcdef12"


def test_an_api_key_read_gets_the_api_purpose(org_a):
    with acting_as(Actor.api_key(7)):
        entry = access_log_record(organisation=org_a, subject_type="contact", subject_id=1)
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("api_key", "7", "api")


def test_export_and_download_need_a_purpose(org_a, staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        for action in ("export", "download"):
            with pytest.raises(PurposeRequired, match="why"):
                access_log_record(
                    organisation=org_a, subject_type="contact", subject_id=1, action=action
                )
        with pytest.raises(PurposeRequired, match="Unknown purpose"):
            access_log_record(
                organisation=org_a, subject_type="contact", subject_id=1, purpose="curiosity"
            )
        entry = access_log_record(
            organisation=org_a,
            subject_type="contact",
            subject_id=1,
            action="export",
            what=["export.json"],
            purpose="dsr",
        )
    assert entry.purpose == "dsr"
    assert AccessLogEntry.objects.count() == 1


def test_a_list_page_logs_each_subject_in_one_query(org_a, staff_a, django_assert_num_queries):
    with acting_as(Actor.user(staff_a.pk)), django_assert_num_queries(1):
        access_log_record_many(
            organisation=org_a, subject_type="contact", subject_ids=range(30), what=["last_name"]
        )
    assert AccessLogEntry.objects.filter(organisation=org_a).count() == 30


def test_no_organisation_is_an_error_not_all(db):
    from carely.orgs.scoping import MissingOrganisation

    with pytest.raises(MissingOrganisation):
        access_log_record(organisation=None, subject_type="contact", subject_id=1)


@pytest.fixture
def entries(org_a, org_b, staff_a, staff_b):
    early = time_machine.travel(dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC), tick=False)
    with early, acting_as(Actor.user(staff_a.pk)):
        access_log_record(organisation=org_a, subject_type="contact", subject_id=1)
    with time_machine.travel(dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC), tick=False):
        with acting_as(Actor.user(staff_a.pk)):
            access_log_record(
                organisation=org_a,
                subject_type="contact",
                subject_id="=HYPERLINK(1)",
                what=["email"],
            )
        with acting_as(Actor.api_key(3)):
            access_log_record(organisation=org_a, subject_type="contact", subject_id=2)
    with acting_as(Actor.user(staff_b.pk)):
        access_log_record(organisation=org_b, subject_type="contact", subject_id=999)


@pytest.mark.obligation("SEC-2")
@pytest.mark.parametrize(
    ("persona", "status"),
    [("staff_a", 403), ("admin_a", 403), ("dpo_a", 200), ("staff_b", 403)],
)
def test_only_the_dpo_opens_the_access_log(client, request, persona, status, entries):
    login(client, request.getfixturevalue(persona))
    assert client.get("/audit/access-log/").status_code == status
    assert client.get("/audit/access-log.csv").status_code == status


def test_anonymous_is_sent_to_sign_in(client, entries):
    response = client.get("/audit/access-log/")
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_dpo_sees_only_their_organisation_and_names_instead_of_ids(client, dpo_a, staff_a, entries):
    login(client, dpo_a)
    body = client.get("/audit/access-log/").content.decode()
    assert "contact #1" in body and "contact #2" in body
    assert "#999" not in body
    assert staff_a.email in body or staff_a.full_name in body
    assert "API key #3" in body


def test_filters_by_subject_actor_and_dates(client, dpo_a, staff_a, entries):
    login(client, dpo_a)
    body = client.get("/audit/access-log/?subject_id=2").content.decode()
    assert "contact #2" in body and "contact #1<" not in body
    body = client.get("/audit/access-log/?actor_type=api_key").content.decode()
    assert "API key #3" in body and "contact #1" not in body
    body = client.get("/audit/access-log/?since=2026-11-01&until=2026-11-05").content.decode()
    assert "contact #1" in body and "contact #2" not in body
    body = client.get("/audit/access-log/?since=2026-11-05&until=2026-11-01").content.decode()
    assert "The end date is before the start date." in body


def test_csv_export_is_filtered_and_safe_against_formulas(client, dpo_a, entries):
    login(client, dpo_a)
    response = client.get("/audit/access-log.csv?since=2026-11-10")
    assert response["Content-Type"] == "text/csv"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert {row["subject_id"] for row in rows} == {"'=HYPERLINK(1)", "2"}
    assert all(row["subject_id"] != "999" for row in rows)


def test_opening_member_pages_is_logged_as_a_read_of_staff_data(client, admin_a, staff_a):
    """A UI read: the members list and one member's page write access-log rows."""
    login(client, admin_a)
    membership = staff_a.memberships.get()
    assert client.get("/members/").status_code == 200
    assert client.get(f"/members/{membership.pk}/").status_code == 200
    entries = list(AccessLogEntry.objects.filter(subject_type="staff_user", subject_id=staff_a.pk))
    assert len(entries) == 2
    assert {e.actor_id for e in entries} == {str(admin_a.pk)}
    assert "email" in entries[0].what and entries[0].request_id


def test_an_api_read_is_logged_as_the_key(client, org_a):
    """An API read through the organisation-scoped base: the actor is the key, not a person."""
    from carely.api.services import api_key_create
    from tests.tenancy_probe.models import ProbeRecord

    record = ProbeRecord.objects.create(organisation=org_a, label="x")
    key, plaintext = api_key_create(organisation=org_a, name="t", scopes=["contacts:read"])
    response = client.get(
        f"/api/v1/probe/records/{record.pk}", headers={"Authorization": f"Bearer {plaintext}"}
    )
    assert response.status_code == 200
    entry = AccessLogEntry.objects.get(subject_type="probe", subject_id=record.pk)
    assert (entry.actor_type, entry.actor_id, entry.purpose) == ("api_key", str(key.pk), "api")
