from django.db import migrations

SUBPROCESSORS = [
    {
        "slug": "aws",
        "name": "Amazon Web Services EMEA SARL",
        "service": "hosting, file storage (S3), e-mail delivery (SES), AI drafting (Bedrock)",
        "location": "eu-central-1 (Frankfurt, Germany)",
        "in_eea": True,
        "all_activities": True,
    },
    {
        "slug": "infobip",
        "name": "Infobip Ltd.",
        "service": "SMS, e-mail and WhatsApp delivery",
        "location": "EU data centres",
        "in_eea": True,
        "all_activities": False,
    },
]


def seed(apps, schema_editor):
    Subprocessor = apps.get_model("privacy", "Subprocessor")
    for row in SUBPROCESSORS:
        Subprocessor.objects.update_or_create(slug=row["slug"], defaults=row)


class Migration(migrations.Migration):
    dependencies = [("privacy", "0001_records_of_processing")]
    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
