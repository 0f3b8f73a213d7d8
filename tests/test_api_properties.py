"""Schemathesis against the served OpenAPI schema: generated requests, valid and invalid, to
every Client DB endpoint, with a branch token and a head-office token. No request may end in
a server error, and every documented answer must match its schema."""

import pytest
import schemathesis
from django.core import signals
from django.core.cache import cache
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance
from wagtail.models import APIToken

from tests.conftest import make_appointment, make_service
from wagtail_clientdb.models import AttributeDefinition, CustomerGroup

CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(autouse=True)
def world(db, settings, scope_customers, branch_a, branch_b):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "API_RATE_LIMIT": "100000/m"}
    cache.clear()
    CustomerGroup.objects.create(name="VIP")
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])
    AttributeDefinition.objects.create(label="Visits", key="visits", field_type="number")
    make_service("Cut", branch_a, duration=30)
    make_appointment(scope_customers["local_a"], branch_a, days=1)
    make_appointment(scope_customers["local_b"], branch_b, days=1)


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go straight to the WSGI application, whose end closes the database connection
    when it is inside a transaction, the test's included; Django's test client unhooks the same."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


schema = schemathesis.openapi.from_wsgi("/api/v3/openapi.json", get_wsgi_application()).include(path_regex="/clientdb/")

generated = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,
    database=None,
)


def bearer(user):
    _token, secret = APIToken.create_token(user=user, name="schemathesis")
    return {"Authorization": f"Bearer {secret}"}


@schema.parametrize()
@generated
def test_a_branch_token_never_meets_a_server_error(case, staff_a):
    case.call_and_validate(headers=bearer(staff_a), checks=CHECKS)


@schema.parametrize()
@generated
def test_a_head_office_token_never_meets_a_server_error(case, manager):
    case.call_and_validate(headers=bearer(manager), checks=CHECKS)
