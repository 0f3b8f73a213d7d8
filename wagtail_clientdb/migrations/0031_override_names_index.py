"""A branch's local values indexed by branch and customer with the local names: the customers a
branch knows by names of its own, which its listing sorts apart from the walk of the name index
and leaves out of it, read from the index alone on every page."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0030_bulk_action_jobs")]

    operations = [
        migrations.AddIndex(
            model_name="customeroverride",
            index=models.Index(
                fields=["branch", "customer"], include=("last_name", "first_name"), name="clientdb_override_names"
            ),
        ),
    ]
