"""The subject's download link (DSR-6, DSR-7, CNT-3): the link is the secret, it expires, every
download is counted, access-logged and recorded as a step of the request."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
import time_machine
from django.utils import timezone

from carely.audit.context import Actor
from carely.audit.models import AccessAction, AccessLogEntry, AccessPurpose, ActorType
from dsr import downloads
from dsr.access import access_package_build
from dsr.downloads import download_token_issue, download_url, token_hash
from dsr.models import ArtifactKind, DsrArtifact, DsrStep, StepKind
from tests.consent.conftest import ana  # noqa: F401
from tests.dsr.factories import make_request
from tests.dsr.test_access import local_storage  # noqa: F401


@pytest.fixture
def built(org_a, ana, dpo_a):  # noqa: F811
    request = make_request(org_a, ana, language="sl")
    artifact, token = access_package_build(request, actor=Actor.user(dpo_a.pk))
    return artifact, token


def path(token):
    return f"/dsr/download/{token}/"


def body(response):
    return b"".join(response.streaming_content)


def downloads_logged(artifact):
    return AccessLogEntry.objects.filter(
        organisation_id=artifact.organisation_id,
        subject_type="contact",
        subject_id=str(artifact.contact_id),
        action=AccessAction.DOWNLOAD,
    )


@pytest.mark.obligation("DSR-6", "CNT-3")
def test_a_valid_link_hands_out_the_zip_counted_logged_and_recorded(client, built, ana):  # noqa: F811
    artifact, token = built
    response = client.get(path(token))

    assert response.status_code == 200
    content = body(response)
    assert hashlib.sha256(content).hexdigest() == artifact.sha256
    assert len(content) == artifact.size
    assert response["Content-Type"] == "application/zip"
    disposition = response["Content-Disposition"]
    assert disposition.startswith("attachment;")
    assert f"{artifact.request.reference}-access-zip.zip" in disposition
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"

    artifact.refresh_from_db()
    assert artifact.downloads == 1
    (entry,) = downloads_logged(artifact)
    assert entry.actor_type == ActorType.ANONYMOUS
    assert entry.purpose == AccessPurpose.DATA_SUBJECT_REQUEST
    assert entry.what == [f"access_zip:{artifact.pk}"]
    assert entry.subject_id == str(ana.pk)
    step = DsrStep.objects.get(request=artifact.request, kind=StepKind.DOWNLOADED)
    assert step.actor_type == ActorType.ANONYMOUS
    assert step.data == {"artifact_id": artifact.pk, "kind": "access_zip", "downloads": 1}

    assert body(client.get(path(token))) == content
    artifact.refresh_from_db()
    assert artifact.downloads == 2
    assert downloads_logged(artifact).count() == 2
    assert DsrStep.objects.filter(request=artifact.request, kind=StepKind.DOWNLOADED).count() == 2


@pytest.mark.obligation("DSR-6")
def test_the_link_expires_after_seven_days(client, built):
    artifact, token = built
    assert artifact.expires_at - timezone.now() > dt.timedelta(days=6, hours=23)
    with time_machine.travel(artifact.expires_at - dt.timedelta(minutes=1)):
        assert client.get(path(token)).status_code == 200
    with time_machine.travel(artifact.expires_at + dt.timedelta(seconds=1)):
        response = client.get(path(token), HTTP_ACCEPT_LANGUAGE="en-GB,en;q=0.9")
    assert response.status_code == 404
    assert b"This link has expired" in response.content
    assert b"contact the clinic" in response.content
    assert "no-store" in response["Cache-Control"]
    artifact.refresh_from_db()
    assert artifact.downloads == 1
    assert downloads_logged(artifact).count() == 1


@pytest.mark.obligation("DSR-6")
def test_a_removed_file_or_an_unknown_link_is_a_calm_404(client, built):
    artifact, token = built
    unknown = client.get(path("x" * 43))
    assert unknown.status_code == 404
    # Slovenian unless the browser asks for English.
    assert "Povezava je potekla" in unknown.content.decode()
    assert "Obrnite se na ambulanto" in unknown.content.decode()
    assert client.get(path("x" * 43), HTTP_ACCEPT_LANGUAGE="de, en;q=0.5").status_code == 404

    DsrArtifact.objects.filter(pk=artifact.pk).update(removed_at=timezone.now())
    removed = client.get(path(token), HTTP_ACCEPT_LANGUAGE="sl")
    assert removed.status_code == 404
    assert "Povezava je potekla" in removed.content.decode()
    artifact.refresh_from_db()
    assert artifact.downloads == 0
    assert not downloads_logged(artifact).exists()
    assert not DsrStep.objects.filter(kind=StepKind.DOWNLOADED).exists()


@pytest.mark.obligation("DSR-6")
def test_a_new_link_replaces_the_old_one_and_only_its_hash_is_stored(client, built):
    artifact, old = built
    new = download_token_issue(artifact, days=7)
    artifact.refresh_from_db()
    assert artifact.token_hash == token_hash(new) == hashlib.sha256(new.encode()).hexdigest()
    assert len(new) >= 43  # 32 random bytes, base64url
    assert new not in str(DsrArtifact.objects.filter(pk=artifact.pk).values().get())
    assert client.get(path(old)).status_code == 404
    assert client.get(path(new)).status_code == 200


@pytest.mark.obligation("DSR-6")
def test_only_the_subjects_copies_are_behind_links(client, built):
    artifact, _token = built
    evidence = DsrArtifact.objects.create(
        organisation_id=artifact.organisation_id,
        request=artifact.request,
        kind=ArtifactKind.EVIDENCE_PACK,
        stored_file=artifact.stored_file.name,
        size=artifact.size,
    )
    token = download_token_issue(evidence)
    assert client.get(path(token)).status_code == 404


@pytest.mark.obligation("DSR-6")
def test_a_stored_object_gone_missing_is_not_counted(client, built):
    artifact, token = built
    artifact.stored_file.storage.delete(artifact.stored_file.name)
    assert client.get(path(token)).status_code == 404
    artifact.refresh_from_db()
    assert artifact.downloads == 0
    assert not downloads_logged(artifact).exists()


@pytest.mark.obligation("DSR-6")
def test_guessing_links_from_one_address_is_cut_off(client, built):
    _artifact, token = built
    for n in range(downloads.FAILURES_PER_HOUR):
        assert client.get(path(f"guess-{n:04d}-" + "y" * 30)).status_code == 404
    # Past the limit even a right guess gets nothing, so guessing cannot be confirmed.
    refused = client.get(path(token), HTTP_ACCEPT_LANGUAGE="en")
    assert refused.status_code == 429
    assert b"Please try again later" in refused.content
    # Another address is not affected.
    assert client.get(path(token), REMOTE_ADDR="192.0.2.44").status_code == 200


@pytest.mark.obligation("DSR-6")
def test_only_get_is_answered(client, built):
    _artifact, token = built
    assert client.post(path(token)).status_code == 405


@pytest.mark.obligation("DSR-6")
def test_download_url_is_absolute_on_the_public_origin(settings):
    settings.CARELY_PUBLIC_BASE_URL = "https://pep.example.eu"
    assert download_url("abc_DEF-123") == "https://pep.example.eu/dsr/download/abc_DEF-123/"
