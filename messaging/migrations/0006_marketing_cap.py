"""The per-organisation frequency cap on marketing messages (MSG-4): 4 per 30 days unless the
organisation changes it; a count of 0 switches it off.

No new index: dispatch counts a batch's contacts through the existing index on the contact,
which finds each contact's rows directly; the window and kind are then checked on those rows
only (the plan and figures are in messaging/frequency_cap.py).
"""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("messaging", "0005_message_fillfactor")]

    operations = [
        migrations.AddField(
            model_name="messagingoptions",
            name="marketing_cap_count",
            field=models.PositiveSmallIntegerField(default=4),
        ),
        migrations.AddField(
            model_name="messagingoptions",
            name="marketing_cap_days",
            field=models.PositiveSmallIntegerField(default=30),
        ),
    ]
