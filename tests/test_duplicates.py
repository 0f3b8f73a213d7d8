"""Possible duplicates (issue #15, detection): each rule, the scan and its list, the warning of
the admin's new-customer form, the import preview, on SQLite and PostgreSQL.

Every rule is checked twice: by the scan (which fills "Possible duplicates") and by the lookup
for a new customer (the admin form, the import preview), and both through the admin's pages.
"""

import datetime
import random

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from tests.conftest import customer_url, make_customer
from tests.import_files import csv_bytes
from wagtail_clientdb import duplicates, matching, overrides, scope
from wagtail_clientdb.models import (
    ClientDBLogEntry,
    Customer,
    DuplicatePair,
    DuplicateReason,
    ImportJob,
)

BIRTHDAY = datetime.date(1985, 4, 12)


def pairs_url(name="list", *args):
    return reverse(DuplicatePair.snippet_viewset.get_url_name(name), args=args)


def found_pairs():
    """``{(first name a, first name b): {rule, ...}}`` of the open pairs, after a scan."""
    duplicates.scan()
    found = {}
    for pair in DuplicatePair.objects.filter(dismissed=False).select_related("customer_a", "customer_b"):
        names = tuple(sorted((pair.customer_a.first_name, pair.customer_b.first_name)))
        found[names] = {reason.rule for reason in pair.reasons.all()}
    return found


def central(user):
    return scope.Viewer(user, True)


def in_branch(user, branch):
    return scope.Viewer(user, False, (branch,))


def needs_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL")


def lookup(viewer, **values):
    (found,) = matching.possible_duplicates(viewer, [matching.Person(**values)])
    return {match.customer.first_name: set(match.rules) for match in found}


# --- The similarity of names --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "a, b, similar",
    [
        ("Katrin Schmidt", "Katrin Schmitt", True),
        ("Anna Müller", "Anna Mueller", True),
        ("Anna Müller", "Müller Anna", True),
        ("Ömer Yılmaz", "Omer Yilmaz", True),
        ("Stefanie Wagner", "Stephanie Wagner", True),
        ("Anna Müller", "Hans Müller", False),
        ("Anna Müller", "Anna Meier", False),
        ("Anna Müller", "Bernd Schulz", False),
    ],
)
def test_similar_names(a, b, similar):
    value = duplicates.similarity(duplicates.name_key(*a.split()), duplicates.name_key(*b.split()))
    assert (value >= 0.5) is similar, value


@pytest.mark.postgres
def test_the_python_similarity_is_pg_trgm_s(db):
    needs_postgresql()
    names = ["Katrin Schmidt", "Katrin Schmitt", "Anna Mueller", "Anna Müller", "Müller Anna", "Jon Smith",
             "John Smith", "A. B.", "Jean-Luc Picard", "Ömer Yılmaz", "Omer Yilmaz", "x", "", "O'Neill Ryan"]
    pairs = [(duplicates.name_key(a, ""), duplicates.name_key(b, "")) for a in names for b in names]
    with connection.cursor() as cursor:
        cursor.execute("SELECT extname FROM pg_extension WHERE extname = 'pg_trgm'")
        assert cursor.fetchone()
    in_postgres = duplicates.similarities(pairs)
    in_python = [duplicates.similarity(a, b) for a, b in pairs]
    assert in_postgres == pytest.approx(in_python, abs=1e-6)


def test_phone_endings():
    assert duplicates.phone_suffix("+491701234567") == "1234567"
    assert duplicates.phone_suffix("", "0170 / 123 45 67") == "1234567"
    assert duplicates.phone_suffix("", "12 34") == ""


# --- Each rule, in the scan and for a new customer ------------------------------------------------------


