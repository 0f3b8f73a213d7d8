"""PostgreSQL settings for the queries of an admin page.

The app's pages are built from queries that read a page's worth of rows through indexes
(:mod:`.listing`). PostgreSQL's defaults are made for the opposite, and cost more than
the queries themselves on a small server:

- JIT compilation: the planner costs a walk of the name index that stops after the page as
  a share of the whole index, above ``jit_above_cost``; compiling took 0.4–0.7 s where
  running takes milliseconds.
- Parallel workers: starting them took about 20 ms per query, for queries that stop after
  one row or find none (a segment's tag choice, the visits since the last count).
- ``random_page_cost = 4`` prices a random read as on a spinning disk: counting up to the
  exact-count limit of a tag's customers then hash-joined a sequential scan of half the
  customers (100 ms) instead of probing the primary key (19 ms).

So a page's queries run with ``POSTGRESQL_PAGE_SETTINGS`` (a setting of the app), changed
for the page's transaction only: the rest of the site keeps the server's settings.
"""

import functools
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, connections, transaction

from . import conf

#: Marks a connection whose current transaction runs with the page settings already.
_IN_FORCE = "clientdb_page_settings_in_force"


@contextmanager
def page_settings(using=DEFAULT_DB_ALIAS):
    """Run the queries of this block with the page settings (PostgreSQL; elsewhere nothing).

    The block runs in a transaction, or in a savepoint of the surrounding one: an error in the
    block (a 404 of an object out of scope) undoes the settings and nothing else, and the
    request's own transaction (``ATOMIC_REQUESTS``) goes on with its settings.
    """
    connection = connections[using]
    settings = conf.get("POSTGRESQL_PAGE_SETTINGS")
    if connection.vendor != "postgresql" or not settings or getattr(connection, _IN_FORCE, False):
        yield
        return
    outer = connection.in_atomic_block
    names = list(settings)
    with transaction.atomic(using=using), connection.cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join("current_setting(%s), set_config(%s, %s, true)" for _name in names),
            [value for name in names for value in (name, name, str(settings[name]))],
        )
        previous = cursor.fetchone()[::2]
        setattr(connection, _IN_FORCE, True)
        try:
            yield
        finally:
            setattr(connection, _IN_FORCE, False)
        if outer:
            cursor.execute(
                "SELECT " + ", ".join("set_config(%s, %s, true)" for _name in names),
                [value for name, value in zip(names, previous) for value in (name, value)],
            )


def page_view(view_func):
    """A view whose pages (GET and HEAD) are read and rendered with the page settings."""

    @functools.wraps(view_func)
    def wrapped(request, *args, **kwargs):
        if request.method not in ("GET", "HEAD"):
            return view_func(request, *args, **kwargs)
        with page_settings():
            return rendered(view_func(request, *args, **kwargs))

    return wrapped


def rendered(response):
    """``response``, rendered now if it is a template response: it renders after the view
    returns, and its queries belong to the block the view ran in."""
    if callable(getattr(response, "render", None)) and not response.is_rendered:
        response.render()
    return response
