"""Appointments indexed by status and start: the company's appointments of one status in start
order (the API's ``appointments/?status=booked``) without walking every past appointment."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0028_attribute_indexes")]

    operations = [
        migrations.AddIndex(
            model_name="appointment",
            index=models.Index(fields=["status", "start"], name="clientdb_appt_status_start"),
        ),
    ]
