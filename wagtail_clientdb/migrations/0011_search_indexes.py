"""Trigram indexes for the customer search (PostgreSQL only).

The search looks for a fragment anywhere in a name, email or phone number (``UPPER(col)
LIKE UPPER('%term%')``, Django's ``icontains``), which no B-tree index answers: it read the
whole customer table. ``pg_trgm``'s GIN indexes answer such patterns, on the customers' own
values and on the branches' local values (see :mod:`wagtail_clientdb.search`). pg_trgm is a
trusted extension (PostgreSQL 13+): the owner of the database may create it. SQLite keeps
searching without them.
"""

from django.db import migrations

#: (table, column, whether the search compares it case-insensitively)
SEARCHED = [
    (table, column, case_insensitive)
    for table in ("wagtail_clientdb_customer", "wagtail_clientdb_customeroverride")
    for column, case_insensitive in (
        ("first_name", True),
        ("last_name", True),
        ("email", True),
        ("phone_raw", True),
        ("phone", False),
    )
]


def _index_name(table, column):
    return f"{table.removeprefix('wagtail_clientdb_')}_{column}_trgm"


def create_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    for table, column, case_insensitive in SEARCHED:
        # The expression must be the one Django's lookups write, or the planner ignores the index.
        expression = f'UPPER(("{column}")::text)' if case_insensitive else f'("{column}")::text'
        schema_editor.execute(
            f'CREATE INDEX IF NOT EXISTS "{_index_name(table, column)}" ON "{table}" USING gin (({expression}) gin_trgm_ops)'
        )


def drop_indexes(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, column, _case_insensitive in SEARCHED:
        schema_editor.execute(f'DROP INDEX IF EXISTS "{_index_name(table, column)}"')


class Migration(migrations.Migration):
    dependencies = [("wagtail_clientdb", "0010_appointment_listing_indexes")]

    operations = [migrations.RunPython(create_indexes, drop_indexes, elidable=False)]
