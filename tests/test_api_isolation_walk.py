"""Every Client DB route of the API, read from the served OpenAPI schema, requested with a
branch-A token against branch B's objects: nothing of B is shown, nothing of B changes.

Like tests/test_isolation_walk.py for the admin, a new route is covered without editing this.
"""

import json

from django.core.cache import cache
from django.forms.models import model_to_dict
from wagtail.models import APIToken

from tests.conftest import make_appointment
from wagtail_clientdb import scope
from wagtail_clientdb.imports.records import import_records
from wagtail_clientdb.models import Appointment, BranchBookings, Customer, CustomerOverride, DeletionRequest, ImportBatch, Segment

MARKERS = ("Lars", "Localb", "lars@example.com")


def routes(client):
    schema = client.get("/api/v3/openapi.json").json()
    return [
        (path, method)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/v3/clientdb/")
        for method in operations
    ]


def b_state(local_b, appointment_b):
    return {
        "customer": model_to_dict(Customer.objects.get(pk=local_b.pk)),
        "appointment": model_to_dict(Appointment.objects.get(pk=appointment_b.pk)),
        "local values": list(CustomerOverride.objects.filter(customer=local_b).values()),
        "bookings": list(BranchBookings.objects.filter(customer=local_b).values()),
        "deletion requests": list(DeletionRequest.objects.filter(customer=local_b).values()),
        "customers": Customer.objects.count(),
        "import batches": list(ImportBatch.objects.values()),
    }


def test_a_branch_token_reaches_nothing_of_another_branch_through_any_route(
    client, staff_a, scope_customers, branch_a, branch_b, settings, make_user, staff_group
):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "API_RATE_LIMIT": "100000/m"}
    cache.clear()
    local_b = scope_customers["local_b"]
    appointment_b = make_appointment(local_b, branch_b, days=3)
    # An import batch of B (a bulk call by B's staff that changed B's local customer).
    staff_b = make_user("staff_b_walk", groups=[staff_group], branches=[branch_b])
    _saved, _results, batch_b = import_records(scope.Viewer(staff_b, False, (branch_b,)), [{"email": "lars@example.com", "notes": "from B"}])
    assert batch_b is not None and batch_b.updated == 1
    # A segment of B's staff, shared with B, that finds B's local customer.
    segment_b = Segment.objects.create(name="B's", query="q=Lars", owner=staff_b, visibility="branch", branch=branch_b)
    _token, secret = APIToken.create_token(user=staff_a, name="walk")
    headers = {"Authorization": f"Bearer {secret}", "If-Match": '"1.0"'}
    # Bodies that would change B's objects if a route let them through; the bulk records match
    # B's local customer by email and by phone-less name.
    body = {
        "notes": "changed by A",
        "status": "cancelled",
        "customers": [{"email": "lars@example.com", "notes": "changed by A"}],
        "branch": branch_b.slug,
        "service": "Haircut",
        "start": "2030-01-07T10:00:00Z",
        "customer_id": local_b.pk,
    }
    before = b_state(local_b, appointment_b)
    walked = routes(client)
    assert len(walked) >= 9
    for path, method in walked:
        url = (
            path.replace("{customer_id}", str(local_b.pk))
            .replace("{appointment_id}", str(appointment_b.pk))
            .replace("{batch_id}", str(batch_b.pk))
            .replace("{segment_id}", str(segment_b.pk))
        )
        for query in ("", f"?branch={branch_b.slug}", "?q=Lars"):
            response = client.generic(method.upper(), url + query, json.dumps(body), content_type="application/json", headers=headers)
            text = response.content.decode()
            assert response.status_code < 500, (method, url + query, text)
            assert not any(marker in text for marker in MARKERS), (method, url + query, text)
            if "{" in path:
                assert response.status_code in (403, 404, 422), (method, url + query, response.status_code)
        assert b_state(local_b, appointment_b) == before, (method, url)
