"""Possible duplicates (wagtail_clientdb.duplicates): the pairs the scan finds, the import
preview's report, and the indexes new customers are compared through.

The duplicate rules look customers up by birthday and by the last seven digits of their
phone number (of the E.164 form, else of the number as typed). A B-tree index on the
birthday serves both databases; on PostgreSQL, expression indexes on the phone's end serve
the customers, and partial indexes the branches' local values (which are few). The expression must stay the one
``duplicates._suffix_sql`` writes, or the planner does not use them.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


SUFFIX = "right(regexp_replace(COALESCE(NULLIF({phone}, ''), {phone_raw}), '[^0-9]', '', 'g'), 7)"
INDEXES = [
    ("clientdb_customer_birthday", "wagtail_clientdb_customer", "(birthday)", None),
    ("clientdb_customer_phone_end", "wagtail_clientdb_customer", f"(({SUFFIX.format(phone='phone', phone_raw='phone_raw')}))", "postgresql"),
    (
        "clientdb_override_phone_end",
        "wagtail_clientdb_customeroverride",
        f"(({SUFFIX.format(phone='phone', phone_raw='phone_raw')})) WHERE phone_raw IS NOT NULL",
        "postgresql",
    ),
    ("clientdb_override_birthday", "wagtail_clientdb_customeroverride", "(birthday) WHERE birthday IS NOT NULL", "postgresql"),
    ("clientdb_override_email", "wagtail_clientdb_customeroverride", "(email) WHERE email IS NOT NULL", "postgresql"),
    ("clientdb_override_phone", "wagtail_clientdb_customeroverride", "(phone) WHERE phone IS NOT NULL", "postgresql"),
]


def create_indexes(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for name, table, expression, only_on in INDEXES:
        if only_on in (None, vendor):
            schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" {expression}')


def drop_indexes(apps, schema_editor):
    for name, _table, _expression, _only_on in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):

    dependencies = [
        ('wagtail_clientdb', '0014_online_booking_block'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='importjob',
            name='possible_duplicates',
            field=models.JSONField(blank=True, default=dict, verbose_name='possible duplicates'),
        ),
        migrations.CreateModel(
            name='DuplicatePair',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('score', models.FloatField(default=0, verbose_name='score')),
                ('found_at', models.DateTimeField(auto_now_add=True, db_index=True, verbose_name='found')),
                ('dismissed', models.BooleanField(default=False, verbose_name='not a duplicate')),
                ('dismissed_at', models.DateTimeField(blank=True, null=True, verbose_name='marked as not a duplicate at')),
                ('customer_a', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='wagtail_clientdb.customer', verbose_name='customer')),
                ('customer_b', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='wagtail_clientdb.customer', verbose_name='possible duplicate')),
                ('dismissed_by', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL, verbose_name='marked as not a duplicate by')),
            ],
            options={
                'verbose_name': 'possible duplicate',
                'verbose_name_plural': 'possible duplicates',
                'ordering': ['-score', '-found_at', 'pk'],
                'default_permissions': (),
            },
        ),
        migrations.CreateModel(
            name='DuplicateReason',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('rule', models.CharField(choices=[('email', 'Same email'), ('phone', 'Same phone number'), ('name_birthday', 'Similar name and same birthday'), ('name_phone', 'Similar name and same end of phone number')], max_length=20, verbose_name='rule')),
                ('similarity', models.FloatField(blank=True, null=True, verbose_name='name similarity')),
                ('branch', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='wagtail_clientdb.branch', verbose_name='found in the local values of')),
                ('pair', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='reasons', to='wagtail_clientdb.duplicatepair')),
            ],
            options={
                'verbose_name': 'duplicate reason',
                'verbose_name_plural': 'duplicate reasons',
                'default_permissions': (),
            },
        ),
        migrations.AddIndex(
            model_name='duplicatepair',
            index=models.Index(fields=['customer_b'], name='clientdb_duplicate_pair_b'),
        ),
        migrations.AddConstraint(
            model_name='duplicatepair',
            constraint=models.UniqueConstraint(fields=('customer_a', 'customer_b'), name='clientdb_unique_duplicate_pair'),
        ),
        migrations.AddConstraint(
            model_name='duplicatepair',
            constraint=models.CheckConstraint(condition=models.Q(('customer_a__lt', models.F('customer_b'))), name='clientdb_duplicate_pair_ordered'),
        ),
        migrations.RunPython(create_indexes, drop_indexes, elidable=False),
    ]
