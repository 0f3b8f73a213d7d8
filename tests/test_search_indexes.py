"""On PostgreSQL the customer search reaches its candidates through trigram indexes, for the
customers' own values and the branches' local values alike, instead of reading every customer."""

import pytest
from django.db import connection

from tests.conftest import make_customer
from wagtail_clientdb import overrides
from wagtail_clientdb.models import Customer
from wagtail_clientdb.search import customer_search_q

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="trigram indexes are PostgreSQL's")


@pytest.mark.parametrize("query", ["schm", "anna schmidt", "example.org", "0170 1234567", "1234567"])
def test_every_search_can_be_answered_by_indexes(db, branch_a, query):
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.org", phone_raw="0170 1234567")
    overrides.save_local_values(anna, branch_a, {"email": "anna.local@example.org"})
    queryset = overrides.with_effective_values(Customer.objects.all(), branch_a).filter(customer_search_q(query, "DE"))
    assert list(queryset) == [anna]
    with connection.cursor() as cursor:
        # With scans made prohibitively expensive, the planner shows which indexes it can use.
        cursor.execute("SET LOCAL enable_seqscan = off")
        plan = queryset.explain()
    assert "customer_" in plan and "_trgm" in plan, plan
    assert "customeroverride_" in plan, plan
    assert "Seq Scan on wagtail_clientdb_customer " not in plan, plan
