"""The access response (DSR-6, GDPR Art. 15): one ZIP with ``access.html`` for people,
``access.json`` for machines and the subject's stored files under ``files/``.

What it holds comes from the personal-data registry, not from a list kept here: every model
that declares fields of the ``contact`` subject kind is walked with the registry's own scoped
query (``carely.privacy.collect.subject_queryset``: this organisation, this contact), so a new
model is in the next response without touching this module. A few models get context the
registry does not carry: the wording text a consent was given to, the purpose and channel of a
message, the before and after of each rectification (``contacts.selectors.contact_history``).

The "about the processing" part (purposes, legal bases, categories, recipients, retention) is
``records_of_processing`` and ``registry.describe()`` restricted to the models where the subject
actually has rows, so nobody is told about processing that never touched them.

``access.json`` (format ``carely-access/1``), keys in this order: ``format``, ``language``,
``generated_at``, ``request``, ``controller``, ``subject``, ``data`` (``{"app.Model": {"title",
"rows": [...]}}``, each row ``id``, context columns, then the registry's export columns),
``rectification_history``, ``files`` (path in the ZIP, size, sha256, or ``missing``),
``source``, ``processing`` (one activity per purpose), ``categories``, ``recipients``,
``retention``, ``stores`` (per model), ``rights``, ``supervisory_authority``,
``automated_decision_making``. ``access.html`` shows the same in the request's language.

Rows are read with ``iterator()`` and written as they come into two temporary files (HTML and
JSON) in one pass, so a long message history is decrypted once and never held in memory; the
number of queries depends on the number of registry models, not on the organisation's size.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from django.core.files import File
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.html import escape

from carely.audit.access_log import access_log_record
from carely.audit.context import Actor
from carely.audit.models import AccessAction, AccessPurpose
from carely.orgs.models import Organisation
from carely.privacy.collect import export_value, subject_entries, subject_queryset
from carely.privacy.describe import RETENTION_CATEGORIES
from carely.privacy.records import Activity, records_of_processing
from carely.privacy.registry import FieldEntry, ModelEntry, Subject, registry
from contacts.models import Contact
from dsr.models import ArtifactKind, DataSubjectRequest, DsrArtifact

FORMAT = "carely-access/1"
CHUNK = 500
# Earlier copies of the subject's data are listed (they are rows about the subject) but their
# files are not put inside the new one: a ZIP of ZIPs tells the person nothing new.
FILES_NOT_COPIED = frozenset({"dsr.DsrArtifact"})

AUTHORITY_NAME = {
    "sl": "Informacijski pooblaščenec Republike Slovenije",
    "en": "Information Commissioner of the Republic of Slovenia",
}
SUPERVISORY_AUTHORITY = {
    "address": "Dunajska cesta 22, 1000 Ljubljana",
    "email": "gp.ip@ip-rs.si",
    "phone": "+386 1 230 97 30",
    "web": "https://www.ip-rs.si",
}

# The rights the subject has (GDPR Art. 7(3), 15-18, 20, 21, 77), in each answer language.
RIGHTS: dict[str, dict[str, str]] = {
    "rectification": {
        "en": "Rectification (Art. 16 GDPR): you may have inaccurate data corrected and "
        "incomplete data completed, also by a supplementary statement.",
        "sl": "Popravek (16. člen GDPR): zahtevate lahko popravek netočnih podatkov in "
        "dopolnitev nepopolnih, tudi z dopolnilno izjavo.",
    },
    "erasure": {
        "en": "Erasure (Art. 17 GDPR): you may ask us to erase your data; what the law obliges "
        "us to keep is restricted instead of erased.",
        "sl": "Izbris (17. člen GDPR): zahtevate lahko izbris svojih podatkov; kar moramo po "
        "zakonu hraniti, namesto izbrisa omejimo.",
    },
    "restriction": {
        "en": "Restriction of processing (Art. 18 GDPR): you may ask us to only store your data "
        "and not use it otherwise, for example while its accuracy is checked.",
        "sl": "Omejitev obdelave (18. člen GDPR): zahtevate lahko, da vaše podatke le hranimo "
        "in jih drugače ne uporabljamo, na primer dokler se preverja njihova točnost.",
    },
    "objection": {
        "en": "Objection (Art. 21 GDPR): you may object to processing based on legitimate "
        "interests; an objection to direct marketing always stops it.",
        "sl": "Ugovor (21. člen GDPR): obdelavi na podlagi zakonitih interesov lahko ugovarjate; "
        "ugovor neposrednemu trženju ga vedno ustavi.",
    },
    "portability": {
        "en": "Data portability (Art. 20 GDPR): you may receive the data you gave us, where we "
        "process it on the basis of consent or a contract, in a machine-readable format (JSON, "
        "CSV), or have it sent to another controller.",
        "sl": "Prenosljivost (20. člen GDPR): podatke, ki ste nam jih dali in jih obdelujemo na "
        "podlagi privolitve ali pogodbe, lahko prejmete v strojno berljivi obliki (JSON, CSV) "
        "ali zahtevate, da jih pošljemo drugemu upravljavcu.",
    },
    "withdrawal_of_consent": {
        "en": "Withdrawal of consent (Art. 7(3) GDPR): you may withdraw a consent at any time, "
        "as easily as you gave it; this does not affect processing before the withdrawal.",
        "sl": "Preklic privolitve (7(3). člen GDPR): privolitev lahko kadar koli prekličete, "
        "enako preprosto, kot ste jo dali; to ne vpliva na obdelavo pred preklicem.",
    },
    "access": {
        "en": "Access (Art. 15 GDPR): you may ask again for a copy of your data and this "
        "information.",
        "sl": "Dostop (15. člen GDPR): kadar koli lahko znova zahtevate kopijo svojih podatkov "
        "in teh informacij.",
    },
    "complaint": {
        "en": "Complaint (Art. 77 GDPR): you may lodge a complaint with the supervisory "
        "authority, the Information Commissioner of the Republic of Slovenia.",
        "sl": "Pritožba (77. člen GDPR): pritožbo lahko vložite pri nadzornem organu, "
        "Informacijskem pooblaščencu Republike Slovenije.",
    },
}

NO_AUTOMATED_DECISIONS = {
    "en": "No automated decision-making, including profiling, takes place: no decision that "
    "has legal or similarly significant effects on you is made solely by automated means "
    "(Art. 22 GDPR).",
    "sl": "Avtomatizirano odločanje, vključno z oblikovanjem profilov, se ne izvaja: nobena "
    "odločitev, ki ima za vas pravne ali podobno pomembne učinke, ni sprejeta zgolj "
    "avtomatizirano (22. člen GDPR).",
}

SOURCES = {
    "form": {
        "en": "You gave us these data yourself, through the clinic's web form.",
        "sl": "Podatke ste nam dali sami, prek spletnega obrazca ambulante.",
    },
    "api": {
        "en": "These data were not collected from you directly: the clinic's practice system "
        "sent them to us through the API.",
        "sl": "Podatkov nismo zbrali neposredno od vas: poslal nam jih je informacijski sistem "
        "ambulante prek vmesnika API.",
    },
    "import": {
        "en": "These data were not collected from you directly: the clinic imported them from a "
        "list (CSV import) of its records.",
        "sl": "Podatkov nismo zbrali neposredno od vas: ambulanta jih je uvozila s seznama "
        "(uvoz CSV) iz svojih evidenc.",
    },
    "staff": {
        "en": "The clinic's staff entered these data, from what you told the clinic or from its "
        "records.",
        "sl": "Podatke je vnesel zaposleni v ambulanti, na podlagi tega, kar ste povedali "
        "ambulanti, ali iz njenih evidenc.",
    },
}

TEXTS = {
    "en": {
        "title": "Your personal data",
        "intro": "This is the answer to your request for access to your personal data "
        "(Art. 15 GDPR). It holds every piece of personal data about you that we store, what "
        "we use it for, who receives it, how long it is kept and what your rights are.",
        "controller": "Controller",
        "controller_contact": "Write to the clinic at the address in the message that brought "
        "you this link, or reply to it, quoting the reference above.",
        "reference": "Request reference",
        "generated": "Prepared on",
        "your_data": "Your data",
        "rows": "entries",
        "history": "Changes to your record",
        "statement": "Supplementary statement",
        "reason": "Reason",
        "before": "before",
        "after": "after",
        "files": "Your files",
        "files_note": "The files themselves are in the folder files/ of this ZIP.",
        "file_missing": "could not be read from storage",
        "source": "Where your data came from",
        "processing": "What we use your data for",
        "purpose": "Purpose",
        "legal_basis": "Legal basis",
        "categories": "Categories of data",
        "recipients": "Recipients",
        "transfers": "Transfers outside the EEA",
        "retention": "How long it is kept",
        "per_store": "Categories and retention by record",
        "record": "Record",
        "rights": "Your rights",
        "authority": "Complaints: the supervisory authority",
        "automated": "Automated decision-making",
        "empty": "none",
        "machine": "The same content, machine-readable, is in access.json in this ZIP.",
        "basis_not_recorded": "The clinic has not yet recorded the legal basis of this "
        "purpose in its records of processing; ask the clinic and it will tell you.",
    },
    "sl": {
        "title": "Vaši osebni podatki",
        "intro": "To je odgovor na vašo zahtevo za dostop do osebnih podatkov (15. člen GDPR). "
        "Vsebuje vse osebne podatke o vas, ki jih hranimo, za kaj jih uporabljamo, kdo jih "
        "prejme, kako dolgo jih hranimo in kakšne so vaše pravice.",
        "controller": "Upravljavec",
        "controller_contact": "Ambulanti pišite na naslov iz sporočila, s katerim ste prejeli "
        "to povezavo, ali nanj odgovorite in navedite zgornjo oznako zahteve.",
        "reference": "Oznaka zahteve",
        "generated": "Pripravljeno",
        "your_data": "Vaši podatki",
        "rows": "zapisov",
        "history": "Spremembe vaših podatkov",
        "statement": "Dopolnilna izjava",
        "reason": "Razlog",
        "before": "prej",
        "after": "potem",
        "files": "Vaše datoteke",
        "files_note": "Datoteke so v mapi files/ tega arhiva ZIP.",
        "file_missing": "datoteke ni bilo mogoče prebrati",
        "source": "Od kod so vaši podatki",
        "processing": "Za kaj uporabljamo vaše podatke",
        "purpose": "Namen",
        "legal_basis": "Pravna podlaga",
        "categories": "Vrste podatkov",
        "recipients": "Uporabniki (prejemniki)",
        "transfers": "Prenosi izven EGP",
        "retention": "Rok hrambe",
        "per_store": "Vrste podatkov in roki hrambe po zbirkah",
        "record": "Zbirka",
        "rights": "Vaše pravice",
        "authority": "Pritožba: nadzorni organ",
        "automated": "Avtomatizirano odločanje",
        "empty": "ni",
        "machine": "Enaka vsebina v strojno berljivi obliki je v datoteki access.json.",
        "basis_not_recorded": "Ambulanta pravne podlage za ta namen še ni vpisala v evidenco "
        "dejavnosti obdelave; vprašajte ambulanto in vam jo bo sporočila.",
    },
}

MODEL_TITLES = {
    "contacts.Contact": {"en": "Your record", "sl": "Vaš zapis"},
    "contacts.ContactChange": {"en": "Record history", "sl": "Zgodovina zapisa"},
    "contacts.ContactTag": {"en": "Tags", "sl": "Oznake"},
    "consent.ConsentEntry": {"en": "Consents", "sl": "Privolitve"},
    "consent.Objection": {"en": "Objections", "sl": "Ugovori"},
    "messaging.Message": {"en": "Messages sent to you", "sl": "Sporočila, poslana vam"},
    "messaging.InboundMessage": {"en": "Your replies", "sl": "Vaši odgovori"},
    "messaging.WhatsAppSession": {"en": "WhatsApp conversations", "sl": "Pogovori WhatsApp"},
    "files.ContactFile": {"en": "Files", "sl": "Datoteke"},
    "audit.AccessLogEntry": {
        "en": "Who looked at or exported your data (access log)",
        "sl": "Kdo je vpogledal ali izvozil vaše podatke (dnevnik dostopov)",
    },
    "audit.AuditEvent": {"en": "Audit trail", "sl": "Revizijska sled"},
    "dsr.DataSubjectRequest": {"en": "Your requests", "sl": "Vaše zahteve"},
    "dsr.DsrStep": {"en": "Steps of your requests", "sl": "Koraki vaših zahtev"},
    "dsr.DsrAttachment": {"en": "Documents of your requests", "sl": "Dokumenti vaših zahtev"},
    "dsr.DsrArtifact": {
        "en": "Earlier copies of your data",
        "sl": "Prejšnje kopije vaših podatkov",
    },
    "dsr.PortabilityPush": {
        "en": "Data sent to other controllers",
        "sl": "Podatki, poslani drugim upravljavcem",
    },
}

# Columns the registry classifies as not personal but without which a row means little to the
# person reading it (which channel a message went by, who looked at the record).
CONTEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "messaging.Message": ("channel", "kind", "purpose", "status", "created_at", "sent_at"),
    "messaging.InboundMessage": ("channel", "outcome"),
    "audit.AccessLogEntry": ("actor_type",),
    "audit.AuditEvent": ("action", "occurred_at"),
    "dsr.DataSubjectRequest": ("reference", "type", "state", "received_at", "decision"),
    "dsr.DsrStep": ("kind", "at"),
    "dsr.DsrArtifact": ("kind", "created_at", "downloads"),
}


class SubjectMissing(ValueError):
    """The request has no confirmed contact (or it was erased): nothing to answer from."""


def _lang(request: DataSubjectRequest) -> str:
    return "en" if (request.language or "").lower().startswith("en") else "sl"


def request_subject(request: DataSubjectRequest) -> tuple[Contact, Organisation]:
    contact = request.contact
    organisation = request.organisation
    if contact is None or organisation is None or contact.organisation_id != organisation.pk:
        raise SubjectMissing(
            f"Request {request.reference} has no confirmed contact of its organisation; confirm "
            "the subject before building the response."
        )
    return contact, organisation


def model_title(label: str, language: str) -> str:
    titles = MODEL_TITLES.get(label)
    if titles:
        return titles[language]
    entry = registry.entry(label)
    return str(entry.model._meta.verbose_name_plural) if entry else label


# --- walking the registry -------------------------------------------------------------------


@dataclass
class StoredFile:
    path: str  # inside the ZIP
    model: str
    row_id: Any
    storage_name: str
    field_file: Any


@dataclass
class Walk:
    counts: dict[str, int] = field(default_factory=dict)
    files: list[StoredFile] = field(default_factory=list)

    @property
    def models(self) -> list[str]:
        return [label for label, count in self.counts.items() if count]


def _safe_name(name: str) -> str:
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[^\w.\- ]+", "_", name, flags=re.UNICODE).strip(" .") or "file"
    return name[:120]


def _jsonable(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


Enricher = Callable[[models.Model, dict[str, Any]], None]


def _consent_enricher(qs: models.QuerySet[Any], organisation_id: int) -> Enricher:
    """The text the person agreed to (CON-1) and the purpose's name, loaded in two queries for
    all of the subject's entries."""
    from consent.models import Purpose, Wording

    wordings = {
        w.pk: w
        for w in Wording._base_manager.filter(
            organisation_id=organisation_id, pk__in=qs.values("wording_id")
        )
    }
    purposes = {
        p.pk: p
        for p in Purpose._base_manager.filter(
            organisation_id=organisation_id, pk__in=qs.values("purpose_id")
        )
    }

    def enrich(obj: models.Model, row: dict[str, Any]) -> None:
        purpose = purposes.get(obj.purpose_id)  # type: ignore[attr-defined]
        wording = wordings.get(obj.wording_id)  # type: ignore[attr-defined]
        row["purpose"] = purpose.slug if purpose else None
        row["purpose_name"] = purpose.name if purpose else None
        row["wording_version"] = wording.version if wording else None
        row["wording_language"] = wording.language if wording else None
        row["wording_text"] = wording.text if wording else None

    return enrich


