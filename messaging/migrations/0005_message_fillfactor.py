"""Leave room on each page of the outbox table for the rows' own updates (PostgreSQL only).

A message row is updated three or four times in a few seconds (claim, ``handed_at``, result,
reports). With full pages (fillfactor 100, the default, and bulk-inserted rows) every update puts
the new version on another page and adds an entry to each index. With free space on the page, an
update that changes no indexed column (``handed_at``/``attempts`` before the provider call) is a
heap-only tuple: no index writes. Autovacuum is told to visit the table after 2 % of it changed
rather than 20 %, so dead versions are pruned while the backlog drains. Affects pages written
from now on; SQLite has no such setting.
"""

from django.db import migrations

TABLE = "messaging_message"


def forwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE {TABLE} SET (fillfactor = 80, autovacuum_vacuum_scale_factor = 0.02, "
        "autovacuum_analyze_scale_factor = 0.02)"
    )


def backwards(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        f"ALTER TABLE {TABLE} RESET (fillfactor, autovacuum_vacuum_scale_factor, "
        "autovacuum_analyze_scale_factor)"
    )


class Migration(migrations.Migration):
    dependencies = [("messaging", "0004_event_source_consent")]

    operations = [migrations.RunPython(forwards, backwards)]
