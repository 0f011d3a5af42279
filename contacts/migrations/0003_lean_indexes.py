"""Cheaper writes for the register (ADR 0008): two redundant indexes dropped, and on PostgreSQL
the blind-index columns compared bytewise ("C" collation) without their LIKE twins."""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BLIND_INDEX_COLUMNS = ("external_id_bidx", "email_bidx", "phone_bidx")


def blind_indexes_bytewise(apps, schema_editor):
    """Blind indexes are base64url digests found only by equality: a linguistic collation makes
    every b-tree comparison a strcoll() call, and the varchar_pattern_ops twin Django adds for
    LIKE is never used but written on every insert."""
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexname FROM pg_indexes WHERE tablename = %s AND indexname LIKE %s",
            ["contacts_contact", r"%\_bidx\_%\_like"],
        )
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX IF EXISTS "{name}"')
        alters = ", ".join(
            f'ALTER COLUMN "{column}" TYPE varchar(43) COLLATE "C"' for column in BLIND_INDEX_COLUMNS
        )
        cursor.execute(f"ALTER TABLE contacts_contact {alters}")


class Migration(migrations.Migration):
    dependencies = [
        ("contacts", "0002_importjob"),
        ("orgs", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="contact",
            name="organisation",
            field=models.ForeignKey(
                db_index=False,
                on_delete=django.db.models.deletion.CASCADE,
                related_name="contacts",
                to="orgs.organisation",
            ),
        ),
        migrations.AlterField(
            model_name="contact",
            name="updated_at",
            field=models.DateTimeField(default=django.utils.timezone.now),
        ),
        # The reverse keeps the bytewise collation: it is correct for these columns either way.
        migrations.RunPython(blind_indexes_bytewise, migrations.RunPython.noop),
    ]