def _enricher(entry: ModelEntry, qs: models.QuerySet[Any], organisation_id: int) -> Enricher:
    if entry.label == "consent.ConsentEntry":
        return _consent_enricher(qs, organisation_id)
    return lambda obj, row: None


def subject_rows(
    subject: Subject,
    *,
    column_filter: Callable[[ModelEntry, FieldEntry], bool] | None = None,
    context: bool = True,
    entries: list[tuple[ModelEntry, Any]] | None = None,
) -> Iterator[tuple[ModelEntry, Iterator[tuple[models.Model, dict[str, Any]]]]]:
    """For each registry model holding the subject's data: its rows as ``(object, row)``,
    read in chunks. ``column_filter`` keeps only some personal columns (portability)."""
    assert subject.organisation_id is not None
    pairs = entries if entries is not None else list(subject_entries(registry, subject))
    for entry, reach in sorted(pairs, key=lambda pair: _order(pair[0].label)):
        columns = [
            (f.export_name, f)
            for f in entry.fields_for(subject.kind)
            if f.export_name and (column_filter is None or column_filter(entry, f))
        ]
        if not columns:
            continue
        extra = CONTEXT_COLUMNS.get(entry.label, ()) if context else ()
        qs = subject_queryset(entry, reach, subject)
        enrich = _enricher(entry, qs, subject.organisation_id) if context else None

        def rows(
            qs: models.QuerySet[Any] = qs,
            columns: list[tuple[str, FieldEntry]] = columns,
            extra: tuple[str, ...] = extra,
            enrich: Enricher | None = enrich,
        ) -> Iterator[tuple[models.Model, dict[str, Any]]]:
            for obj in qs.order_by("pk").iterator(chunk_size=CHUNK):
                row: dict[str, Any] = {"id": obj.pk}
                for name in extra:
                    row[name] = getattr(obj, name)
                for name, fentry in columns:
                    row[name] = export_value(obj, fentry.field)
                if enrich is not None:
                    enrich(obj, row)
                yield obj, row

        yield entry, rows()


