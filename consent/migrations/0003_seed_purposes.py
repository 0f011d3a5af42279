"""Default purposes and first wordings for the organisations that exist already (new ones get
them when created, consent.apps)."""

from django.db import migrations


def seed(apps, schema_editor):
    from consent.seeding import purposes_seed

    Organisation = apps.get_model("orgs", "Organisation")
    Purpose = apps.get_model("consent", "Purpose")
    Wording = apps.get_model("consent", "Wording")
    for organisation_id in Organisation.objects.values_list("pk", flat=True):
        purposes_seed(organisation_id, purpose_model=Purpose, wording_model=Wording)


class Migration(migrations.Migration):
    dependencies = [("consent", "0002_append_only_guard")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