def test_same_email(manager):
    make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Hanna", last_name="Berger", email="Anna@Example.com ", shared_with_all_branches=True)
    make_customer(first_name="Other", last_name="Person", email="other@example.com", shared_with_all_branches=True)
    assert found_pairs() == {("Anna", "Hanna"): {"email"}}
    assert lookup(central(manager), first_name="Zoe", email="anna@example.com") == {"Anna": {"email"}, "Hanna": {"email"}}


def test_same_phone_in_any_format(manager):
    make_customer(first_name="Anna", last_name="Schmidt", phone_raw="0170 1234567", shared_with_all_branches=True)
    make_customer(first_name="Bert", last_name="Brown", phone_raw="+49 (170) 123-45-67", shared_with_all_branches=True)
    make_customer(first_name="Carl", last_name="Clark", phone_raw="+49 171 1234567", shared_with_all_branches=True)
    assert found_pairs() == {("Anna", "Bert"): {"phone"}}
    assert lookup(central(manager), first_name="Dora", phone="+491701234567") == {"Anna": {"phone"}, "Bert": {"phone"}}


def test_similar_name_and_same_birthday(manager):
    make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, shared_with_all_branches=True)
    make_customer(first_name="Kathrin", last_name="Schmidt", birthday=BIRTHDAY, shared_with_all_branches=True)
    # Similar, another birthday; the same birthday, another name.
    make_customer(first_name="Katrina", last_name="Schmidt", birthday=BIRTHDAY.replace(year=1986), shared_with_all_branches=True)
    make_customer(first_name="Bernd", last_name="Becker", birthday=BIRTHDAY, shared_with_all_branches=True)
    assert found_pairs() == {("Kathrin", "Katrin"): {"name_birthday"}}
    assert lookup(central(manager), first_name="Katrin", last_name="Schmid", birthday=BIRTHDAY) == {
        "Katrin": {"name_birthday"},
        "Kathrin": {"name_birthday"},
    }
    assert lookup(central(manager), first_name="Katrin", last_name="Schmid", birthday=BIRTHDAY.replace(day=13)) == {}


def test_similar_name_and_same_end_of_phone_number(manager):
    make_customer(first_name="Jürgen", last_name="Klein", phone_raw="+49 170 7654321", shared_with_all_branches=True)
    # Another country code; and a number that could not be read, with the same digits at the end.
    make_customer(first_name="Juergen", last_name="Klein", phone_raw="+43 660 7654321", shared_with_all_branches=True)
    make_customer(first_name="Jurgen", last_name="Kleine", phone_raw="000 765 4321", shared_with_all_branches=True)
    # The same end of number, another name.
    make_customer(first_name="Petra", last_name="Pohl", phone_raw="+49 30 7654321", shared_with_all_branches=True)
    assert Customer.objects.get(first_name="Jurgen").phone == ""
    assert found_pairs() == {
        ("Juergen", "Jürgen"): {"name_phone"},
        ("Jurgen", "Jürgen"): {"name_phone"},
        ("Juergen", "Jurgen"): {"name_phone"},
    }
    assert lookup(central(manager), first_name="Jürgen", last_name="Klein", phone="+41797654321") == {
        "Jürgen": {"name_phone"},
        "Juergen": {"name_phone"},
        "Jurgen": {"name_phone"},
    }


def test_accents_and_word_order_do_not_count(manager):
    make_customer(first_name="Ömer", last_name="Yılmaz", birthday=BIRTHDAY, shared_with_all_branches=True)
    make_customer(first_name="Yilmaz", last_name="Omer", birthday=BIRTHDAY, shared_with_all_branches=True)
    assert found_pairs() == {("Yilmaz", "Ömer"): {"name_birthday"}}


def test_the_same_whole_number_is_one_reason_not_two(manager):
    make_customer(first_name="Anna", last_name="Schmidt", phone_raw="0170 1234567", shared_with_all_branches=True)
    make_customer(first_name="Anne", last_name="Schmidt", phone_raw="0170 1234567", shared_with_all_branches=True)
    assert found_pairs() == {("Anna", "Anne"): {"phone"}}