# The person's own record first, then what they see most (consents, messages), then logs.
_FIRST = [
    "contacts.Contact",
    "contacts.ContactTag",
    "consent.ConsentEntry",
    "consent.Objection",
    "messaging.Message",
    "messaging.InboundMessage",
    "files.ContactFile",
    "contacts.ContactChange",
]


def _order(label: str) -> tuple[int, str]:
    return (_FIRST.index(label) if label in _FIRST else len(_FIRST), label)


def file_columns(entry: ModelEntry, kind: str) -> list[FieldEntry]:
    return [f for f in entry.fields_for(kind) if f.is_file and f.export_name]


def take_files(
    entry: ModelEntry, obj: models.Model, row: dict[str, Any], kind: str, walk: Walk
) -> None:
    """Put the row's stored files on the list for ``files/`` and point the row at them."""
    if entry.label in FILES_NOT_COPIED:
        return
    for fentry in file_columns(entry, kind):
        name = fentry.export_name
        if name is None or name not in row:
            continue
        field_file = getattr(obj, fentry.name)
        if not field_file:
            continue
        original = getattr(obj, "original_name", "") or str(field_file.name)
        app_model = entry.label.replace(".", "-").lower()
        path = f"files/{app_model}-{obj.pk}-{_safe_name(str(original))}"
        walk.files.append(StoredFile(path, entry.label, obj.pk, str(field_file.name), field_file))
        row[name] = path


