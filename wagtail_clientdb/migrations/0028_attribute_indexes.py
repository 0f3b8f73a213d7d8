"""An index of the customers' attribute values (PostgreSQL only).

A filter on an attribute's value (a choice, yes/no, the API's ``attribute=key:value``) compares
the values a branch sees, its local value laid over the customer's, which no index answers:
counting 10,000 of a choice's customers for a branch read 170,000 of them. A GIN index of the
customers' own values (``jsonb_path_ops``: containment, ``@>``) finds those whose own value
matches (see :func:`wagtail_clientdb.attributes.with_value`). Customers without attributes —
most of an imported list — are left out of it, so that writing them costs nothing more.
SQLite keeps checking every row.
"""

from django.db import migrations


def create_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute(
        'CREATE INDEX IF NOT EXISTS "clientdb_customer_attributes" ON "wagtail_clientdb_customer" '
        "USING gin (\"attributes\" jsonb_path_ops) WHERE \"attributes\" <> '{}'::jsonb"
    )


def drop_index(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute('DROP INDEX IF EXISTS "clientdb_customer_attributes"')


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0027_lighter_writes")]

    operations = [migrations.RunPython(create_index, drop_index, elidable=False)]
