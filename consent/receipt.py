"""A contact's consent evidence (CON-1, CON-7): the staff history page and the receipt.

``consent_evidence`` reads everything once (ledger with the wordings' full texts, derived
state, objections, suppression); ``receipt_document`` turns it into the JSON receipt and
``receipt_pdf`` into the same content as a PDF, so both say exactly the same.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import reportlab
from django.utils import timezone
from django.utils.translation import gettext as _
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import KeepTogether, Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from carely.orgs.models import Organisation
from consent import selectors
from consent.models import (
    CONCRETE_CHANNELS,
    ConsentEntry,
    Objection,
    Purpose,
    SuppressionEntry,
    SuppressionKind,
)
from contacts.models import Contact

# What the receipt shows of the person, for the access log.
RECEIPT_FIELDS = (
    "first_name",
    "last_name",
    "consent_ledger",
    "consent_ledger.ip_address",
    "consent_ledger.user_agent",
    "consent_ledger.note",
    "consent_state",
    "objections",
    "suppression",
)


@dataclass
class StateRow:
    purpose: Purpose
    cells: list[dict[str, Any]]  # per concrete channel: status ("" for none), entry id, since


@dataclass
class Evidence:
    organisation: Organisation
    contact: Contact
    entries: list[ConsentEntry]
    state: list[StateRow]
    objections: list[Objection]
    suppressed: list[str]  # suppression kinds that match the contact's addresses

    @property
    def marketing_blocked(self) -> bool:
        return bool(self.suppressed) or any(o.kind == "direct_marketing" for o in self.objections)


def consent_evidence(*, organisation: Organisation, contact: Contact) -> Evidence:
    entries = list(
        selectors.consent_ledger(organisation=organisation, contact_id=contact.pk).select_related(
            "recorded_by", "guardian"
        )
    )
    states = selectors.consent_states(organisation=organisation, contact_ids=[contact.pk]).get(
        contact.pk, {}
    )
    state = []
    for purpose in selectors.purpose_list(organisation=organisation):
        cells = []
        for channel in CONCRETE_CHANNELS:
            current = states.get((purpose.slug, channel))
            cells.append(
                {
                    "channel": channel,
                    "status": current.status if current else "",
                    "entry_id": current.current.id if current else None,
                    "since": current.current.recorded_at if current else None,
                }
            )
        state.append(StateRow(purpose, cells))
    digests = [d for d in (contact.email_bidx, contact.phone_bidx, contact.external_id_bidx) if d]
    suppressed = sorted(
        set(
            SuppressionEntry.objects.for_organisation(organisation)
            .filter(digest__in=digests)
            .values_list("kind", flat=True)
        )
    )
    objections = list(selectors.objection_list(organisation=organisation, contact_id=contact.pk))
    return Evidence(organisation, contact, entries, state, objections, suppressed)


def _when(value: dt.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


def recorded_by(entry: ConsentEntry) -> dict[str, Any]:
    """Who wrote the entry, without staff names: a receipt goes to the patient."""
    if entry.recorded_by_id:
        return {"type": "staff", "user_id": entry.recorded_by_id}
    if entry.api_key_id:
        return {"type": "api_key", "api_key_id": entry.api_key_id}
    if entry.source == "system":
        return {"type": "system"}
    return {"type": "the_person", "via": entry.source}


def receipt_document(evidence: Evidence) -> dict[str, Any]:
    contact = evidence.contact
    return {
        "document": "consent_receipt",
        "generated_at": _when(timezone.now()),
        "organisation": {"name": evidence.organisation.name, "slug": evidence.organisation.slug},
        "contact": {
            "id": contact.pk,
            "first_name": contact.first_name,
            "last_name": contact.last_name,
        },
        "entries": [
            {
                "id": e.pk,
                "recorded_at": _when(e.recorded_at),
                "purpose": e.purpose.slug,
                "purpose_name": e.purpose.name,
                "channel": e.channel,
                "status": e.status,
                "source": e.source,
                "cause": e.cause,
                "wording": (
                    {
                        "id": e.wording.pk,
                        "version": e.wording.version,
                        "language": e.wording.language,
                        "text": e.wording.text,
                    }
                    if e.wording
                    else None
                ),
                "recorded_by": recorded_by(e),
                "guardian_contact_id": e.guardian_id,
                "ip_address": e.ip_address,
                "user_agent": e.user_agent,
                "note": e.note,
            }
            for e in evidence.entries
        ],
        "current_state": [
            {
                "purpose": row.purpose.slug,
                "channel": cell["channel"],
                "status": cell["status"] or "none",
                "entry_id": cell["entry_id"],
                "since": _when(cell["since"]),
            }
            for row in evidence.state
            for cell in row.cells
        ],
        "objections": [
            {
                "id": o.pk,
                "kind": o.kind,
                "received_at": _when(o.received_at),
                "source": o.source,
                "grounds_recorded_at": _when(o.grounds_recorded_at),
            }
            for o in evidence.objections
        ],
        "marketing_suppressed_by": evidence.suppressed,
    }


# --- PDF ------------------------------------------------------------------------------------------


@cache
def _font() -> str:
    """Bitstream Vera, shipped with reportlab: the PDF core fonts have no č."""
    folder = Path(reportlab.__file__).parent / "fonts"
    pdfmetrics.registerFont(TTFont("CarelyVera", str(folder / "Vera.ttf")))
    pdfmetrics.registerFont(TTFont("CarelyVeraBold", str(folder / "VeraBd.ttf")))
    return "CarelyVera"


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    base = ParagraphStyle("base", fontName=font, fontSize=9.5, leading=13)
    return {
        "base": base,
        "small": ParagraphStyle(
            "small", parent=base, fontSize=8, leading=10.5, textColor=colors.HexColor("#4a5a61")
        ),
        "title": ParagraphStyle(
            "title", parent=base, fontName="CarelyVeraBold", fontSize=16, leading=20, spaceAfter=6
        ),
        "h2": ParagraphStyle(
            "h2",
            parent=base,
            fontName="CarelyVeraBold",
            fontSize=11.5,
            leading=15,
            spaceBefore=10,
            spaceAfter=4,
        ),
        "quote": ParagraphStyle(
            "quote",
            parent=base,
            leftIndent=8,
            borderPadding=4,
            backColor=colors.HexColor("#f3f6f5"),
        ),
    }


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    from xml.sax.saxutils import escape

    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def _local(value: dt.datetime | None) -> str:
    return timezone.localtime(value).strftime("%d. %m. %Y %H:%M") if value else "—"


def receipt_pdf(evidence: Evidence, labels: dict[str, dict[str, str]]) -> bytes:
    """The receipt as a PDF. ``labels`` maps code values to words in the page's language
    (``{"status": {...}, "source": {...}, "channel": {...}}``)."""
    s = _styles()
    contact = evidence.contact
    name = " ".join(p for p in (contact.first_name, contact.last_name) if p) or f"#{contact.pk}"
    story: list[Any] = [
        _p(_("Consent receipt"), s["title"]),
        _p(evidence.organisation.name, s["base"]),
        _p(_("For: %(name)s (contact #%(id)s)") % {"name": name, "id": contact.pk}, s["base"]),
        _p(_("Made on %(when)s") % {"when": _local(timezone.now())}, s["small"]),
        _p(_("What was agreed, in the order it happened"), s["h2"]),
    ]
    if not evidence.entries:
        story.append(_p(_("No consent has been recorded."), s["base"]))

    def label(kind: str, value: str) -> str:
        return labels.get(kind, {}).get(value, value)

    for entry in evidence.entries:
        block: list[Any] = [
            _p(
                f"{_local(entry.recorded_at)} · {entry.purpose.name} · "
                f"{label('channel', entry.channel)} · {label('status', entry.status)}",
                s["base"],
            ),
            _p(
                _("Source: %(source)s. Entry #%(id)s.")
                % {"source": label("source", entry.source), "id": entry.pk},
                s["small"],
            ),
        ]
        if entry.wording:
            block.append(
                _p(
                    _("Text shown (version %(version)s, %(language)s):")
                    % {"version": entry.wording.version, "language": entry.wording.language},
                    s["small"],
                )
            )
            block.append(_p(entry.wording.text, s["quote"]))
        if entry.note:
            block.append(_p(_("Note: %(note)s") % {"note": entry.note}, s["small"]))
        block.append(Spacer(1, 3 * mm))
        story.append(KeepTogether(block))

    story.append(_p(_("Current state"), s["h2"]))
    rows: list[list[Any]] = [
        [_p(_("Purpose"), s["small"])]
        + [_p(label("channel", c), s["small"]) for c in CONCRETE_CHANNELS]
    ]
    for row in evidence.state:
        rows.append(
            [_p(row.purpose.name, s["base"])]
            + [
                _p(label("status", cell["status"]) if cell["status"] else "—", s["base"])
                for cell in row.cells
            ]
        )
    table = Table(rows, colWidths=[60 * mm, 35 * mm, 35 * mm, 35 * mm])
    table.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.HexColor("#d9e1df")),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
            ]
        )
    )
    story.append(table)
    if evidence.objections or evidence.suppressed:
        story.append(_p(_("Objections"), s["h2"]))
        for objection in evidence.objections:
            story.append(
                _p(f"{_local(objection.received_at)} · {objection.get_kind_display()}", s["base"])
            )
        if evidence.suppressed:
            kinds = ", ".join(str(SuppressionKind(k).label) for k in evidence.suppressed)
            story.append(
                _p(
                    _("No marketing is sent to these addresses: %(kinds)s.") % {"kinds": kinds},
                    s["base"],
                )
            )
    out = io.BytesIO()
    SimpleDocTemplate(
        out,
        pagesize=A4,
        title=_("Consent receipt"),
        author=evidence.organisation.name,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
    ).build(story)
    return out.getvalue()