def copy_files(archive: zipfile.ZipFile, walk: Walk) -> list[dict[str, Any]]:
    """Copy each listed stored object into the archive; returns what was copied (or not)."""
    listed: list[dict[str, Any]] = []
    for stored in walk.files:
        item: dict[str, Any] = {"path": stored.path, "model": stored.model, "row_id": stored.row_id}
        digest = hashlib.sha256()
        try:
            with (
                stored.field_file.storage.open(stored.storage_name, "rb") as source,
                archive.open(stored.path, "w", force_zip64=True) as target,
            ):
                for chunk in iter(lambda: source.read(1024 * 1024), b""):
                    digest.update(chunk)
                    target.write(chunk)
        except (FileNotFoundError, OSError):
            item["missing"] = True
        else:
            item["sha256"] = digest.hexdigest()
            item["size"] = archive.getinfo(stored.path).file_size
        listed.append(item)
    return listed


# --- writers ---------------------------------------------------------------------------------


def json_text(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _cell(value: Any, empty: str) -> str:
    if value is None or value == "" or value == []:
        return f'<span class="empty">{escape(empty)}</span>'
    if isinstance(value, dt.datetime):
        return escape(timezone.localtime(value).strftime("%Y-%m-%d %H:%M"))
    if isinstance(value, dt.date):
        return escape(value.isoformat())
    if isinstance(value, bool):
        return "✓" if value else "✗"
    if isinstance(value, list | dict):
        return escape(json_text(value))
    return escape(str(value)).replace("\n", "<br>")


# Column names a person reads in the HTML document, in Slovenian; the JSON keeps the column
# names, and a column without a label here reads as its name with spaces.
COLUMN_LABELS_SL = {
    "id": "oznaka zapisa",
    "first_name": "ime",
    "last_name": "priimek",
    "birth_date": "datum rojstva",
    "gender": "spol",
    "external_id": "številka v sistemu ambulante",
    "email": "e-pošta",
    "phone": "telefon",
    "preferred_language": "želeni jezik",
    "address": "naslov",
    "source_kind": "kako smo podatke pridobili",
    "source": "vir podatkov",
    "relationship_status": "razmerje z ambulanto",
    "relationship_started_at": "začetek razmerja",
    "relationship_ended_at": "konec razmerja",
    "guardian_id": "zakoniti zastopnik (oznaka)",
    "is_minor": "mladoleten",
    "restricted_at": "obdelava omejena od",
    "restriction_reason": "razlog omejitve",
    "restriction_lifted_at": "omejitev odpravljena",
    "restriction_lift_informed_at": "obveščeni o odpravi omejitve",
    "restriction_lift_informed_how": "kako smo vas obvestili",
    "created_at": "ustvarjeno",
    "updated_at": "nazadnje spremenjeno",
    "contact_id": "vaš zapis (oznaka)",
    "channel": "kanal",
    "kind": "vrsta",
    "purpose": "namen",
    "purpose_id": "namen (oznaka)",
    "status": "stanje",
    "subject": "zadeva",
    "body": "besedilo",
    "sent_at": "poslano",
    "recorded_at": "zabeleženo",
    "wording_id": "besedilo privolitve (oznaka)",
    "ip_address": "naslov IP",
    "user_agent": "brskalnik",
    "note": "opomba",
    "original_name": "ime datoteke",
    "document": "dokument",
    "name": "ime",
}


def _label(name: str, language: str) -> str:
    if language == "sl" and name in COLUMN_LABELS_SL:
        return COLUMN_LABELS_SL[name]
    return name.replace("_", " ")


def _row_html(row: dict[str, Any], empty: str, language: str = "en") -> str:
    cells = "".join(
        f"<tr><th>{escape(_label(name, language))}</th><td>{_cell(value, empty)}</td></tr>"
        for name, value in row.items()
    )
    return f'<table class="row">{cells}</table>\n'


def _write_data(subject: Subject, language: str, js: IO[str], html: IO[str], walk: Walk) -> None:
    texts = TEXTS[language]
    js.write('"data": {')
    first_model = True
    for entry, rows in subject_rows(subject):
        count = 0
        for obj, row in rows:
            take_files(entry, obj, row, subject.kind, walk)
            if count == 0:
                title = model_title(entry.label, language)
                js.write(("" if first_model else "]},") + f"\n{json_text(entry.label)}: ")
                js.write(json_text({"title": title})[:-1] + ', "rows": [\n')
                html.write(
                    f'<section class="model" id="{escape(entry.label)}"><h3>{escape(title)}</h3>\n'
                )
                first_model = False
            else:
                js.write(",\n")
            js.write(json_text(row))
            html.write(_row_html(row, texts["empty"], language))
            count += 1
        if count:
            html.write(f'<p class="count">{count} {escape(texts["rows"])}</p></section>\n')
        walk.counts[entry.label] = count
    js.write(("" if first_model else "]}") + "}")


def _history(contact: Contact) -> list[dict[str, Any]]:
    from contacts.selectors import contact_history

    return [
        {
            "at": item.change.created_at.isoformat(),
            "kind": item.kind,
            "fields": [
                {"field": f.name, "before": f.before, "after": f.after} for f in item.fields
            ],
            "statement": item.change.statement,
            "reason": item.change.reason,
        }
        for item in contact_history(contact=contact)
    ]


def _activity_row(activity: Activity, present: set[str], language: str) -> dict[str, Any]:
    row: dict[str, Any] = {**activity.as_row(), "models": sorted(activity.models & present)}
    if activity.purpose is None:
        # The records say "add this purpose" to the DPO; the subject is told plainly instead.
        row["name"] = activity.slug.replace("_", " ").capitalize()
        row["legal_basis"] = TEXTS[language]["basis_not_recorded"]
        row["legal_basis_recorded"] = False
    else:
        row["legal_basis_recorded"] = True
    return row


def _processing(
    organisation: Organisation, models_with_rows: list[str], language: str
) -> dict[str, Any]:
    """Purposes, legal bases, categories, recipients and retention of the processing that
    actually touched the subject: the records of processing (SEC-6) and the registry's
    description, each restricted to the models where the subject has rows."""
    present = set(models_with_rows)
    with translation.override(language):
        activities = [
            _activity_row(activity, present, language)
            for activity in records_of_processing(organisation=organisation)
            if activity.models & present
        ]
    stores = []
    for described in registry.describe():
        if described["model"] not in present:
            continue
        fields = [f for f in described["fields"] if f["subject"] == "contact"]
        stores.append(
            {
                "model": described["model"],
                "title": model_title(described["model"], language),
                "purposes": described["purposes"],
                "recipients": described["recipients"],
                "categories": sorted({f["category"] for f in fields}),
                "retention": sorted(
                    {
                        f"{f['retention'].replace('_', ' ')}: "
                        f"{RETENTION_CATEGORIES.get(f['retention'], '')}"
                        for f in fields
                    }
                ),
            }
        )
    return {
        "processing": activities,
        "categories": sorted({c for store in stores for c in store["categories"]}),
        "recipients": sorted(
            {a["recipients"] for a in activities if a["recipients"]}
            | {r for store in stores for r in store["recipients"]}
        ),
        "retention": sorted({r for store in stores for r in store["retention"]}),
        "stores": stores,
    }


def _information(
    request: DataSubjectRequest,
    organisation: Organisation,
    contact: Contact,
    walk: Walk,
    language: str,
    files: list[dict[str, Any]],
) -> dict[str, Any]:
    source_kind = contact.source_kind
    source_text = SOURCES.get(source_kind, SOURCES["staff"])[language]
    return {
        "rectification_history": _history(contact),
        "files": files,
        "source": {
            "kind": source_kind,
            "kind_label": contact.get_source_kind_display(),
            "detail": contact.source,
            "collected_from_subject": source_kind == "form",
            "text": source_text,
        },
        **_processing(organisation, walk.models, language),
        "rights": [{"right": key, "text": text[language]} for key, text in RIGHTS.items()],
        "supervisory_authority": {
            "name": AUTHORITY_NAME[language],
            "name_sl": AUTHORITY_NAME["sl"],
            "name_en": AUTHORITY_NAME["en"],
            **SUPERVISORY_AUTHORITY,
        },
        "automated_decision_making": {
            "takes_place": False,
            "profiling": False,
            "text": NO_AUTOMATED_DECISIONS[language],
        },
    }


def _head(request: DataSubjectRequest, organisation: Organisation, language: str) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "language": language,
        "generated_at": timezone.now().isoformat(),
        "request": {
            "reference": request.reference,
            "type": request.type,
            "received_at": request.received_at.isoformat(),
        },
        "controller": {
            "name": organisation.name,
            "contact": TEXTS[language]["controller_contact"],
        },
        "subject": {"kind": "contact", "contact_id": request.contact_id},
    }


