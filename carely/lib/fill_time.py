"""The signed "shown at" time of a public form (consent sign-up, privacy requests).

People read and fill a form in seconds; scripts post at once, or replay an old page. The page
carries the time it was shown, signed with a salt of the form's own, and the form accepts a
post only when that time is neither too recent nor too old (each form sets its limits).
"""

from __future__ import annotations

import time

from django.core import signing


def fill_stamp(salt: str, at: float | None = None) -> str:
    """The signed time the form is shown (now, or ``at`` in tests)."""
    return signing.dumps(int(at if at is not None else time.time()), salt=salt)


def fill_stamp_age(stamp: str, salt: str, max_age: int) -> float | None:
    """Seconds since the form was shown, or None for a missing, forged or too old stamp."""
    try:
        shown = signing.loads(stamp, salt=salt, max_age=max_age)
    except signing.BadSignature:
        return None
    age = time.time() - float(shown)
    return age if age <= max_age else None