def test_values_shared_by_many_customers_are_placeholders(manager):
    for number in range(duplicates.GROUP_LIMITS["email"] + 1):
        make_customer(first_name=f"Guest{number}", email="info@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anne", last_name="Other", email="anna@example.com", shared_with_all_branches=True)
    assert found_pairs() == {("Anna", "Anne"): {"email"}}
    assert lookup(central(manager), first_name="New", email="info@example.com") == {}


def test_a_birthday_far_more_common_than_others_is_a_placeholder(manager):
    placeholder = datetime.date(1900, 1, 1)
    for number in range(duplicates.GROUP_LIMITS["birthday"] + 1):
        make_customer(first_name=f"Anna{number}", last_name="Schmidt", birthday=placeholder, shared_with_all_branches=True)
    make_customer(first_name="Bernd", last_name="Becker", birthday=BIRTHDAY, shared_with_all_branches=True)
    make_customer(first_name="Bernd", last_name="Bäcker", birthday=BIRTHDAY, shared_with_all_branches=True)
    assert found_pairs() == {("Bernd", "Bernd"): {"name_birthday"}}
    assert duplicates.group_limit("birthday") == duplicates.GROUP_LIMITS["birthday"]
    assert lookup(central(manager), first_name="Anna", last_name="Schmidt", birthday=placeholder) == {}


def test_a_branch_finds_duplicates_by_the_values_it_sees(login, manager, staff_a, staff_b, branch_a, branch_b, allow_branch_edits):
    """Branch B's local email of a global customer is another customer's email: the pair is found
    through B's local values, listed for B and the head office, not for A (which sees both)."""
    gloria = make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    make_customer(first_name="Greta", last_name="Other", email="g.private@example.com", shared_with_all_branches=True)
    overrides.save_local_values(gloria, branch_b, {"email": "g.private@example.com"})
    assert found_pairs() == {("Gloria", "Greta"): {"email"}}
    assert DuplicateReason.objects.get().branch == branch_b
    assert [p.pk for p in duplicates.visible_pairs(in_branch(manager, branch_b))] == [DuplicatePair.objects.get().pk]
    assert duplicates.visible_pairs(central(manager)).count() == 1
    assert duplicates.visible_pairs(in_branch(staff_a, branch_a)).count() == 0
    # A new customer with that email: B is warned, A is not.
    assert lookup(in_branch(manager, branch_b), first_name="New", email="g.private@example.com") == {
        "Gloria": {"email"},
        "Greta": {"email"},
    }
    assert lookup(in_branch(staff_a, branch_a), first_name="New", email="g.private@example.com") == {"Greta": {"email"}}
    # The list: B sees Gloria as B sees her; the head office learns where the match was found.
    html = login(staff_b).get(pairs_url()).content.decode()
    assert "Gloria Global (g.private@example.com)" in html and "Greta Other (g.private@example.com)" in html
    assert "Same email, in the local values of Beta Salon" in login(manager).get(pairs_url()).content.decode()
    assert "Greta" not in login(staff_a).get(pairs_url()).content.decode()


def test_a_branch_never_learns_of_another_branch_s_customers(staff_a, branch_a, branch_b):
    make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=branch_b)
    make_customer(first_name="Lara", last_name="Locala", email="lars@example.com", home_branch=branch_a)
    assert found_pairs() == {("Lara", "Lars"): {"email"}}
    assert duplicates.visible_pairs(in_branch(staff_a, branch_a)).count() == 0
    assert lookup(in_branch(staff_a, branch_a), first_name="New", email="lars@example.com") == {"Lara": {"email"}}


# --- The scan keeps the list ----------------------------------------------------------------------------