# --- storing the artifact --------------------------------------------------------------------


def artifact_store(
    request: DataSubjectRequest,
    contact: Contact,
    kind: str,
    zip_path: str,
    *,
    organisation: Organisation,
    actor: Actor,
) -> tuple[DsrArtifact, str]:
    """Save the ZIP at ``zip_path`` in default storage as the request's artifact with its size,
    SHA-256 and a fresh download token, and log the export of the contact's data; returns
    (artifact, plaintext token)."""
    from dsr.downloads import download_token_issue

    digest = hashlib.sha256()
    with open(zip_path, "rb") as source:
        for chunk in iter(lambda: source.read(1024 * 1024), b""):
            digest.update(chunk)
    artifact = DsrArtifact(
        organisation_id=request.organisation_id,
        request=request,
        contact=contact,
        kind=kind,
        size=os.path.getsize(zip_path),
        sha256=digest.hexdigest(),
    )
    token = download_token_issue(artifact)
    with open(zip_path, "rb") as source:
        artifact.stored_file.save(f"{kind}.zip", File(source), save=False)
    try:
        with transaction.atomic():
            artifact.save(force_insert=True)
    except BaseException:
        artifact.stored_file.storage.delete(str(artifact.stored_file.name))
        raise
    access_log_record(
        organisation=organisation,
        subject_type="contact",
        subject_id=contact.pk,
        action=AccessAction.EXPORT,
        what=[f"{kind}:{artifact.pk}"],
        purpose=AccessPurpose.DATA_SUBJECT_REQUEST,
        actor=actor,
    )
    return artifact, token


