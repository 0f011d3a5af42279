"""The purposes every organisation starts with, and a first wording for each (CON-1).

Called from a data migration (organisations that already exist) and when an organisation is
created (``consent.apps``). Idempotent: what exists is left alone, so a clinic's own edits stay.
The wording texts are a plain starting point in Slovenian and English; a clinic publishes its own
versions (``consent.services.wording_publish``).
"""

from __future__ import annotations

from typing import Any

# slug: (name, description)
DEFAULT_PURPOSES: dict[str, tuple[str, str]] = {
    "marketing": ("Marketing", "News and offers about the clinic's services."),
    "reminders": ("Reminders", "Reminders of booked appointments and check-ups."),
    "surveys": ("Surveys", "Satisfaction and follow-up surveys."),
    "review-requests": ("Review requests", "Being asked to review a visit."),
}

FIRST_VERSION = "1"

_WITHDRAW = {
    "sl": " Privolitev lahko kadar koli prekličem.",
    "en": " I can withdraw this consent at any time.",
}
DEFAULT_WORDINGS: dict[str, dict[str, str]] = {
    "marketing": {
        "sl": "Strinjam se, da mi klinika pošilja novice in ponudbe o svojih storitvah.",
        "en": "I agree that the clinic may send me news and offers about its services.",
    },
    "reminders": {
        "sl": "Strinjam se, da mi klinika pošilja opomnike na dogovorjene termine.",
        "en": "I agree that the clinic may send me reminders of my appointments.",
    },
    "surveys": {
        "sl": "Strinjam se, da me klinika povabi k sodelovanju v anketah o zadovoljstvu.",
        "en": "I agree that the clinic may invite me to satisfaction and follow-up surveys.",
    },
    "review-requests": {
        "sl": "Strinjam se, da me klinika po obisku prosi za oceno.",
        "en": "I agree that the clinic may ask me to review my visits.",
    },
}


def purposes_seed(
    organisation_id: int, *, purpose_model: Any = None, wording_model: Any = None
) -> None:
    """Create the default purposes and their first wordings for one organisation.

    The models are parameters so the data migration can pass its historical ones.
    """
    if purpose_model is None or wording_model is None:
        from consent.models import Purpose, Wording

        purpose_model, wording_model = Purpose, Wording
    purpose_model.objects.bulk_create(
        [
            purpose_model(
                organisation_id=organisation_id, slug=slug, name=name, description=description
            )
            for slug, (name, description) in DEFAULT_PURPOSES.items()
        ],
        ignore_conflicts=True,
    )
    purposes = purpose_model.objects.filter(
        organisation_id=organisation_id, slug__in=list(DEFAULT_PURPOSES)
    )
    wording_model.objects.bulk_create(
        [
            wording_model(
                organisation_id=organisation_id,
                purpose=purpose,
                language=language,
                version=FIRST_VERSION,
                text=text + _WITHDRAW[language],
            )
            for purpose in purposes
            for language, text in DEFAULT_WORDINGS[purpose.slug].items()
        ],
        ignore_conflicts=True,
    )
