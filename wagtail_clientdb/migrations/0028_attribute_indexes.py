"""Indexes of the attribute values (PostgreSQL only).

A filter on an attribute's value (a choice, yes/no, the API's ``attribute=key:value``) compares
the values a branch sees, its local value laid over the customer's, which no index answers:
counting 10,000 of a choice's customers for a branch read 170,000 of them. GIN indexes on the
customers' and the local values' attributes (``jsonb_path_ops``: containment, ``@>``) find the
customers whose own or local value matches first (see :func:`wagtail_clientdb.attributes.with_value`).
SQLite keeps checking every row.
"""

from django.db import migrations

INDEXES = [
    ("clientdb_customer_attributes", "wagtail_clientdb_customer"),
    ("clientdb_override_attributes", "wagtail_clientdb_customeroverride"),
]


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, table in INDEXES:
        schema_editor.execute(f'CREATE INDEX IF NOT EXISTS "{name}" ON "{table}" USING gin ("attributes" jsonb_path_ops)')


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for name, _table in INDEXES:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{name}"')


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0027_lighter_writes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