def test_the_scan_adds_updates_and_removes_pairs_and_leaves_dismissed_ones(manager):
    anna = make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anne", email="anna@example.com", shared_with_all_branches=True)
    bert = make_customer(first_name="Bert", email="bert@example.com", shared_with_all_branches=True)
    make_customer(first_name="Berta", email="bert@example.com", shared_with_all_branches=True)
    first = duplicates.scan()
    assert (first.found, first.new, first.gone) == (2, 2, 0)
    again = duplicates.scan()
    assert (again.found, again.new, again.changed, again.gone) == (2, 0, 0, 0)

    bert_pair = DuplicatePair.objects.get(customer_a=bert)
    duplicates.dismiss(bert_pair, manager)
    anna.email = "anna.new@example.com"
    anna.save()
    after = duplicates.scan()
    assert (after.found, after.new, after.gone) == (0, 0, 1)
    assert list(DuplicatePair.objects.values_list("pk", "dismissed")) == [(bert_pair.pk, True)]
    # The same reason again does not bring a dismissed pair back.
    assert found_pairs() == {}


def test_deleting_a_customer_deletes_its_pairs(manager):
    anna = make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anne", email="anna@example.com", shared_with_all_branches=True)
    duplicates.scan()
    anna.delete()
    assert not DuplicatePair.objects.exists() and not DuplicateReason.objects.exists()


def test_command_and_task(manager, capsys):
    from wagtail_clientdb import tasks

    make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anne", email="anna@example.com", shared_with_all_branches=True)
    call_command("clientdb_find_duplicates")
    assert "1 possible duplicate(s): 1 new" in capsys.readouterr().out
    result = tasks.find_duplicates.enqueue()
    assert result.return_value == {"found": 1, "new": 0, "gone": 0}


@pytest.mark.postgres
def test_postgresql_s_scan_finds_what_python_finds(manager, branch_a, branch_b, allow_branch_edits):
    """The scan in SQL (pg_trgm) and in Python (SQLite's) agree on a mixed set of customers."""
    needs_postgresql()
    rng = random.Random(7)
    first_names = ["Anna", "Anne", "Hanna", "Katrin", "Kathrin", "Jürgen", "Juergen", "Ömer", "Omer", "Lena"]
    last_names = ["Schmidt", "Schmitt", "Klein", "Kleine", "Yılmaz", "Yilmaz", "Koch", "Müller", "Mueller"]
    customers = []
    for number in range(300):
        customers.append(
            make_customer(
                first_name=rng.choice(first_names),
                last_name=rng.choice(last_names),
                email=f"p{rng.randrange(200)}@example.com" if rng.random() < 0.5 else "",
                phone_raw=f"+49 170 {rng.randrange(1_000_000, 1_000_150)}" if rng.random() < 0.5 else "",
                birthday=datetime.date(1980, 1, 1) + datetime.timedelta(days=rng.randrange(30)) if rng.random() < 0.6 else None,
                shared_with_all_branches=True,
            )
        )
    for customer in rng.sample(customers, 40):
        overrides.save_local_values(
            customer, rng.choice([branch_a, branch_b]),
            {"email": f"p{rng.randrange(200)}@example.com", "last_name": rng.choice(last_names)},
        )
    by_sql = duplicates.found_by_sql()
    in_python = duplicates.found_in_python(duplicates.all_keys())
    assert len(by_sql) > 50
    assert by_sql.keys() == in_python.keys()
    for pair, reasons in by_sql.items():
        assert reasons.keys() == in_python[pair].keys(), pair
        for key, value in reasons.items():
            assert value == pytest.approx(in_python[pair][key], abs=1e-3)


# --- The "Possible duplicates" list ------------------------------------------------------------------