def access_package_build(request: DataSubjectRequest, *, actor: Actor) -> tuple[DsrArtifact, str]:
    """Build the subject's access response (DSR-6) and store it; returns the artifact and the
    plaintext token of its download link (``dsr.downloads.download_url(token)``)."""
    contact, organisation = request_subject(request)
    language = _lang(request)
    subject = Subject("contact", organisation.pk, contact.pk)
    texts = TEXTS[language]
    walk = Walk()
    with tempfile.TemporaryDirectory(prefix="carely-access-") as folder:
        json_path = os.path.join(folder, "access.json")
        html_path = os.path.join(folder, "access.html")
        zip_path = os.path.join(folder, "access.zip")
        head = _head(request, organisation, language)
        with (
            open(json_path, "w", encoding="utf-8") as js,
            open(html_path, "w", encoding="utf-8") as html,
        ):
            js.write(json_text(head)[:-1] + ", ")
            html.write(
                render_to_string(
                    "dsr/access/access_head.html", {"t": texts, "head": head, "org": organisation}
                )
            )
            _write_data(subject, language, js, html, walk)
            with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
                files = copy_files(archive, walk)
                info = _information(request, organisation, contact, walk, language, files)
                js.write(", " + json_text(info)[1:] + "\n")
                html.write(
                    render_to_string(
                        "dsr/access/access_tail.html",
                        {
                            "t": texts,
                            "info": info,
                            "authority": info["supervisory_authority"],
                            "language": language,
                        },
                    )
                )
                js.close()
                html.close()
                archive.write(html_path, "access.html")
                archive.write(json_path, "access.json")
        return artifact_store(
            request,
            contact,
            ArtifactKind.ACCESS_ZIP,
            zip_path,
            organisation=organisation,
            actor=actor,
        )
