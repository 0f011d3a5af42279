"""A deleted ``ContactFile`` row takes its stored object with it, after the commit.

The registry's erasure already removes stored files after commit; this covers the other ways a
row goes (the contact or the organisation deleted, ``contact_file_delete``), so no object is
left behind in storage. Deleting an absent object is a no-op on both backends, so the two paths
may both fire.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from files.models import ContactFile


@receiver(post_delete, sender=ContactFile, dispatch_uid="files.contact_file_stored_delete")
def _delete_stored_object(sender: Any, instance: ContactFile, **kwargs: Any) -> None:
    name = instance.stored_file.name
    if name:
        transaction.on_commit(partial(instance.stored_file.storage.delete, name))
