"""Names in the order people expect: "Böhm" among the B's, "Özdemir" among the O's.

PostgreSQL sorts by the database's collation (e.g. ``de_DE.UTF-8`` or ``en_US.UTF-8``),
which already does. SQLite compares bytes, which puts every umlaut after "z"; there the
listing sorts through a collation of this app (registered on each new connection) that sets
accents and case aside, and breaks ties by the name as written.
"""

import unicodedata

from django.db.models import Func
from django.db.models.functions import Lower

COLLATION = "clientdb_name"


def sort_key(text):
    """Accents set aside and case folded: the key people sort names by."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()


def _compare(a, b):
    a_key, b_key = (sort_key(a), a), (sort_key(b), b)
    return (a_key > b_key) - (a_key < b_key)


def register_collation(sender, connection, **kwargs):
    """``connection_created``: give each SQLite connection the name collation."""
    if connection.vendor == "sqlite":
        connection.connection.create_collation(COLLATION, _compare)


class NameKey(Func):
    """The sort key of a name column: ``lower(name)`` — what the PostgreSQL name index holds —,
    with the name collation on SQLite."""

    def __init__(self, expression, **extra):
        super().__init__(Lower(expression), **extra)

    template = "%(expressions)s"

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template=f"%(expressions)s COLLATE {COLLATION}", **extra)