def test_the_list_shows_pairs_the_viewer_sees_and_not_a_duplicate_dismisses_them(
    login, manager, staff_a, staff_b, branch_a, branch_b
):
    make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    make_customer(first_name="Gloriana", last_name="Globalla", email="gloria@example.com", shared_with_all_branches=True)
    make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=branch_b)
    make_customer(first_name="Larsa", last_name="Localbb", email="lars@example.com", home_branch=branch_b)
    duplicates.scan()
    lars_pair = DuplicatePair.objects.get(customer_a__first_name="Lars")

    client = login(staff_a)
    page = client.get(pairs_url())
    assert page.status_code == 200
    html = page.content.decode()
    assert "Gloriana Globalla (gloria@example.com)" in html and "Same email" in html
    assert "Lars" not in html
    assert client.post(pairs_url("dismiss", lars_pair.pk)).status_code == 404
    assert DuplicatePair.objects.filter(dismissed=True).count() == 0

    gloria_pair = DuplicatePair.objects.get(customer_a__first_name="Gloria")
    response = client.post(pairs_url("dismiss", gloria_pair.pk), {"next": pairs_url()})
    assert response.status_code == 302 and response.url == pairs_url()
    assert "are not listed as possible duplicates any more" in client.get(pairs_url()).content.decode()
    assert "Gloriana" not in client.get(pairs_url()).content.decode()
    gloria_pair.refresh_from_db()
    assert gloria_pair.dismissed and gloria_pair.dismissed_by == staff_a
    assert ClientDBLogEntry.objects.filter(action="wagtail_clientdb.not_a_duplicate").count() == 2
    duplicates.scan()
    assert "Gloriana" not in client.get(pairs_url()).content.decode()

    html = login(staff_b).get(pairs_url()).content.decode()
    assert "Larsa Localbb (lars@example.com)" in html
    assert "Lars" in login(manager).get(pairs_url()).content.decode()


def test_the_list_needs_customer_permissions_and_dismissing_needs_change(login, make_user, branch_a, staff_group):
    from django.contrib.auth.models import Group, Permission

    make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    make_customer(first_name="Anne", email="anna@example.com", shared_with_all_branches=True)
    duplicates.scan()
    pair = DuplicatePair.objects.get()
    readers = Group.objects.create(name="Readers")
    readers.permissions.set(
        Permission.objects.filter(codename__in=["access_admin", "view_customer"])
    )
    reader = make_user("reader", groups=[readers], branches=[branch_a])
    client = login(reader)
    html = client.get(pairs_url()).content.decode()
    assert "Anne" in html and "Not a duplicate" not in html
    assert client.post(pairs_url("dismiss", pair.pk)).status_code in (302, 403)
    pair.refresh_from_db()
    assert not pair.dismissed
    # Nobody adds, edits or deletes pairs in Wagtail's own views.
    assert client.get(pairs_url("edit", pair.pk)).status_code == 302
    nobody = make_user("nobody", groups=[Group.objects.create(name="Admins only")], branches=[branch_a])
    nobody.groups.first().permissions.set(Permission.objects.filter(codename="access_admin"))
    assert login(nobody).get(pairs_url()).status_code == 302


# --- The admin's form for a new customer -------------------------------------------------------------


def test_a_new_customer_who_may_exist_is_named_and_can_be_created_anyway(login, staff_a, branch_a):
    existing = make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, home_branch=branch_a)
    client = login(staff_a)
    data = {"first_name": "Kathrin", "last_name": "Schmidt", "birthday": "1985-04-12", "email": "kathrin@example.com"}
    page = client.post(customer_url("add"), data)
    assert page.status_code == 200
    assert Customer.objects.count() == 1
    html = page.content.decode()
    assert "data-clientdb-possible-duplicates" in html
    assert "Katrin Schmidt" in html and "Similar name and same birthday" in html
    assert customer_url("inspect", existing.pk) in html
    assert f'name="create_anyway" value="{existing.pk}"' in html

    response = client.post(customer_url("add"), {**data, "create_anyway": str(existing.pk)})
    assert response.status_code == 302
    assert Customer.objects.filter(first_name="Kathrin", home_branch=branch_a).exists()


