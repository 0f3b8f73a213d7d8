"""A person's data, for their request to see it or take it: everything held in every branch,
for managers only, recorded in the customer's history."""

import datetime
import json

import pytest
from django.urls import reverse

from tests.conftest import customer_url, make_appointment, make_customer
from wagtail_clientdb import booking_blocks, overrides
from wagtail_clientdb.consent import record_consent
from wagtail_clientdb.models import AttributeDefinition, ClientDBLogEntry, ConsentChannel, CustomerGroup


def data_url(customer, **query):
    url = reverse("wagtailsnippets_wagtail_clientdb_customer:personal_data", args=(customer.pk,))
    return url + ("?format=json" if query.get("json") else "")


@pytest.fixture
def person(db, branch_a, branch_b, manager, allow_branch_edits):
    AttributeDefinition.objects.create(label="Hair type", key="hair", field_type="choice", choices=["fine", "thick"])
    AttributeDefinition.objects.create(label="Reason for visit", key="reason", applies_to="booking", field_type="text")
    customer = make_customer(
        first_name="Paula", last_name="Pauls", email="paula@example.com", phone_raw="+49 170 1111111",
        birthday=datetime.date(1990, 4, 1), shared_with_all_branches=True, attributes={"hair": "fine"},
    )
    customer.groups.add(CustomerGroup.objects.create(name="VIP"))
    customer.tags.add("regular")
    overrides.save_local_values(customer, branch_b, {"notes": "Beta: parks in the courtyard"})
    visit = make_appointment(customer, branch_a, days=-3, status="completed", service="Colour")
    visit.attributes = {"reason": "new look"}
    visit.save()
    make_appointment(customer, branch_b, days=4, service="Cut")
    record_consent(customer, True, ConsentChannel.ADMIN, manager)
    booking_blocks.block(customer, reason="Owes money", user=manager)
    return customer


def test_a_manager_downloads_everything_held_in_every_branch(login, manager, person):
    client = login(manager)
    response = client.get(data_url(person, json=True))
    assert response.status_code == 200 and response["Content-Disposition"].startswith("attachment")
    data = json.loads(response.content)
    assert data["customer_number"] == person.pk
    assert data["record"]["Email"] == "paula@example.com" and data["record"]["Birthday"] == "1990-04-01"
    assert data["sharing"] == {"all_branches": True, "branches": []}
    assert data["attributes"] == {"Hair type": "fine"}
    assert (data["groups"], data["tags"]) == (["VIP"], ["regular"])
    assert data["local_values"][0]["branch"] == "Beta Salon" and data["local_values"][0]["Notes"] == "Beta: parks in the courtyard"
    assert [a["branch"] for a in data["appointments"]] == ["Alpha Salon", "Beta Salon"]
    assert data["appointments"][0]["booking_answers"] == {"Reason for visit": "new look"}
    assert data["appointments"][0]["start"].endswith("+01:00") or data["appointments"][0]["start"].endswith("+02:00")
    assert data["consent_history"][0]["given"] is True and data["online_booking_block"]["reason"] == "Owes money"
    assert any(entry["action"] == "Blocked from online booking" for entry in data["history"])
    # The readable page holds the same, and both downloads are in the customer's history.
    html = client.get(data_url(person)).content.decode()
    assert "Beta: parks in the courtyard" in html and "new look" in html and "Owes money" in html
    downloads = ClientDBLogEntry.objects.filter(object_id=str(person.pk), action="wagtail_clientdb.personal_data_export")
    assert sorted(entry.data["format"] for entry in downloads) == ["html", "json"]
    assert data_url(person) in client.get(customer_url("inspect", person.pk)).content.decode()


def test_branch_staff_may_not_take_a_persons_data(login, staff_a, person):
    client = login(staff_a)
    # Wagtail answers a refusal in the admin by sending the user to the dashboard.
    for url in (data_url(person), data_url(person, json=True)):
        response = client.get(url)
        assert response.status_code in (302, 403) and b"paula@example.com" not in response.content
    assert data_url(person) not in client.get(customer_url("inspect", person.pk)).content.decode()
    assert not ClientDBLogEntry.objects.filter(action="wagtail_clientdb.personal_data_export").exists()
