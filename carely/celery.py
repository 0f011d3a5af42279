"""The Celery app and its beat schedule.

Embedded default: kombu's filesystem transport under var/ (a real worker and beat, no server).
Production: Redis. Both are configured in settings (CELERY_*).
"""

import os
from datetime import timedelta

from celery import Celery
from celery.schedules import crontab

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "carely.settings")

app = Celery("carely")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

# Each later issue adds its periodic jobs here (purges, deadline sweeps, exit exports).
app.conf.beat_schedule = {
    "heartbeat": {"task": "carely.lib.tasks.heartbeat", "schedule": timedelta(seconds=60)},
    "idempotency-records-purge": {
        "task": "carely.api.tasks.idempotency_records_purge",
        "schedule": timedelta(hours=1),
    },
    # Rejected-row files of finished imports, abandoned uploads and stalled jobs.
    "contact-imports-purge": {
        "task": "contacts.tasks.contact_imports_purge",
        "schedule": timedelta(hours=24),
    },
    # Consent given without a relationship lapses after two years (CON-5).
    "consent-lapse": {
        "task": "consent.tasks.consent_lapse_run",
        "schedule": timedelta(hours=24),
    },
    # Public consent form sign-ups whose 30-minute code was never confirmed.
    "consent-signups-purge": {
        "task": "consent.tasks.pending_signups_purge",
        "schedule": timedelta(hours=1),
    },
    # Campaigns: start the due ones, finish a crashed materialisation, complete ended ones.
    "campaigns-tick": {
        "task": "campaigns.tasks.campaigns_tick",
        "schedule": timedelta(seconds=30),
    },
    # Messages due again (quiet hours over, back-off passed, scheduled send_at reached).
    "messages-dispatch-sweep": {
        "task": "messaging.tasks.messages_dispatch_sweep",
        "schedule": timedelta(seconds=15),
    },
    # Rows a crashed worker left in "sending": resolved from the provider, never resent blindly.
    "messages-reconcile": {
        "task": "messaging.tasks.messages_reconcile",
        "schedule": timedelta(seconds=60),
    },
    # Each DPO's morning e-mail: requests due within 7 days and overdue ones (DSR-4). 06:00 UTC
    # is 07:00 or 08:00 in Ljubljana; a request is listed at most once a day.
    "dsr-reminders": {
        "task": "dsr.tasks.dsr_reminders_send",
        "schedule": crontab(hour=6, minute=0),
    },
    # Webhook bodies a lost task never applied; processed ones deleted after their keep period.
    "webhook-receipts-sweep": {
        "task": "messaging.receipts.webhook_receipts_sweep",
        "schedule": timedelta(minutes=5),
    },
}
