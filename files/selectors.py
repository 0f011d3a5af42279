"""Reads over contact files, always scoped to one organisation (TEN-1): another organisation's
contact or file is ``DoesNotExist`` here and a 404 upstream."""

from __future__ import annotations

from django.db.models import QuerySet

from carely.orgs.models import Organisation
from carely.orgs.scoping import require_organisation
from contacts.models import Contact
from files.models import ContactFile


def contact_file_list(
    *, organisation: Organisation | None, contact: Contact | int
) -> QuerySet[ContactFile]:
    """The contact's files, newest first. The uploader is joined in, for the panel."""
    organisation = require_organisation(organisation)
    contact_id = contact.pk if isinstance(contact, Contact) else contact
    return (
        ContactFile.objects.for_organisation(organisation)
        .filter(contact_id=contact_id)
        .select_related("uploaded_by")
        .order_by("-uploaded_at", "-pk")
    )


def contact_file_get(
    *, organisation: Organisation | None, file_id: int, contact_id: int | None = None
) -> ContactFile:
    """One file of the organisation (and of that contact, when given), or ``DoesNotExist``."""
    files = ContactFile.objects.for_organisation(organisation).select_related("contact")
    if contact_id is not None:
        files = files.filter(contact_id=contact_id)
    return files.get(pk=file_id)


def contact_for_files(*, organisation: Organisation | None, contact_id: int) -> Contact:
    """The organisation's contact that files are attached to, or ``Contact.DoesNotExist``."""
    return Contact.objects.get_for_organisation(organisation, pk=contact_id)