def test_create_anyway_counts_for_the_customers_named(login, manager):
    anna = make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    bert = make_customer(first_name="Bert", phone_raw="0170 1234567", shared_with_all_branches=True)
    client = login(manager)
    data = {"first_name": "Zoe", "email": "anna@example.com", "phone_raw": "0170 1234567", "sharing": "all"}
    page = client.post(customer_url("add"), {**data, "create_anyway": str(anna.pk)})
    assert page.status_code == 200 and "data-clientdb-possible-duplicates" in page.content.decode()
    assert client.post(customer_url("add"), {**data, "create_anyway": f"{anna.pk},{bert.pk}"}).status_code == 302


def test_no_warning_about_customers_of_another_branch(login, staff_a, branch_b):
    make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=branch_b)
    response = login(staff_a).post(customer_url("add"), {"first_name": "Lars", "last_name": "Localb", "email": "lars@example.com"})
    assert response.status_code == 302
    assert Customer.objects.filter(email="lars@example.com").count() == 2


def test_editing_a_customer_gives_no_duplicate_warning(login, manager):
    from tests.conftest import post_edit

    make_customer(first_name="Anna", email="anna@example.com", shared_with_all_branches=True)
    other = make_customer(first_name="Bert", email="bert@example.com", shared_with_all_branches=True)
    response = post_edit(login(manager), other, {"first_name": "Bert", "email": "anna@example.com"})
    assert response.status_code == 302


# --- The import preview ---------------------------------------------------------------------------------


def test_the_import_preview_names_possible_duplicates_of_new_rows(login, manager, staff_a, branch_a, branch_b):
    katrin = make_customer(first_name="Katrin", last_name="Schmidt", birthday=BIRTHDAY, email="k@example.com", home_branch=branch_a)
    make_customer(first_name="Jürgen", last_name="Klein", phone_raw="+49 170 7654321", home_branch=branch_b)
    rows = [
        ["First name", "Last name", "Birthday", "Phone", "Email"],
        ["Kathrin", "Schmidt", "12.04.1985", "", "kathrin@example.com"],
        ["Juergen", "Klein", "", "+43 660 7654321", ""],
        ["Bernd", "Becker", "", "", "bernd@example.com"],
        ["Katrin", "Schmidt", "", "", "k@example.com"],
    ]
    client = login(staff_a)
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile("list.csv", csv_bytes(rows))})
    job = ImportJob.objects.get()
    assert job.status == "previewed", (response.status_code, job.error, job.targets)
    assert job.counts == {"new": 3, "updated": 0, "unchanged": 1, "invalid": 0}
    # Jürgen is B's: A is told nothing about him.
    assert job.possible_duplicates == {
        "count": 1,
        "rows": [{"line": 2, "who": "Kathrin Schmidt", "matches": [{"customer": katrin.pk, "rules": ["name_birthday"]}]}],
    }
    html = client.get(customer_url("import_job", job.pk)).content.decode()
    assert "data-clientdb-possible-duplicates" in html
    assert "Katrin Schmidt" in html and customer_url("inspect", katrin.pk) in html

    # Nothing refused: the import writes the new rows.
    client.post(customer_url("import_job", job.pk), {})
    job.refresh_from_db()
    assert job.status == "imported" and job.counts["new"] == 3
    assert job.possible_duplicates == {"count": 0, "rows": []}


def test_a_pair_leads_to_the_merge_of_its_two_customers(login, manager):
    from django.utils.html import escape

    from wagtail_clientdb.views.merges import merge_url

    first = make_customer(first_name="Gloria", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    second = make_customer(first_name="Gloriana", last_name="Global", email="gloria@example.com", shared_with_all_branches=True)
    duplicates.scan()
    client = login(manager)
    html = client.get(pairs_url()).content.decode()
    link = merge_url([first, second])
    assert escape(link) in html
    merge_page = client.get(link)
    assert merge_page.status_code == 200 and "Gloriana" in merge_page.content.decode()
