"""Text is stored one way whatever way it came in: names in Unicode NFC, emails without
invisible characters, phone numbers whichever field code writes them to."""

import csv
import io
import unicodedata

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command

from tests.conftest import customer_url, make_customer
from tests.import_files import csv_bytes
from wagtail_clientdb.models import Customer, ImportJob

JOSE_DECOMPOSED = unicodedata.normalize("NFD", "José")
JOSE = "José"


def import_rows(client, rows, mapping=None):
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("list.csv", csv_bytes(rows))})
    job = ImportJob.objects.get(pk=response.url.rstrip("/").removesuffix("/mapping").split("/")[-1])
    if mapping is not None:
        client.post(customer_url("import_mapping", job.pk), {f"column_{i}": target for i, target in enumerate(mapping)})
    client.post(customer_url("import_job", job.pk), {"import_valid_rows": "on", "sharing": "all"})
    job.refresh_from_db()
    return job


def test_decomposed_names_are_stored_composed_and_found_by_search(login, manager):
    assert JOSE_DECOMPOSED != JOSE
    client = login(manager)
    import_rows(client, [["First name", "Last name", "Email"], [JOSE_DECOMPOSED, "Álvarez", "jose@example.com"]])
    customer = Customer.objects.get(email="jose@example.com")
    assert customer.first_name == JOSE
    listed = client.get(customer_url("list"), {"q": JOSE}).context["object_list"]
    assert [c.pk for c in listed] == [customer.pk]

    client.post(customer_url("add"), {"first_name": unicodedata.normalize("NFD", "Zoë"), "last_name": "Test", "sharing": "all"})
    assert Customer.objects.filter(first_name="Zoë").exists()
    made = make_customer(first_name=unicodedata.normalize("NFD", "Renée"), notes=unicodedata.normalize("NFD", "Crème"))
    made.refresh_from_db()
    assert (made.first_name, made.notes) == ("Renée", "Crème")


@pytest.mark.parametrize("invisible", ["\u200b", "\u00ad", "\u200d", "\ufeff"])
def test_invisible_characters_in_an_email_make_no_second_person(login, manager, invisible):
    anna = make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    client = login(manager)
    job = import_rows(client, [["Email", "Notes"], [f"an{invisible}na@example.com", "From the file"]])
    assert job.counts["updated"] == 1 and job.counts["new"] == 0
    assert Customer.objects.count() == 1
    anna.refresh_from_db()
    assert anna.notes == "From the file"
    made = make_customer(first_name="Bea", email=f"bea{invisible}@example.com")
    assert made.email == "bea@example.com"


def test_a_phone_number_assigned_to_phone_is_kept(db):
    customer = make_customer(first_name="Anna")
    customer.phone = "+49 30 1234567"
    customer.save()
    customer.refresh_from_db()
    assert (customer.phone, customer.phone_raw) == ("+49301234567", "+49 30 1234567")

    created = Customer.objects.create(first_name="Bea", phone="030 7654321")
    created.refresh_from_db()
    assert (created.phone, created.phone_raw) == ("+49307654321", "030 7654321")

    customer.phone_raw = "0170 1234567"  # the usual path still works
    customer.save()
    assert customer.phone == "+491701234567"

    unreadable = Customer.objects.create(first_name="Cem", phone="call me")
    assert (unreadable.phone, unreadable.phone_raw) == ("", "call me")  # kept as typed, not dropped

    customer.phone, customer.phone_raw = "+49 30 1111111", "+49 30 2222222"
    with pytest.raises(ValueError):
        customer.save()


def test_refused_rows_report_neutralises_header_cells(login, manager):
    client = login(manager)
    rows = [["First name", "Email", "=cmd|' /C calc'!A0"], ["Anna", "not-an-email", "x"]]
    job = import_rows(client, rows, mapping=["first_name", "email", ""])
    assert job.counts["invalid"] == 1
    report = b"".join(client.get(customer_url("import_report", job.pk)).streaming_content).decode("utf-8-sig")
    header, row = list(csv.reader(io.StringIO(report)))
    assert header[3] == "'=cmd|' /C calc'!A0"
    assert not any(cell.startswith(("=", "+", "-", "@")) for cell in header + row)


def test_import_command_acts_in_the_only_branch_of_a_staff_member(tmp_path, staff_a, make_user, staff_group, branch_a, branch_b):
    path = tmp_path / "list.csv"
    path.write_bytes(csv_bytes([["First name", "Email"], ["Lena", "lena@example.com"]]))
    call_command("clientdb_import", str(path), "--user", "staff_a", stdout=io.StringIO())
    assert Customer.objects.get(email="lena@example.com").home_branch == branch_a

    make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    with pytest.raises(CommandError, match=r"several branches \(alpha, beta\)"):
        call_command("clientdb_import", str(path), "--user", "both", stdout=io.StringIO())
    with pytest.raises(CommandError, match="does not work in the branch 'beta'"):
        call_command("clientdb_import", str(path), "--user", "staff_a", "--branch", "beta", stdout=io.StringIO())
    make_user("nobody", groups=[staff_group])
    with pytest.raises(CommandError, match="not a member of any branch"):
        call_command("clientdb_import", str(path), "--user", "nobody", stdout=io.StringIO())


@pytest.mark.parametrize("invisible", ["\u200b", "\ufeff\u00ad", " \u200b\u2060 "])
def test_a_name_of_only_invisible_characters_is_no_name(login, manager, client, invisible):
    """Every entry point that asks for a name, an email, a phone or an external ID: the file
    import, the admin's form and the API refuse a customer whose only "name" shows nothing."""
    from tests.test_api import Api

    admin = login(manager)
    job = import_rows(admin, [["First name", "Last name", "Notes"], [invisible, invisible, "Invisible"], ["Vera", "", "Visible"]])
    assert (job.counts["new"], job.counts["invalid"]) == (1, 1)
    response = admin.post(customer_url("add"), {"first_name": invisible, "last_name": "", "sharing": "all"})
    assert response.status_code == 200
    assert "Enter at least a name" in str(response.context["form"].non_field_errors())
    response = Api(client, manager).send("post", "/customers/", {"first_name": invisible, "shared_with_all_branches": True})
    assert response.status_code == 422, response.content
    assert response.json()["errors"][0]["loc"] == ["body", "payload", "first_name"]
    assert list(Customer.objects.values_list("first_name", flat=True)) == ["Vera"]
    # Inside a name, a joiner or a zero-width space is kept as given.
    made = make_customer(first_name="An\u200dna", last_name="\u200bKim")
    assert (made.first_name, made.last_name) == ("An\u200dna", "\u200bKim")
