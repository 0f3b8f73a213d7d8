"""Two customer tags cannot differ only in case (0034 merged those that did). A migration of
its own: on PostgreSQL, a table cannot be altered in the transaction that just changed rows
pointing to it."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_clientdb", "0034_tag_folded_names"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="customertag",
            constraint=models.UniqueConstraint(fields=("folded_name",), name="clientdb_unique_tag_folded_name"),
        ),
    ]
