"""One UPDATE statement for many rows with different values.

Django's ``bulk_update`` writes a ``CASE WHEN pk = … THEN …`` per field and row, which costs
far more than the change itself for a few thousand rows (most of an import's time went
there). On PostgreSQL this writes one ``UPDATE … FROM (SELECT unnest(…))`` per batch
instead; elsewhere it falls back to ``bulk_update``.
"""

from django.db import connections
from django.db.models import BooleanField, Q
from django.db.models.expressions import RawSQL

BATCH_SIZE = 1000


def bulk_update(model, instances, field_names, *, using="default"):
    connection = connections[using]
    if connection.vendor != "postgresql" or not instances or not field_names:
        model.objects.using(using).bulk_update(instances, field_names, batch_size=BATCH_SIZE)
        return
    meta = model._meta
    pk = meta.pk
    fields = [meta.get_field(name) for name in field_names]
    columns = [pk, *fields]
    quote = connection.ops.quote_name
    # One array parameter per column: a statement with thousands of placeholders costs more to send than to run.
    arrays = ", ".join(f"unnest(%s::{field.db_type(connection)}[]) AS {quote(field.column)}" for field in columns)
    assignments = ", ".join(f"{quote(field.column)} = v.{quote(field.column)}" for field in fields)
    sql = (
        f"UPDATE {quote(meta.db_table)} AS t SET {assignments} FROM (SELECT {arrays}) AS v "
        f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(instances), BATCH_SIZE):
            batch = instances[start : start + BATCH_SIZE]
            cursor.execute(
                sql,
                [[field.get_db_prep_save(getattr(instance, field.attname), connection) for instance in batch] for field in columns],
            )


def insert_links(model, owner, target, pairs, *, using="default"):
    """Insert rows of a link table (``owner`` id, ``target`` id) without making model instances.

    On PostgreSQL one ``INSERT … SELECT unnest(…)`` per call; elsewhere ``bulk_create``.
    """
    if not pairs:
        return
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(
            [model(**{f"{owner}_id": owner_id, f"{target}_id": target_id}) for owner_id, target_id in pairs],
            batch_size=BATCH_SIZE,
        )
        return
    meta = model._meta
    quote = connection.ops.quote_name
    owner_column, target_column = meta.get_field(owner).column, meta.get_field(target).column
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(meta.db_table)} ({quote(owner_column)}, {quote(target_column)}) "
            "SELECT * FROM unnest(%s::bigint[], %s::bigint[])",
            [_bigint_array(owner_id for owner_id, _t in pairs), _bigint_array(target_id for _o, target_id in pairs)],
        )


def in_ids(column, ids, *, using="default"):
    """A filter "``column`` is one of ``ids``". On PostgreSQL ``= ANY(array)``: one parameter
    instead of thousands, which costs less to send and plan."""
    if connections[using].vendor != "postgresql":
        return Q(**{f"{column}__in": ids})
    return RawSQL(
        f"{connections[using].ops.quote_name(column)} = ANY(%s::bigint[])", (_bigint_array(ids),), output_field=BooleanField()
    )


def _bigint_array(ids):
    """A PostgreSQL array of ids in its text form ``{1,2,3}``: cheaper to build than letting
    the driver adapt a list item by item."""
    return "{" + ",".join(str(int(pk)) for pk in ids) + "}"
