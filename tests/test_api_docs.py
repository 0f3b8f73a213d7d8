"""docs/api.md never drifts: every curl example runs against the real API, in order, and its
answer has the documented status, headers and fields; every endpoint has an example."""

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.core.cache import cache
from wagtail.models import APIToken

from tests.conftest import make_appointment, make_customer, make_service
from wagtail_clientdb.consent import record_consent
from wagtail_clientdb.models import AttributeDefinition, ConsentChannel, CustomerGroup, Segment

DOC = Path(__file__).resolve().parent.parent / "docs" / "api.md"
EXAMPLE = re.compile(r"```sh\n(?P<command>curl .*?)\n```\s*```http\n(?P<answer>.*?)\n```", re.S)


def examples():
    return [(match["command"], match["answer"]) for match in EXAMPLE.finditer(DOC.read_text())]


def parse_command(command, variables):
    for name, value in variables.items():
        command = command.replace(f"${name}", str(value))
    words = shlex.split(command.replace("\\\n", " "))
    method, headers, data, url = "GET", {}, None, None
    words = iter(words[1:])
    for word in words:
        if word == "-X":
            method = next(words)
        elif word == "-H":
            name, _sep, value = next(words).partition(":")
            headers[name.strip()] = value.strip()
        elif word == "-d":
            data = next(words)
        elif word.startswith("https://"):
            url = word
        elif word != "-i":
            raise AssertionError(f"docs/api.md: unknown curl option {word!r}")
    parts = urlsplit(url)
    return method, parts.path + (f"?{parts.query}" if parts.query else ""), headers, data


def parse_answer(answer):
    head, _sep, body = answer.partition("\n\n")
    status_line, *header_lines = head.splitlines()
    status = int(status_line.split()[1])
    headers = [line.split(":", 1)[0] for line in header_lines]
    return status, headers, json.loads(body) if body.strip() else None


def assert_documented_fields_present(documented, actual, where="answer"):
    """Every field the docs show exists in the real answer (values are examples)."""
    if isinstance(documented, dict):
        assert isinstance(actual, dict), where
        for key, value in documented.items():
            assert key in actual, f"{where}: no field {key!r} in {sorted(actual)}"
            assert_documented_fields_present(value, actual[key], f"{where}.{key}")
    elif isinstance(documented, list) and documented and isinstance(documented[0], dict):
        assert actual, f"{where}: empty"
        assert_documented_fields_present(documented[0], actual[0], f"{where}[0]")


@pytest.fixture
def variables(db, make_user, staff_group, manager_group, branch_a, scope_customers):
    cache.clear()
    CustomerGroup.objects.create(name="VIP")
    AttributeDefinition.objects.create(label="Hair", key="hair", field_type="choice", choices=["fine", "thick"])
    anna = make_customer(
        first_name="Anna", last_name="Berg", email="anna@example.com", phone_raw="0170 1234567",
        home_branch=branch_a, attributes={"hair": "fine"},
    )
    anna.tags.add("regular")
    record_consent(anna, True, ConsentChannel.IMPORT, None)
    make_service("Cut", branch_a, duration=30)
    appointment = make_appointment(scope_customers["local_a"], branch_a, days=3, service="Cut")
    staff = make_user("doc_staff", groups=[staff_group], branches=[branch_a])
    head_office = make_user("doc_head_office", groups=[manager_group])
    scope_customers["local_a"].tags.add("regular")
    regulars = Segment.objects.create(
        name="Regulars", query=f"tags={anna.tags.get().pk}&ordering=name", owner=head_office, visibility="company"
    )
    return {
        "HEAD_OFFICE_TOKEN": APIToken.create_token(user=head_office, name="docs")[1],
        "TOKEN": APIToken.create_token(user=staff, name="docs")[1],
        "CUSTOMER_ID": anna.pk,
        "APPOINTMENT_ID": appointment.pk,
        "SEGMENT_ID": regulars.pk,
    }


def test_every_example_in_the_api_docs_works(client, variables):
    found = examples()
    assert len(found) >= 10
    for command, answer in found:
        method, path, headers, data = parse_command(command, variables)
        if "If-Match" in headers:
            # $ETAG: the version of the record as read just before.
            read = client.get(path.split("?")[0], headers={"Authorization": headers["Authorization"]})
            headers["If-Match"] = read["ETag"]
        response = getattr(client, method.lower())(
            path, data, content_type="application/json", headers=headers
        ) if data is not None else getattr(client, method.lower())(path, headers=headers)
        status, documented_headers, body = parse_answer(answer)
        assert response.status_code == status, (command, response.content)
        for name in documented_headers:
            assert response.has_header(name), (command, name)
        if body is not None:
            assert_documented_fields_present(body, response.json(), command.splitlines()[0])
            if isinstance(body, dict) and body.get("batch"):
                # $BATCH_ID: the import batch of the bulk call just made.
                variables["BATCH_ID"] = response.json()["batch"]


def test_every_endpoint_has_an_example(client, db):
    schema = client.get("/api/v3/openapi.json").json()
    documented = set()
    for command, _answer in examples():
        method, path, _headers, _data = parse_command(command, {"CUSTOMER_ID": 1, "APPOINTMENT_ID": 1, "BATCH_ID": 1, "SEGMENT_ID": 1})
        documented.add((method, re.sub(r"/\d+/", "/{id}/", path.split("?")[0])))
    for path, operations in schema["paths"].items():
        if "/clientdb/" not in path:
            continue
        for method in operations:
            assert (method.upper(), re.sub(r"\{\w+\}", "{id}", path)) in documented, f"docs/api.md: no example of {method.upper()} {path}"
