import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0006_services_from_appointments")]

    operations = [
        migrations.RemoveField(model_name="appointment", name="service"),
        migrations.RenameField(model_name="appointment", old_name="service_ref", new_name="service"),
        migrations.AlterField(
            model_name="appointment",
            name="service",
            field=models.ForeignKey(
                on_delete=django.db.models.deletion.PROTECT,
                related_name="appointments",
                to="wagtail_clientdb.service",
                verbose_name="service",
            ),
        ),
    ]
