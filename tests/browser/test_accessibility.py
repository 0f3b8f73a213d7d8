"""axe-core (bundled by the axe-playwright-python package) on the app's admin pages and the
public booking page: no serious or critical violation may come from the app's own markup.

Violations in Wagtail's own markup, which the app cannot change, are allowed by rule and
selector in ALLOWED, each with the reason.
"""

import datetime
import json
import re

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb import deletion, scope
from wagtail_clientdb.models import AttributeDefinition, ClientDBSettings, CustomerGroup, ImportJob
from wagtail_clientdb.overrides import save_local_values

pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=True)

#: (rule id, the CSS selector axe reports) -> why it is allowed. None is needed today: the
#: serious and critical violations axe found were all in the app's markup, and are fixed.
#: (Wagtail's create and edit views have no <h1>, "page-has-heading-one", which is moderate.)
ALLOWED = {}

SERIOUS = {"serious", "critical"}


def axe_violations(page):
    """The serious and critical violations axe finds on the page, less the allowed ones."""
    from axe_playwright_python.base import AXE_SCRIPT

    page.evaluate(AXE_SCRIPT)
    results = page.evaluate("axe.run(document, {resultTypes: ['violations']})")
    found = []
    for violation in results["violations"]:
        if violation["impact"] not in SERIOUS:
            continue
        for node in violation["nodes"]:
            target = " ".join(str(part) for part in node["target"])
            if (violation["id"], target) in ALLOWED:
                continue
            found.append({"rule": violation["id"], "impact": violation["impact"], "target": target,
                          "html": node["html"][:300], "summary": node.get("failureSummary", "")[:400]})
    return found


@pytest.fixture
def salon(branch_a, branch_b, booking_site):
    CustomerGroup.objects.create(name="VIP", description="Regulars with priority booking.")
    AttributeDefinition.objects.create(applies_to="customer", key="hair_type", label="Hair type", field_type="choice",
                                       choices=["fine", "thick"], show_in_booking_form=True)
    anna = make_customer(first_name="Anna", last_name="Schmidt", email="anna@example.com", phone_raw="0170 1234567",
                         shared_with_all_branches=True, marketing_consent=True)
    anna.tags.add("regular")
    local = make_customer(first_name="Lena", last_name="Local", home_branch=branch_a)
    today = make_appointment(anna, branch_a, days=0)
    today.start = timezone.now() + datetime.timedelta(minutes=30)
    today.end = today.start + datetime.timedelta(hours=1)
    today.save()
    for days, status in ((-2, "completed"), (-3, "no_show"), (-4, "cancelled")):
        make_appointment(local, branch_a, days=days, status=status)
    blocked = make_customer(first_name="Doris", last_name="Delete", shared_with_all_branches=True)
    make_appointment(blocked, branch_b, days=4)
    return {"anna": anna, "local": local, "blocked": blocked}


