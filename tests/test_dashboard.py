"""The dashboard's panels: today's appointments by the branch's clock, blocked deletions and
the user's recent imports, exports and bulk changes, each scoped like the listings."""

import datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import formats, timezone

from tests.conftest import make_appointment, make_customer
from wagtail_clientdb import deletion, scope
from wagtail_clientdb.models import (
    BranchMembership,
    BulkActionJob,
    BulkActionStatus,
    Customer,
    ExportJob,
    ImportJob,
    JobStatus,
)

HOME = reverse("wagtailadmin_home")


def at_half_past_eleven_today(appointment):
    """Move an appointment to 11:30 today on its branch's clock."""
    zone = appointment.branch.zoneinfo
    start = datetime.datetime.combine(timezone.localdate(timezone=zone), datetime.time(11, 30), tzinfo=zone)
    appointment.start, appointment.end = start, start + datetime.timedelta(hours=1)
    appointment.save()
    return appointment


def test_todays_appointments_of_the_users_branch_by_its_clock(login, staff_a, manager, branch_a, branch_b):
    anna = make_customer(first_name="Anna", last_name="Apfel", shared_with_all_branches=True)
    at_half_past_eleven_today(make_appointment(anna, branch_a, service="Cut"))
    at_half_past_eleven_today(make_appointment(anna, branch_b, service="Beard trim"))
    make_appointment(anna, branch_a, days=3, service="Later")
    html = login(staff_a).get(HOME).content.decode()
    assert "Today in Alpha Salon" in html and "data-clientdb-today" in html
    assert "Cut" in html and formats.time_format(datetime.time(11, 30)) in html
    assert "Beard trim" not in html and "Later" not in html
    html = login(manager).get(HOME).content.decode()
    assert "Cut" in html and "Beard trim" in html and "Beta Salon" in html


def test_a_day_without_appointments_says_so_and_a_user_of_no_branch_sees_no_panel(login, staff_a, editor):
    assert "No appointments today." in login(staff_a).get(HOME).content.decode()
    assert "clientdb-today" not in login(editor).get(HOME).content.decode()


def test_blocked_deletions_are_counted_for_those_who_see_them(login, manager, staff_a, staff_b, branch_a):
    lena = make_customer(first_name="Lena", home_branch=branch_a)
    make_appointment(lena, branch_a, days=2)
    request = deletion.request_deletion(scope.Viewer(staff_a, False, (branch_a,)), lena)
    assert request.status == "blocked"
    for user in (manager, staff_a):
        html = login(user).get(HOME).content.decode()
        assert "1 customer is waiting to be deleted" in html and "?status=blocked" in html
    assert "waiting to be deleted" not in login(staff_b).get(HOME).content.decode()


def test_recent_imports_are_the_users_own(login, manager, staff_a):
    ImportJob.objects.create(created_by=manager, original_name="spring.xlsx", status="imported", counts={"new": 4, "updated": 1, "unchanged": 0, "invalid": 2})
    html = login(manager).get(HOME).content.decode()
    assert "Your recent customer imports" in html and "spring.xlsx" in html
    assert "spring.xlsx" not in login(staff_a).get(HOME).content.decode()


def test_branch_staff_search_customers_not_pages_from_the_dashboard(login, staff_a, manager, django_user_model):
    listing = reverse("wagtailsnippets_wagtail_clientdb_customer:list")
    html = login(staff_a).get(HOME).content.decode()
    assert f'action="{listing}"' in html and "Search customers by name, email or phone" in html
    # Staff have no pages: Wagtail's page search box is hidden for them, not for page editors.
    assert "dashboard_without_pages.css" in html
    superuser = django_user_model.objects.create_superuser("owner", "owner@example.com", "pw")
    html = login(superuser).get(HOME).content.decode()
    assert f'action="{listing}"' in html and "dashboard_without_pages.css" not in html
    # The box finds customers in the listing.
    make_customer(first_name="Anna", last_name="Apfel", shared_with_all_branches=True)
    response = login(staff_a).get(listing, {"q": "Apfel"})
    assert [str(customer) for customer in response.context["object_list"]] == ["Anna Apfel"]


def job_url(name, job):
    return reverse(Customer.snippet_viewset.get_url_name(name), args=(job.pk,))


def test_recent_exports_and_bulk_changes_are_listed_with_their_progress_for_whoever_started_them(login, manager, staff_a, branch_a):
    export = ExportJob.objects.create(created_by=manager, format="xlsx", status=JobStatus.EXPORTED, rows_total=120_000, rows_done=120_000)
    tagging = BulkActionJob.objects.create(
        created_by=manager, action="add_tags", options={"tags": ["Stapel"]}, opened_at=timezone.now(),
        status=BulkActionStatus.RUNNING, rows_total=231_000, rows_done=40_000,
    )
    html = login(manager).get(HOME).content.decode()
    assert "Your recent exports and bulk changes" in html and "data-clientdb-recent-jobs" in html
    # Newest first: the running bulk change with how far it got, then the finished export.
    assert html.index(job_url("bulk_action_job", tagging)) < html.index(job_url("export_job", export))
    assert "Add tags" in html and "40,000 of 231,000" in html
    assert f"Customer export {export.file_name}" in html and "120,000" in html and "Ready" in html
    for name, job in (("bulk_action_job", tagging), ("export_job", export)):
        assert login(manager).get(job_url(name, job)).status_code == 200
    # Someone else's jobs are not listed, and a user without jobs gets no panel.
    assert "data-clientdb-recent-jobs" not in login(staff_a).get(HOME).content.decode()


def test_a_job_of_a_branch_its_user_has_left_is_not_listed(login, staff_a, branch_a, branch_b):
    BranchMembership.objects.create(user=staff_a, branch=branch_b)
    left_behind = ExportJob.objects.create(created_by=staff_a, branch=branch_a, format="csv", status=JobStatus.EXPORTED)
    current = ExportJob.objects.create(created_by=staff_a, branch=branch_b, format="xlsx", status=JobStatus.EXPORTING, rows_total=10)
    BranchMembership.objects.filter(user=staff_a, branch=branch_a).delete()
    html = login(staff_a).get(HOME).content.decode()
    assert job_url("export_job", current) in html and "0 of 10" in html
    # Its page would refuse it (404): the panel does not offer it.
    assert job_url("export_job", left_behind) not in html
    assert login(staff_a).get(job_url("export_job", left_behind)).status_code == 404


def test_the_jobs_panel_asks_as_many_queries_for_ten_jobs_as_for_one(login, manager):
    def queries():
        client = login(manager)
        client.get(HOME)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(HOME).status_code == 200
        return len(captured)

    ExportJob.objects.create(created_by=manager, format="csv", status=JobStatus.EXPORTED)
    one = queries()
    for number in range(5):
        ExportJob.objects.create(created_by=manager, format="csv", status=JobStatus.EXPORTED)
        BulkActionJob.objects.create(created_by=manager, action="archive", opened_at=timezone.now(), status=BulkActionStatus.DONE)
    assert queries() == one
