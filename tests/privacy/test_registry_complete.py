"""The registry classifies every column of every installed model (DSR-9: "in every store").

A model field that is neither declared personal nor listed as not personal would escape erasure
and export; this test names it so the author declares it in the app's privacy.py.
"""

import pytest
from django.apps import apps
from django.db import models
from django.test.utils import isolate_apps

from carely.privacy.registry import (
    Category,
    DeclarationError,
    Erase,
    Personal,
    Reach,
    Registry,
    registry,
)


@pytest.mark.obligation("DSR-9")
def test_every_field_of_every_installed_model_is_classified():
    missing = registry.unclassified(apps.get_models())
    assert missing == [], (
        "These fields are not in the personal-data registry:\n  "
        + "\n  ".join(missing)
        + "\nDeclare each in its app's privacy.py: in fields={...} with Personal(category, "
        "erase=..., ...) when it holds personal data, else in not_personal=[...]; or declare the "
        "whole model with registry.not_personal_model(..., reason=...) or opaque_model(...). "
        "See carely/privacy/registry.py and docs/adr/0005-personal-data-registry.md."
    )


@isolate_apps("tests.privacy_probe")
def test_the_check_names_an_unclassified_field():
    class Tmp(models.Model):
        name = models.CharField(max_length=10)
        secret_diagnosis = models.TextField()

        class Meta:
            app_label = "privacy_probe"

        def __str__(self):
            return self.name

    local = Registry()
    local.subject_kind("contact")
    local.declare(
        Tmp,
        reach=Reach("contact", "id"),
        retention="contact_consent",
        fields={"name": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW)},
        not_personal=["id"],
    )
    assert local.unclassified([Tmp]) == ["privacy_probe.Tmp.secret_diagnosis"]


def _declare(**overrides):
    local = Registry()
    local.subject_kind("contact")
    kwargs = {
        "reach": Reach("contact", "patient_id"),
        "retention": "contact_consent",
        "fields": {"body": Personal(Category.MESSAGE_CONTENT, erase=Erase.DELETE_ROW)},
        "not_personal": ["id", "organisation", "patient", "created_at"],
    }
    kwargs.update(overrides)
    local.declare("privacy_probe.ProbeNote", **kwargs)
    return local


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"not_personal": ["id", "organisation", "patient", "created_on"]},
            "privacy_probe.ProbeNote.created_on: the privacy declaration names a field",
        ),
        (
            {"fields": {"bdy": Personal(Category.MESSAGE_CONTENT, erase=Erase.DELETE_ROW)}},
            "ProbeNote.bdy",
        ),
        (
            {"not_personal": ["id", "organisation", "patient", "created_at", "body"]},
            "declared both personal and not personal",
        ),
        (
            {"fields": {"body": Personal(Category.BILLING, erase=Erase.KEEP_RESTRICTED)}},
            "keep_restricted needs the legal reason",
        ),
        ({"reach": Reach("visitor", "id")}, "subject kind 'visitor' is not declared"),
        (
            {
                "fields": {"body": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW)},
                "retention": None,
            },
            "no retention category",
        ),
        (
            {
                "fields": {
                    "body": Personal(Category.IDENTITY, erase=Erase.DELETE_ROW),
                    "created_at": Personal(Category.IDENTITY, erase=Erase.NULL),
                },
                "not_personal": ["id", "organisation", "patient"],
            },
            "erase=null needs a nullable field",
        ),
    ],
)
def test_a_wrong_declaration_fails_loudly(overrides, message):
    with pytest.raises(DeclarationError, match=message.replace(".", r"\.")):
        _declare(**overrides)


def test_unknown_models_and_double_declarations_fail():
    with pytest.raises(DeclarationError, match=r"unknown model 'privacy_probe\.Nope'"):
        Registry().not_personal_model("privacy_probe.Nope", reason="x")
    local = _declare()
    with pytest.raises(DeclarationError, match="declared twice"):
        local.not_personal_model("privacy_probe.ProbeNote", reason="x")


def test_describe_lists_categories_purposes_recipients_and_retention():
    described = {d["model"]: d for d in registry.describe()}
    patient = described["privacy_probe.ProbePatient"]
    assert patient["purposes"] == ["care_administration", "appointment_reminders"]
    assert patient["recipients"] == ["infobip"]
    email = next(f for f in patient["fields"] if f["field"] == "email")
    assert email == {
        "field": "email",
        "category": "contact",
        "subject": "contact",
        "erasure": "delete_row",
        "legal_reason": "",
        "export_as": "e-mail",
        "provided_by_subject": True,
        "retention": "contact_consent",
        "retention_rule": "until consent is withdrawn, then 90 days unused (evidence); delete",
    }
    assert described["sessions.Session"]["opaque"] is True


@pytest.mark.obligation("SEC-6")
def test_every_retention_category_in_use_has_its_rule_in_words():
    """Records of processing show each category's rule; a name without one would read
    "see the retention rules" to a DPO."""
    from carely.privacy.describe import RETENTION_CATEGORIES

    used = {f.retention for entry in registry.entries() for f in entry.fields}
    used |= {opaque.retention for opaque in registry.opaque_models().values()}
    assert used - set(RETENTION_CATEGORIES) == set()
