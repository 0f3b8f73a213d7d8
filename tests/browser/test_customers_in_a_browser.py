"""The customer admin in a real browser: logging in, creating a customer shared with specific
branches, switching branches, local values. Each flow checks the page and the database."""

import pytest
from django.contrib.sessions.models import Session
from playwright.sync_api import expect

from tests.conftest import make_customer
from wagtail_clientdb import scope
from wagtail_clientdb.models import Customer, CustomerOverride

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

CUSTOMERS = "wagtailsnippets_wagtail_clientdb_customer:list"
RESULTS = "table.listing > tbody"


def test_a_user_logs_in_with_the_login_form(browser_page, admin_url, staff_a, screenshot):
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    expect(page).to_have_url(admin_url("wagtailadmin_login", query="next=/admin/snippets/wagtail_clientdb/customer/"))
    page.fill("#id_username", "staff_a")
    page.fill("#id_password", "wrong")
    page.click("button:has-text('Sign in')")
    expect(page.locator(".help-critical, .messages .error").first).to_be_visible()
    assert not Session.objects.exists()

    page.fill("#id_username", "staff_a")
    page.fill("#id_password", "password")
    screenshot(page, "form")
    page.click("button:has-text('Sign in')")
    expect(page.locator("h1")).to_have_text("Customers")
    expect(page.locator("[data-clientdb-branch-bar]")).to_contain_text("Branch: Alpha Salon")
    [session] = Session.objects.all()
    assert session.get_decoded()["_auth_user_id"] == str(staff_a.pk)
    staff_a.refresh_from_db()
    assert staff_a.last_login is not None


def test_a_manager_creates_a_customer_shared_with_specific_branches(browser_page, admin_url, log_in_as, manager, branch_a, branch_b, screenshot):
    Customer.objects.create(first_name="Existing", last_name="Person", home_branch=branch_b)
    log_in_as(manager)
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    page.click("text=Add customer")
    page.fill("#id_first_name", "Greta")
    page.fill("#id_last_name", "Großmann")
    page.fill("#id_email", " Greta.Grossmann@Example.COM ")
    page.fill("#id_phone_raw", "0170 1234567")
    page.get_by_role("tab", name="Branches").click()
    page.get_by_label("Specific branches").check()
    page.get_by_label("Alpha Salon").check()
    screenshot(page, "branches-tab")
    page.click("button:has-text('Save')")

    expect(page.locator(".messages")).to_contain_text("Greta Großmann")
    row = page.locator("tr", has_text="Greta Großmann")
    expect(row).to_contain_text("greta.grossmann@example.com")
    expect(row).to_contain_text("Alpha Salon")
    expect(row.locator(".w-status", has_text="global")).to_be_visible()
    screenshot(page, "listing")

    customer = Customer.objects.get(last_name="Großmann")
    assert (customer.email, customer.phone, customer.source) == ("greta.grossmann@example.com", "+491701234567", "manual")
    assert customer.is_global and not customer.shared_with_all_branches
    assert list(customer.branches.all()) == [branch_a]
    assert customer.home_branch is None


def test_a_two_branch_user_switches_branch_and_sees_the_global_badge(browser_page, admin_url, log_in_as, make_user, staff_group, branch_a, branch_b, screenshot):
    both = make_user("both", groups=[staff_group], branches=[branch_a, branch_b])
    shared = make_customer(first_name="Gloria", last_name="Global", shared_with_all_branches=True)
    make_customer(first_name="Lena", last_name="Local", home_branch=branch_a)
    make_customer(first_name="Bruno", last_name="Betalocal", home_branch=branch_b)
    log_in_as(both)
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    switcher = page.locator("#clientdb-current-branch")
    expect(switcher.locator("option:checked")).to_have_text("Alpha Salon")
    expect(page.locator(RESULTS)).to_contain_text("Lena Local")
    expect(page.locator(RESULTS)).not_to_contain_text("Bruno Betalocal")

    switcher.select_option(label="Beta Salon")
    page.click("button:has-text('Switch')")
    expect(page.locator("#clientdb-current-branch option:checked")).to_have_text("Beta Salon")
    body = page.locator(RESULTS)
    expect(body).to_contain_text("Bruno Betalocal")
    expect(body).not_to_contain_text("Lena Local")
    gloria = page.locator("tr", has_text="Gloria Global")
    expect(gloria.locator(".w-status", has_text="global")).to_be_visible()
    expect(page.locator("tr", has_text="Bruno Betalocal").locator(".w-status", has_text="global")).to_have_count(0)
    screenshot(page, "beta")

    # The choice is the session's: the inspect view of the shared customer shows the badge too.
    [session] = Session.objects.all()
    assert session.get_decoded()[scope.SESSION_BRANCH_KEY] == branch_b.pk
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:inspect", shared.pk))
    expect(page.locator("main .w-status", has_text="global")).to_be_visible()


def test_a_branch_edits_a_local_value_seen_only_in_that_branch(browser_page, admin_url, log_in_as, allow_branch_edits, staff_a, staff_b, branch_a, screenshot):
    shared = make_customer(first_name="Olga", last_name="Override", email="olga@example.com", phone_raw="+49 170 1111111",
                           notes="Head office note", shared_with_all_branches=True)
    log_in_as(staff_a)
    page = browser_page
    page.goto(admin_url(CUSTOMERS))
    page.click("a:has-text('Olga Override')")
    expect(page.locator("[data-clientdb-override-notice]")).to_contain_text("kept for Alpha Salon only")
    page.fill("#id_notes", "Alpha: prefers Saturdays")
    screenshot(page, "edit")
    page.click("button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Olga Override")

    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:inspect", shared.pk))
    notes = page.locator("dd", has_text="Alpha: prefers Saturdays")
    expect(notes.locator(".w-status", has_text="local value")).to_be_visible()
    screenshot(page, "inspect-alpha")

    override = CustomerOverride.objects.get(customer=shared)
    assert override.branch == branch_a and override.notes == "Alpha: prefers Saturdays"
    shared.refresh_from_db()
    assert shared.notes == "Head office note"

    # Beta Salon sees the company's value, with no local mark.
    log_in_as(staff_b)
    page.goto(admin_url("wagtailsnippets_wagtail_clientdb_customer:inspect", shared.pk))
    expect(page.locator("dd", has_text="Head office note")).to_be_visible()
    expect(page.locator("main")).not_to_contain_text("Alpha: prefers Saturdays")
    expect(page.locator("main .w-status", has_text="local value")).to_have_count(0)
