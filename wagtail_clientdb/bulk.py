"""Reading and writing many rows at once, with one statement per batch instead of one per row.

On PostgreSQL, values travel as one array parameter per column (``unnest``, ``= ANY``) or
as ``COPY``: a statement with thousands of placeholders cost more to build and send than
to run. Django's ``bulk_update`` writes a ``CASE WHEN pk = … THEN …`` per field and row;
:func:`bulk_update` writes one ``UPDATE … FROM (SELECT unnest(…))`` per batch instead.
Elsewhere (SQLite, in development and tests) each helper falls back to the ORM.
"""

import datetime
import functools
import json
import operator

from django.db import connections, models
from django.db.models import BooleanField, F, Q, signals
from django.db.models.base import ModelState
from django.db.models.expressions import Expression

BATCH_SIZE = 1000
#: Django's own fields whose attribute is written to the database as it is.
_STORED_AS_IS = {
    models.AutoField, models.BigAutoField, models.BooleanField, models.CharField, models.EmailField,
    models.ForeignKey, models.TextField,
}


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
            cursor.execute(sql, [_array(field, batch, connection) for field in columns])


def _array(field, instances, connection):
    """The values of ``field`` of ``instances`` as one array parameter."""
    if type(field) in _STORED_AS_IS:
        values = [getattr(instance, field.attname) for instance in instances]
        if all(type(value) is int for value in values):
            return _bigint_array(values)
        if all(type(value) is str for value in values):
            return _text_array(values)
    return [field.get_db_prep_save(getattr(instance, field.attname), connection) for instance in instances]


