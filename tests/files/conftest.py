"""Contact-file fixtures: local storage in a temporary folder by default, and a real S3 endpoint
(moto's server on loopback, DESIGN.md) for the tests that ask for ``s3``.

No mocks: django-storages talks HTTP to moto exactly as it would to AWS.
"""

from __future__ import annotations

import io
import logging
import socket
import uuid
import zipfile

import boto3
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from carely.api.scopes import ALL_SCOPES
from carely.api.services import api_key_create
from carely.audit.context import Actor, acting_as
from contacts.services import contact_create

REGION = "eu-central-1"
CREDENTIALS = {"access_key": "testing", "secret_key": "testing"}

PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(64))
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(64))
MP3 = b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\xff\xfb\x90\x64" + bytes(200)
WAV = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(32)
OGG = b"OggS\x00\x02" + bytes(50)
M4A = b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00M4A mp42isom" + bytes(40)
WINDOWS_EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff" + bytes(100)
LINUX_ELF = b"\x7fELF\x02\x01\x01\x00" + bytes(100)


def docx_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def upload(content: bytes, name: str = "izvid.pdf", content_type: str = "application/pdf"):
    return SimpleUploadedFile(name, content, content_type=content_type)


@pytest.fixture(autouse=True)
def local_storage(settings, tmp_path):
    """Every test stores into its own folder (never var/media)."""
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "media"), "base_url": "/media-not-public/"},
        },
    }
    return tmp_path / "media"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint():
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_client(moto_endpoint):
    return boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id=CREDENTIALS["access_key"],
        aws_secret_access_key=CREDENTIALS["secret_key"],
    )


@pytest.fixture
def s3(settings, local_storage, moto_endpoint, s3_client):
    """STORAGES["default"] on moto's S3, with the production options (carely/settings.py)."""
    bucket = f"carely-test-{uuid.uuid4().hex[:12]}"
    s3_client.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": bucket,
                "region_name": REGION,
                "endpoint_url": moto_endpoint,
                "default_acl": "private",
                "querystring_auth": True,
                "querystring_expire": 300,
                "file_overwrite": False,
                "object_parameters": {"ServerSideEncryption": "AES256"},
                **CREDENTIALS,
            },
        },
    }
    return bucket


@pytest.fixture
def contact_a(org_a):
    return contact_create(
        organisation=org_a,
        data={"first_name": "Ana", "last_name": "Novak", "email": "ana@example.test"},
        source_kind="staff",
    )


@pytest.fixture
def contact_b(org_b):
    return contact_create(
        organisation=org_b,
        data={"first_name": "Bor", "email": "bor@example.test"},
        source_kind="staff",
    )


@pytest.fixture
def as_staff_a(staff_a):
    with acting_as(Actor.user(staff_a.pk)):
        yield staff_a


def api_client(organisation, scopes=ALL_SCOPES) -> APIClient:
    _key, plaintext = api_key_create(
        organisation=organisation, name="Practice system", scopes=list(scopes)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    return client
