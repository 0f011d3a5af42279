"""Files round-trip through a real S3 endpoint: moto's server on loopback (CNT-5, CNT-3, DSR).

Uploads go to S3 through django-storages; downloads are redirects to presigned URLs that live
at most 60 seconds; the bucket refuses unsigned reads; erasure through the registry deletes the
row and, after the commit, the object.
"""

from __future__ import annotations

import datetime as dt
import urllib.error
import urllib.request
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.exceptions import ClientError

from carely.audit.models import AccessLogEntry
from carely.privacy.registry import Subject, registry
from contacts.models import Contact
from files.models import ContactFile
from files.services import contact_file_add
from tests.conftest import login
from tests.files.conftest import PDF, api_client, upload

pytestmark = [pytest.mark.django_db, pytest.mark.obligation("CNT-5")]


def _add(contact, content=PDF, name="Ana Novak izvid.pdf"):
    return contact_file_add(
        contact=contact, upload=upload(content, name), kind="document", uploaded_by=None
    )


def _fetch(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_upload_lands_in_the_bucket_private_and_encrypted(s3, s3_client, contact_a):
    row = _add(contact_a)
    head = s3_client.head_object(Bucket=s3, Key=row.stored_file.name)
    assert head["ContentLength"] == len(PDF)
    assert head["ContentType"] == "application/pdf"
    assert head["ServerSideEncryption"] == "AES256"
    grants = s3_client.get_object_acl(Bucket=s3, Key=row.stored_file.name)["Grants"]
    assert all("AllUsers" not in str(g.get("Grantee")) for g in grants)


@pytest.mark.obligation("CNT-3")
def test_ui_download_redirects_to_a_presigned_url_of_at_most_60_seconds(
    s3, moto_endpoint, client, staff_a, contact_a
):
    row = _add(contact_a)
    login(client, staff_a)
    response = client.get(f"/files/contacts/{contact_a.pk}/{row.pk}/download", {"purpose": "care"})
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{moto_endpoint}/{s3}/{row.stored_file.name}?")
    query = parse_qs(urlsplit(location).query)
    assert 0 < int(query["X-Amz-Expires"][0]) <= 60
    assert "X-Amz-Signature" in query
    assert response["Cache-Control"] == "private, no-store"

    status, body, headers = _fetch(location)
    assert status == 200 and body == PDF  # identical bytes, straight from the bucket
    assert headers["Content-Disposition"].startswith("attachment;")
    assert "Ana Novak izvid.pdf" in headers["Content-Disposition"]

    entry = AccessLogEntry.objects.get(action="download")
    assert (entry.subject_type, entry.subject_id, entry.purpose) == (
        "contact",
        str(contact_a.pk),
        "care",
    )
    assert entry.what == [f"file:{row.pk}"]


def test_the_object_url_without_a_signature_is_refused(s3, moto_endpoint, contact_a):
    row = _add(contact_a)
    status, _body, _headers = _fetch(f"{moto_endpoint}/{s3}/{row.stored_file.name}")
    assert status == 403


def test_a_presigned_url_is_dated_now_and_dies_within_a_minute(s3, client, staff_a, contact_a):
    # S3 refuses a presigned URL once X-Amz-Date + X-Amz-Expires has passed; moto does not
    # enforce expiry, so the test checks the two values S3 decides by.
    row = _add(contact_a)
    login(client, staff_a)
    location = client.get(f"/files/contacts/{contact_a.pk}/{row.pk}/download", {"purpose": "care"})[
        "Location"
    ]
    query = parse_qs(urlsplit(location).query)
    signed_at = dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=dt.UTC
    )
    dies_at = signed_at + dt.timedelta(seconds=int(query["X-Amz-Expires"][0]))
    now = dt.datetime.now(dt.UTC)
    assert abs((now - signed_at).total_seconds()) < 5
    assert dies_at <= now + dt.timedelta(seconds=60)


def test_api_content_redirects_to_a_presigned_url(s3, org_a, contact_a):
    row = _add(contact_a)
    api = api_client(org_a, scopes=["files:read"])
    response = api.get(f"/api/v1/files/{row.pk}/content")
    assert response.status_code == 302
    assert int(parse_qs(urlsplit(response["Location"]).query)["X-Amz-Expires"][0]) <= 60
    assert _fetch(response["Location"])[1] == PDF
    entry = AccessLogEntry.objects.get(action="download")
    assert entry.purpose == "api" and entry.actor_type == "api_key"


def test_api_upload_goes_to_s3(s3, s3_client, org_a, contact_a):
    api = api_client(org_a, scopes=["files:write"])
    response = api.post(
        f"/api/v1/contacts/{contact_a.pk}/files/",
        {"kind": "document", "file": upload(PDF)},
        format="multipart",
    )
    assert response.status_code == 201, response.content
    row = ContactFile.objects.get(pk=response.json()["id"])
    body = s3_client.get_object(Bucket=s3, Key=row.stored_file.name)["Body"].read()
    assert body == PDF


@pytest.mark.obligation("DSR-9")
def test_erasure_deletes_the_row_and_the_object(
    s3, s3_client, contact_a, contact_b, django_capture_on_commit_callbacks
):
    mine = [_add(contact_a), _add(contact_a)]
    other = _add(contact_b)
    with django_capture_on_commit_callbacks(execute=True):
        report = registry.erase(
            Subject("contact", contact_a.organisation_id, contact_a.pk), dry_run=False
        )
    assert report.by_model["files.ContactFile"]["deleted"] == 2
    assert report.files_removed == 2
    assert not Contact.objects.filter(pk=contact_a.pk).exists()
    assert list(ContactFile.objects.all()) == [other]
    for row in mine:
        with pytest.raises(ClientError) as caught:
            s3_client.head_object(Bucket=s3, Key=row.stored_file.name)
        assert caught.value.response["Error"]["Code"] == "404"
    s3_client.head_object(Bucket=s3, Key=other.stored_file.name)  # another person's stays


@pytest.mark.obligation("DSR-9")
def test_a_dry_run_erasure_keeps_row_and_object(
    s3, s3_client, contact_a, django_capture_on_commit_callbacks
):
    row = _add(contact_a)
    with django_capture_on_commit_callbacks(execute=True):
        report = registry.erase(
            Subject("contact", contact_a.organisation_id, contact_a.pk), dry_run=True
        )
    assert report.by_model["files.ContactFile"]["deleted"] == 1
    assert ContactFile.objects.filter(pk=row.pk).exists()
    s3_client.head_object(Bucket=s3, Key=row.stored_file.name)
