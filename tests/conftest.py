import datetime

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse
from django.utils import timezone

from wagtail_clientdb import roles
from wagtail_clientdb.models import Appointment, Branch, BranchMembership, ClientDBSettings, Customer, Service

# The product's two roles, as ``clientdb_setup_roles`` gives them: a test of a role is a test of
# what a site that set the roles up gives its users.
STAFF_PERMISSIONS = list(roles.STAFF_PERMISSIONS)
MANAGER_EXTRA_PERMISSIONS = [p for p in roles.MANAGER_PERMISSIONS if p not in roles.STAFF_PERMISSIONS]


def permissions(pairs):
    return [Permission.objects.get(content_type__app_label=app, codename=codename) for app, codename in pairs]


@pytest.fixture
def staff_group(db):
    group = Group.objects.create(name="Branch staff")
    group.permissions.set(permissions(STAFF_PERMISSIONS))
    return group


@pytest.fixture
def manager_group(db):
    group = Group.objects.create(name="Branch managers")
    group.permissions.set(permissions(STAFF_PERMISSIONS + MANAGER_EXTRA_PERMISSIONS))
    return group


@pytest.fixture
def make_user(db, django_user_model):
    def make(username, groups=(), branches=(), **extra):
        user = django_user_model.objects.create_user(username=username, password="password", email=f"{username}@example.com", **extra)
        user.groups.set(groups)
        for branch in branches:
            BranchMembership.objects.create(user=user, branch=branch)
        return user

    return make


@pytest.fixture
def branch_a(db):
    return Branch.objects.create(name="Alpha Salon", slug="alpha", timezone="Europe/Berlin")


@pytest.fixture
def branch_b(db):
    return Branch.objects.create(name="Beta Salon", slug="beta", timezone="Europe/Vienna")


@pytest.fixture
def manager(make_user, manager_group):
    return make_user("manager", groups=[manager_group])


@pytest.fixture
def staff_a(make_user, staff_group, branch_a):
    return make_user("staff_a", groups=[staff_group], branches=[branch_a])


@pytest.fixture
def staff_b(make_user, staff_group, branch_b):
    return make_user("staff_b", groups=[staff_group], branches=[branch_b])


@pytest.fixture
def editor(make_user, staff_group):
    """Has the customer permissions but belongs to no branch."""
    return make_user("editor", groups=[staff_group])


@pytest.fixture
def login(client):
    """Log the test client in as ``user`` (one client: the latest login wins)."""

    def log_in(user):
        client.force_login(user)
        return client

    return log_in


@pytest.fixture
def settings_model(db):
    return ClientDBSettings.load()


@pytest.fixture
def allow_branch_edits(settings_model):
    settings_model.branches_may_edit_global_customers = True
    settings_model.save()
    return settings_model


def make_customer(*, branches=(), **fields):
    customer = Customer.objects.create(**fields)
    if branches:
        customer.branches.set(branches)
    return customer


def make_service(name="Haircut", *branches, duration=60):
    service, _created = Service.objects.get_or_create(name=name, defaults={"duration": duration})
    service.branches.add(*branches)
    return service


def make_appointment(customer, branch, *, days=1, status="booked", service="Haircut"):
    start = timezone.now() + datetime.timedelta(days=days)
    return Appointment.objects.create(
        customer=customer,
        branch=branch,
        start=start,
        end=start + datetime.timedelta(hours=1),
        service=make_service(service, branch),
        status=status,
    )


def speak(user, language):
    """Set the user's admin language (their Wagtail profile), as the account settings do."""
    from wagtail.users.models import UserProfile

    profile = UserProfile.get_for_user(user)
    profile.preferred_language = language
    profile.save()


def customer_url(name, *args):
    return reverse(f"wagtailsnippets_wagtail_clientdb_customer:{name}", args=args)


def listing_counts(queries):
    """The queries of captured ``queries`` that count a listing (on PostgreSQL, its planner's
    estimate first). A first page that holds the whole listing asks none: its rows are its count."""
    return [query for query in queries if query["sql"].startswith(("SELECT COUNT(*)", "EXPLAIN"))]


def post_bulk(client, url, data=None, **kwargs):
    """Open a customer bulk action's confirmation page and confirm it, as a browser does: with
    the time the page was opened."""
    page = client.get(url)
    form = page.context["form"] if page.status_code == 200 else None
    opened_at = form["opened_at"].value() if form is not None and "opened_at" in form.fields else ""
    return client.post(url, {"opened_at": opened_at or "", **(data or {})}, **kwargs)


def post_edit(client, customer, data, **kwargs):
    """Open a customer's edit form and send it back with ``data``, as a browser does: with the
    versions the form was made from (``edit_base``)."""
    page = client.get(customer_url("edit", customer.pk))
    base = page.context["form"]["edit_base"].value() if page.status_code == 200 else ""
    return client.post(customer_url("edit", customer.pk), {"edit_base": base, **data}, **kwargs)


@pytest.fixture
def scope_customers(branch_a, branch_b):
    """One customer of each scope, named after it."""
    return {
        "global_all": make_customer(first_name="Gloria", last_name="Globalall", email="gloria@example.com", shared_with_all_branches=True),
        "global_a": make_customer(first_name="Gerd", last_name="Specifica", email="gerd@example.com", branches=[branch_a]),
        "local_a": make_customer(first_name="Lena", last_name="Locala", email="lena@example.com", home_branch=branch_a),
        "local_b": make_customer(first_name="Lars", last_name="Localb", email="lars@example.com", home_branch=branch_b),
    }


def pytest_sessionfinish(session, exitstatus):
    """The private folder of this test run (tests/settings.py) goes with it."""
    import shutil

    from django.conf import settings

    shutil.rmtree(settings.WAGTAIL_CLIENTDB["PRIVATE_ROOT"], ignore_errors=True)