def test_admin_and_booking_pages_have_no_serious_violations(browser_page, admin_url, log_in_as, make_user, staff_group, manager, staff_a, salon, booking_site, branch_a, branch_b, tmp_path, screenshot):
    deletion.request_deletion(scope.Viewer(manager, True, ()), salon["blocked"])
    page = browser_page
    log_in_as(manager)

    customer = "wagtailsnippets_wagtail_clientdb_customer"
    pages = {
        "dashboard": admin_url("wagtailadmin_home"),
        "customers": admin_url(f"{customer}:list"),
        "customers filtered": admin_url(f"{customer}:list", query=f"branch={branch_a.pk}"),
        "customer inspect": admin_url(f"{customer}:inspect", salon["anna"].pk),
        "customer edit": admin_url(f"{customer}:edit", salon["anna"].pk),
        "customer create": admin_url(f"{customer}:add"),
        "appointments": admin_url("wagtailsnippets_wagtail_clientdb_appointment:list"),
        "appointments all": admin_url("wagtailsnippets_wagtail_clientdb_appointment:list", query="period=all"),
        "appointment create": admin_url("wagtailsnippets_wagtail_clientdb_appointment:add"),
        "week": admin_url("wagtailsnippets_wagtail_clientdb_appointment:week"),
        "customers to delete": admin_url("wagtailsnippets_wagtail_clientdb_deletionrequest:list"),
        "groups": admin_url("wagtailsnippets_wagtail_clientdb_customergroup:list"),
        "attributes": admin_url("wagtailsnippets_wagtail_clientdb_attributedefinition:list"),
        "branches": admin_url("wagtailsnippets_wagtail_clientdb_branch:list"),
        "import upload": admin_url(f"{customer}:import"),
    }
    problems = {}

    def check(name):
        problems[name] = axe_violations(page)
        screenshot(page, re.sub(r"\W+", "-", name).strip("-"), full_page=True)

    for name, url in pages.items():
        page.goto(url)
        check(name)

    # The import preview, with a refused row.
    page.goto(admin_url(f"{customer}:import"))
    path = tmp_path / "list.csv"
    path.write_text("Name,Email\nNina Neu,nina@example.com\nBad Row,not-an-email\n", encoding="utf-8")
    page.get_by_label("Customer list").set_input_files(path)
    page.click("button:has-text('Upload and check')")
    expect(page.locator("[data-clientdb-invalid-rows]")).to_be_visible()
    check("import preview")
    assert ImportJob.objects.get().status == "previewed"


    # A file with a header row the app does not know: the column mapping.
    page.goto(admin_url(f"{customer}:import"))
    path.write_text("Kundenname;Mail;Farbe\nNina Neu;nina@example.com;rot\n", encoding="utf-8")
    page.get_by_label("Customer list").set_input_files(path)
    page.click("button:has-text('Upload and check')")
    expect(page.locator("button:has-text('Check the file')")).to_be_visible()
    check("import mapping")

    # A branch's views: the branch bar, a shared customer read-only, then with a local value.
    log_in_as(staff_a)
    page.goto(admin_url(f"{customer}:list"))
    check("customers (branch)")
    page.goto(admin_url(f"{customer}:inspect", salon["anna"].pk))
    check("customer inspect (read-only)")
    settings = ClientDBSettings.load()
    settings.branches_may_edit_global_customers = True
    settings.save()
    save_local_values(salon["anna"], branch_a, {"notes": "Alpha's own note"})
    page.goto(admin_url(f"{customer}:edit", salon["anna"].pk))
    expect(page.locator("[data-clientdb-override-notice]")).to_be_visible()
    check("customer edit (local values)")
    page.goto(admin_url(f"{customer}:inspect", salon["anna"].pk))
    check("customer inspect (local values)")
    log_in_as(make_user("both", groups=[staff_group], branches=[branch_a, branch_b]))
    page.goto(admin_url(f"{customer}:list"))
    expect(page.locator("#clientdb-current-branch")).to_be_visible()
    check("customers (two branches)")

    # The public booking page, with free times and the form.
    day = timezone.localdate(timezone.now(), branch_a.zoneinfo) + datetime.timedelta(days=2)
    page.goto(admin_url(booking_site.url))
    check("booking page")
    page.select_option("#booking-service", label="Cut & blow-dry (60 minutes)")
    page.fill("#booking-date", day.isoformat())
    page.click("text=Show free times")
    expect(page.locator("[data-clientdb-book]")).to_be_visible()
    check("booking form")

    log_in_as(manager)
    page.emulate_media(color_scheme="dark")
    for name in ("dashboard", "appointments all", "customer inspect", "week", "customers to delete"):
        page.goto(pages[name])
        check(name + " (dark)")
    page.emulate_media(color_scheme="light")

    problems = {name: found for name, found in problems.items() if found}
    assert not problems, json.dumps(problems, indent=1, ensure_ascii=False)
