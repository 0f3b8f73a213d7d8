"""What every write pays for: indexes that something reads, and no constraint checks on the
audit log (migration 0027). An import writes 100,000 customers and log entries at once, so
each index and foreign-key check is paid for that many times."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.conftest import make_customer
from wagtail.log_actions import log

from wagtail_clientdb import matching
from wagtail_clientdb.models import Branch, ClientDBLogEntry, Customer

postgresql_only = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's plans and catalogue")


def plan_of(sql):
    with connection.cursor() as cursor:
        # With scans made prohibitively expensive, the planner shows which indexes it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def index_definitions(model):
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexdef FROM pg_indexes WHERE tablename = %s", [model._meta.db_table])
        return [row[0] for row in cursor.fetchall()]


@postgresql_only
def test_matching_by_email_and_phone_reads_their_indexes(db):
    anna = make_customer(first_name="Anna", email="anna@example.org", phone_raw="0170 1234567")
    with CaptureQueriesContext(connection) as reads:
        found = matching.candidates(Customer.objects.all(), [matching.IdentityKeys(email="anna@example.org", phone="+491701234567")])
    assert [customer.pk for customer in found.customers] == [anna.pk]
    plans = "\n".join(plan_of(read["sql"]) for read in reads.captured_queries if read["sql"].startswith("SELECT found"))
    assert "clientdb_customer_email" in plans and "clientdb_customer_phone" in plans, plans


@postgresql_only
def test_a_history_reads_the_entries_of_its_object_through_one_index(db, branch_a):
    customer = make_customer(first_name="Anna")
    log(customer, "wagtail.edit")
    history = ClientDBLogEntry.objects.for_instance(customer)
    assert history.count() == 1
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
    # The entries found, not their order: on a table this small, walking the time index may cost the same.
    plan = history.order_by().explain()
    assert "clientdb_logentry_object" in plan, plan


@postgresql_only
def test_no_index_serves_only_prefix_searches_nobody_makes(db):
    """Django adds a ``varchar_pattern_ops`` twin to every indexed text column on PostgreSQL."""
    for model in (Customer, ClientDBLogEntry):
        definitions = index_definitions(model)
        assert not [d for d in definitions if "pattern_ops" in d], definitions


def test_no_log_entry_index_repeats_the_beginning_of_another(db):
    """An index on a column that another index begins with serves nothing the other does not."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ClientDBLogEntry._meta.db_table)
    indexes = {name: c["columns"] for name, c in constraints.items() if c["index"] or c["unique"] or c["primary_key"]}
    repeated = [
        (name, other)
        for name, columns in indexes.items()
        for other, other_columns in indexes.items()
        if other != name
        and not (constraints[name]["unique"] or constraints[name]["primary_key"])
        and other_columns[: len(columns)] == columns
    ]
    assert not repeated, indexes


def test_log_entries_keep_no_constraints_but_lose_what_is_deleted(db, branch_a):
    """Without foreign-key constraints (checked per entry at the commit), Django still clears
    an entry's branch when the branch goes, and its content type when that goes."""
    customer = make_customer(first_name="Anna")
    entry = log(customer, "wagtail.edit")
    ClientDBLogEntry.objects.filter(pk=entry.pk).update(branch=branch_a)
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, ClientDBLogEntry._meta.db_table)
    assert not [name for name, constraint in constraints.items() if constraint["foreign_key"]], constraints

    Branch.objects.filter(pk=branch_a.pk).delete()
    entry.refresh_from_db()
    assert entry.branch_id is None and entry.object_id == str(customer.pk)

    gone = ContentType.objects.create(app_label="wagtail_clientdb", model="formerthing")
    ClientDBLogEntry.objects.filter(pk=entry.pk).update(content_type=gone)
    gone.delete()
    entry.refresh_from_db()
    assert entry.content_type_id is None


@postgresql_only
def test_an_imports_chunks_run_with_the_apps_query_settings(db, manager, monkeypatch):
    """No JIT for a chunk's lookups (with an empty table's statistics the planner costed them
    high enough to compile), for the file import and the API's bulk import alike."""
    from wagtail_clientdb import scope
    from wagtail_clientdb.imports.records import import_records
    from wagtail_clientdb.imports.resource import CustomerImportResource

    seen = []
    before_import = CustomerImportResource.before_import

    def noting_settings(resource, dataset, **kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('jit'), current_setting('random_page_cost')")
            seen.append(cursor.fetchone())
        return before_import(resource, dataset, **kwargs)

    monkeypatch.setattr(CustomerImportResource, "before_import", noting_settings)
    saved, _results, _batch = import_records(
        scope.viewer_for_user(manager), [{"first_name": "Anna", "email": "anna@example.org"}]
    )
    assert saved == 1 and Customer.objects.filter(email="anna@example.org").exists()
    assert seen == [("off", "1.1")]