def insert(model, instances, *, using="default"):
    """Insert new model instances and give them their primary keys.

    On PostgreSQL the keys are drawn from the table's sequence in one query and the rows
    sent with ``COPY``, which costs a fraction of an ``INSERT`` with a placeholder per
    value; elsewhere ``bulk_create``.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(instances, batch_size=BATCH_SIZE)
        return
    meta = model._meta
    quote = connection.ops.quote_name
    fields = meta.concrete_fields
    values = [_reader(field, connection) for field in fields]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(instances)],
        )
        for instance, (pk,) in zip(instances, cursor.fetchall()):
            instance.pk = pk
        column_list = ", ".join(quote(field.column) for field in fields)
        with cursor.copy(f"COPY {quote(meta.db_table)} ({column_list}) FROM STDIN") as copy:
            for instance in instances:
                copy.write_row([value(instance) for value in values])
    for instance in instances:
        instance._state.adding = False
        instance._state.db = using


def _db_value(field, connection, instance):
    return field.get_db_prep_save(field.pre_save(instance, True), connection)


def _reader(field, connection):
    """Reads ``field`` of an instance as ``COPY`` sends it.

    A value that Django's preparation for PostgreSQL would return unchanged (a number of an
    integer field, a date, an aware time, nothing) is sent as it is: preparing the nine
    such values of each new customer through the field's methods took a tenth of an import.
    """
    if type(field) in _STORED_AS_IS:
        return operator.attrgetter(field.attname)
    unchanged = _prepared_unchanged(field)
    if unchanged is None:
        return functools.partial(_db_value, field, connection)

    def read(instance):
        value = field.pre_save(instance, True)
        return value if value is None or unchanged(value) else field.get_db_prep_save(value, connection)

    return read


def _prepared_unchanged(field):
    """Which values of ``field`` Django prepares for PostgreSQL unchanged, or ``None``."""
    if isinstance(field, models.DateTimeField):
        return lambda value: type(value) is datetime.datetime and value.tzinfo is not None
    if isinstance(field, models.DateField):
        return lambda value: type(value) is datetime.date
    if isinstance(field, models.IntegerField):
        return lambda value: type(value) is int
    return None


def instance_maker(model, **values):
    """A function that makes a new ``model`` instance with ``values`` and the fields' defaults.

    The instances are copies of one made the usual way: for tens of thousands of new rows,
    ``Model.__init__`` (every field's default looked up and set, one by one) took longer than
    writing the rows. Mutable values (a JSON field's ``{}``) are copied for each instance.
    Where a model has ``pre_init`` or ``post_init`` receivers, instances are made the usual way.
    """
    if signals.pre_init.has_listeners(model) or signals.post_init.has_listeners(model):
        return functools.partial(model, **values)
    template = {name: value for name, value in model(**values).__dict__.items() if name != "_state"}
    mutable = [name for name, value in template.items() if isinstance(value, (dict, list, set))]

    def make():
        instance = model.__new__(model)
        instance.__dict__.update(template)
        for name in mutable:
            instance.__dict__[name] = template[name].copy()
        instance._state = ModelState()
        return instance

    return make


def pks_with_values(model, column, values, *, using="default"):
    """Primary keys of the rows whose ``column`` (a text column) is one of ``values``."""
    pk = model._meta.pk.name
    return {row[0] for row in rows_with_values(model, column, values, (pk,), array_type="text", using=using)}


def rows_with_values(model, column, values, fields, *, array_type="bigint", using="default"):
    """``fields`` (names) of the rows of ``model`` whose ``column`` is one of ``values``
    (``array_type``: ``bigint`` for ids, ``text``).

    On PostgreSQL one index lookup per value, through a lateral subquery the planner may not
    flatten (``OFFSET 0``). For a few thousand emails among 100,000s of customers it estimated
    a scan of the whole table cheaper, which took several times as long; and while an import
    fills an empty link table, the table has no statistics (no ANALYZE sees rows that are not
    committed yet), so the planner, guessing that a chunk's 1,000 customers matched every
    link, read all of them for each chunk: 0.5 s of a 100,000-row import.
    """
    connection = connections[using]
    if connection.vendor != "postgresql":
        return list(model._default_manager.using(using).filter(**{f"{column}__in": values}).values_list(*fields))
    meta = model._meta
    quote = connection.ops.quote_name
    key = quote(meta.get_field(column).column)
    columns = [quote(meta.get_field(name).column) for name in fields]
    array = _bigint_array(values) if array_type == "bigint" else _text_array(values)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(f'found.{c}' for c in columns)} FROM unnest(%s::{array_type}[]) AS wanted(value) "
            f"CROSS JOIN LATERAL (SELECT {', '.join(columns)} FROM {quote(meta.db_table)} "
            f"WHERE {key} = wanted.value OFFSET 0) AS found",
            [array],
        )
        return cursor.fetchall()


def insert_rows(model, field_names, rows, *, constants=None, using="default"):
    """Insert ``rows`` (tuples of values of ``field_names``: values stored as they are, or
    JSON) with the same ``constants`` (field name → value) in every row, without making model
    instances.

    For tens of thousands of rows, making the instances cost more than writing them. On
    PostgreSQL the rows go with ``COPY`` (keys from the table's sequence), the constants
    prepared for the database once; elsewhere ``bulk_create``.
    """
    constants = constants or {}
    connection = connections[using]
    if connection.vendor != "postgresql":
        model.objects.using(using).bulk_create(
            [model(**dict(zip(field_names, row)), **constants) for row in rows], batch_size=BATCH_SIZE
        )
        return
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in field_names]
    for field in fields:
        if type(field) not in _STORED_AS_IS and not isinstance(field, models.JSONField):
            raise ValueError(f"{field.name}: only values stored as they are (or JSON) may vary between rows")
    template = model(**constants)
    fixed = [_db_value(meta.get_field(name), connection, template) for name in constants]
    column_list = ", ".join(quote(meta.get_field(name).column) for name in (*field_names, *constants))
    # JSON values are sent as their text, which the column reads.
    as_json = [
        (index, field.encoder) for index, field in enumerate(fields) if isinstance(field, models.JSONField)
    ]
    # Rows often share one value (an import's marker on each of its entries): written once.
    last_json = {}

    def as_text(index, value, encoder):
        last = last_json.get(index)
        if last is None or last[0] is not value:
            last = last_json[index] = (value, json.dumps(value, cls=encoder))
        return last[1]

    with connection.cursor() as cursor, cursor.copy(f"COPY {quote(meta.db_table)} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            if as_json:
                row = list(row)
                for index, encoder in as_json:
                    row[index] = as_text(index, row[index], encoder)
            copy.write_row((*row, *fixed))


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


def any_of(column, values, array_type="bigint", *, using="default"):
    """A filter "``column`` is one of ``values``". On PostgreSQL ``= ANY(array)``: one
    parameter instead of thousands, which costs less to send and plan."""
    if connections[using].vendor != "postgresql":
        return Q(**{f"{column}__in": values})
    return _AnyOf(F(column), _bigint_array(values) if array_type == "bigint" else _text_array(values), array_type)


class _AnyOf(Expression):
    output_field = BooleanField()

    def __init__(self, column, values, array_type):
        super().__init__()
        self.column, self.values, self.array_type = column, values, array_type

    def get_source_expressions(self):
        return [self.column]

    def set_source_expressions(self, expressions):
        (self.column,) = expressions

    def as_sql(self, compiler, connection):
        column_sql, params = compiler.compile(self.column)
        return f"{column_sql} = ANY(%s::{self.array_type}[])", (*params, self.values)


def _bigint_array(ids):
    """A PostgreSQL array of ids in its text form ``{1,2,3}``: cheaper to build than letting
    the driver adapt a list item by item."""
    return "{" + ",".join(map(str, map(int, ids))) + "}"


def _text_array(texts):
    """A PostgreSQL array of strings in its text form, each quoted, with ``"`` and ``\\``
    escaped by a backslash (the array input syntax)."""
    return "{" + ",".join('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' for text in texts) + "}"
