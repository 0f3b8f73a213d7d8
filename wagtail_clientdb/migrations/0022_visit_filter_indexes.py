"""Indexes for the listing's filters at a million customers (issue #17, benchmarks/scale.py).

A branch's visits by period are read from the index on (branch, start) alone, the customer and
status kept beside the key (PostgreSQL; elsewhere it stays a plain index); the few no-shows
have a partial index of their own. On PostgreSQL an expression index on the birthday's month
and day serves the company's birthday filters ("this month", "within N days"): the expressions
must stay the ones Django writes for ``birthday__month`` and ``birthday__day``, or the planner
does not use it. A branch's birthday filter compares the birthday the branch sees (its own, if
it keeps one), which no index on the customer table answers.
"""

from django.conf import settings
from django.db import migrations, models

BIRTHDAY_INDEX = "clientdb_customer_birthday_md"


def create_birthday_index(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{BIRTHDAY_INDEX}" ON "wagtail_clientdb_customer" '
            '((EXTRACT(MONTH FROM "birthday")), (EXTRACT(DAY FROM "birthday")))'
        )


def drop_birthday_index(apps, schema_editor):
    schema_editor.execute(f'DROP INDEX IF EXISTS "{BIRTHDAY_INDEX}"')


class Migration(migrations.Migration):

    dependencies = [
        ('wagtail_clientdb', '0021_segments'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='appointment',
            name='clientdb_appt_branch_start_idx',
        ),
        migrations.AddIndex(
            model_name='appointment',
            index=models.Index(fields=['branch', 'start'], include=('customer', 'status'), name='clientdb_appt_branch_covering'),
        ),
        migrations.AddIndex(
            model_name='appointment',
            index=models.Index(condition=models.Q(('status', 'no_show')), fields=['branch', 'customer'], name='clientdb_appt_no_show_idx'),
        ),
        migrations.RunPython(create_birthday_index, drop_birthday_index),
    ]
