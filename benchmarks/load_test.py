#!/usr/bin/env python
"""A load test of the example site under gunicorn on PostgreSQL (issue #16; docs/performance.md).

    .venv/bin/python benchmarks/load_test.py [--users 50] [--duration 120] [--customers 20000]
        [--workers 3] [--threads 4] [--think 1-5] [--keep] [--reuse]

Needs the ``benchmark`` extra (gunicorn, httpx): ``pip install -e ".[test,example,benchmark]"``.
Every request goes to 127.0.0.1; the run ends by itself after ``--duration`` seconds.

1. **Setup** (in this process, with the settings of benchmarks/load_settings.py: the example
   site with DEBUG off): drops and re-creates the database (DATABASE_URL, default
   postgres://postgres@127.0.0.1:5432/clientdb_load; only a database whose name starts with
   ``clientdb_load``), migrates it, loads the demo data (``load_demo_data``: four branches,
   their booking pages, 300 customers) and adds ``--customers`` more with their appointments
   (bulk inserts, scoped and shaped like the demo's), and one admin user per simulated user:
   every fifth a branch manager (``load-manager-NN``), the others branch staff of one of the
   four branches in turn (``load-mitte-NN``, …), with the demo's permission groups.
2. **Server**: gunicorn with ``--workers`` processes of ``--threads`` threads (gthread),
   bound to 127.0.0.1 on a free port; static files are not requested (a browser has them
   cached).
3. **Load**: ``--users`` simulated users (asyncio, httpx). First they log into the Wagtail
   admin, one after another over ``--ramp`` seconds (the login form, its CSRF token and
   cookie; timed, and reported apart). Then all of them work for ``--duration`` seconds, the
   measured load: each picks a task by weight and pauses ``--think`` seconds (uniform)
   between pages: the dashboard; the customer listing (page 1, a later page, ordered by most
   bookings); a search as the listing's search box sends it (a name fragment, a full email, a
   phone number in the German local form ``0170 1234567``); a customer's inspect page; editing
   a customer (the edit form, one editing-session ping as Wagtail's page sends it, a pause for
   typing, then the form posted back with every field as a browser sends it and the notes set
   to a unique token, the editing session released and the redirect to the listing
   followed); booking online as a visitor, without the admin session (the branch's booking
   page, a service and day, the form posted with a free time, the confirmation page).
   Visitors are new people (a unique email, half of them with a phone number) or, one in
   three, existing customers booking again with their email, leaving the questions of the
   form unanswered.
4. **Checks** (after gunicorn has stopped): any 5xx, request without an answer or answer
   other than the page's expected one is an error. No lost writes: every user edits its own
   customers, so the notes a user's last accepted save (a redirect) sent must be what that
   user sees now — the customer's notes for a manager or for a branch's own local customer,
   the branch's local value of a shared customer; four *contended* customers (one local
   customer per branch) are edited by that branch's staff and every manager, where a save
   refused as stale ("someone else saved this customer") is expected and counted apart, and
   the accepted saves must form one chain (each based on the notes the previous accepted
   save wrote, the last one stored); every booking that reached its confirmation is in the
   database with its form token and its customer (a returning visitor booked as that
   customer), and no other online booking was made; every customer's booking counts equal a
   recount of their appointments. And nothing else changed: a returning visitor's booking
   left what their branch knows of them (the attributes) as it was.

Prints a table (per kind of request: count, p50, p95, max in ms, errors) and writes everything
to benchmarks/load-results.json (generated; not meant to be committed). gunicorn's log (with
the traceback of any server error) is kept as benchmarks/load-gunicorn.log. At the end
gunicorn is stopped and the database dropped (``--keep`` keeps it; ``--reuse`` runs against a
database kept from an earlier run without setting it up again).

The exit status is 0 when there was no server error, no failed request, no lost write and no
customer changed by a booking that should change nothing.
"""

import argparse
import asyncio
import contextlib
import dataclasses
import datetime
import html.parser
import json
import math
import os
import platform
import random
import re
import resource
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import traceback
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
EXAMPLE_SITE = os.path.join(REPO_ROOT, "example_site")
for _folder in (REPO_ROOT, EXAMPLE_SITE):  # before site-packages: the working tree's app is measured
    if _folder not in sys.path:
        sys.path.insert(0, _folder)
SETTINGS_MODULE = "benchmarks.load_settings"
os.environ["DJANGO_SETTINGS_MODULE"] = SETTINGS_MODULE
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/clientdb_load"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)
DATABASE_PREFIX = "clientdb_load"

RESULTS_FILE = os.path.join(HERE, "load-results.json")
SERVER_LOG = os.path.join(HERE, "load-gunicorn.log")
SEED = 20261130
PASSWORD = "load-test-password"
BRANCH_SLUGS = ("mitte", "altona", "schwabing", "ehrenfeld")  # the demo data's branches
#: Every n-th simulated user is a branch manager; the others are staff of one branch.
MANAGER_EVERY = 5
#: Customers each user edits (its own: nobody else edits them).
OWN_CUSTOMERS = 12
#: Share of a user's edits that go to the contended customer of its branch (managers: any of them).
CONTENDED_SHARE = 0.25
#: Share of online bookings made by existing customers (with their email).
RETURNING_SHARE = 1 / 3
NOTES_PREFIX = "Load test "
TOKEN_PATTERN = re.compile(r"Load test ([a-z0-9]+-u\d+-\d+)")
STALE_TEXT = "Someone else saved this customer"
SLOT_TAKEN_TEXT = "just booked by someone else"
REQUEST_TIMEOUT = 60.0

#: (task, weight): what a user does next.
TASKS = [
    ("dashboard", 8),
    ("listing", 16),
    ("search", 26),
    ("inspect", 18),
    ("edit", 18),
    ("book", 14),
]

#: The kinds of request, in the order of the results table.
KINDS = [
    "login form",
    "login",
    "dashboard",
    "listing",
    "listing, later page",
    "listing, most bookings",
    "search: name fragment",
    "search: email",
    "search: phone, local form",
    "inspect",
    "edit form",
    "edit: session ping",
    "edit: save",
    "edit: session release",
    "booking page",
    "booking: free times",
    "booking: book",
    "booking: confirmation",
]
ADMIN = "/admin/"
CUSTOMERS = "/admin/snippets/wagtail_clientdb/customer/"


def log(message):
    print(f"[{datetime.datetime.now(datetime.UTC):%H:%M:%S}Z] {message}", file=sys.stderr, flush=True)


# --- HTML forms, read as a browser reads them ----------------------------------------------------------


@dataclasses.dataclass
class Control:
    tag: str  # input, select, textarea
    name: str
    type: str = ""
    value: str = ""
    checked: bool = False
    disabled: bool = False
    multiple: bool = False
    options: list = dataclasses.field(default_factory=list)  # select: [value, selected]


@dataclasses.dataclass
class Form:
    attrs: dict
    controls: list = dataclasses.field(default_factory=list)

    @property
    def action(self):
        return self.attrs.get("action") or ""

    def control(self, name):
        return next((c for c in self.controls if c.name == name), None)

    def choices(self, name):
        """The values a radio group or select offers."""
        values = [c.value for c in self.controls if c.name == name and c.type == "radio"]
        for control in self.controls:
            if control.name == name and control.tag == "select":
                values += [value for value, _selected in control.options]
        return values

    def value(self, name):
        values = [v for n, v in self.submission() if n == name]
        return values[0] if values else None

    def submission(self, changes=None):
        """The (name, value) pairs a browser submits (HTML's "constructing the entry list"):
        no disabled control, checkboxes and radios only when checked, a single select's
        first option when none is selected. ``changes`` (name → value, or a list of values)
        replaces what the form holds for those names."""
        changes = dict(changes or {})
        pairs = []
        for control in self.controls:
            if not control.name or control.disabled or control.name in changes:
                continue
            if control.tag == "select":
                selected = [value for value, chosen in control.options if chosen]
                if not selected and control.options and not control.multiple:
                    selected = [control.options[0][0]]
                pairs += [(control.name, value) for value in selected]
            elif control.type in ("checkbox", "radio"):
                if control.checked:
                    pairs.append((control.name, control.value if control.value is not None else "on"))
            elif control.type in ("submit", "button", "reset", "image", "file"):
                continue
            else:
                pairs.append((control.name, control.value))
        for name, value in changes.items():
            for item in value if isinstance(value, (list, tuple)) else [value]:
                if item is not None:
                    pairs.append((name, item))
        return pairs


class FormParser(html.parser.HTMLParser):
    """Every <form> of a page with its controls (input, select with options, textarea)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self._form = None
        self._select = None
        self._option = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = {key: ("" if value is None else value) for key, value in attrs}
        if tag == "form":
            self._form = Form(attrs)
            self.forms.append(self._form)
            return
        if self._form is None:
            return
        disabled = "disabled" in attrs
        if tag == "input":
            kind = attrs.get("type", "text").lower()
            default = "on" if kind in ("checkbox", "radio") else ""
            self._form.controls.append(
                Control("input", attrs.get("name", ""), kind, attrs.get("value", default), "checked" in attrs, disabled)
            )
        elif tag == "select":
            self._select = Control("select", attrs.get("name", ""), "select", disabled=disabled, multiple="multiple" in attrs)
            self._form.controls.append(self._select)
        elif tag == "option" and self._select is not None:
            self._option = [attrs.get("value"), "selected" in attrs, ""]
            self._select.options.append(self._option)
        elif tag == "textarea":
            self._textarea = Control("textarea", attrs.get("name", ""), "textarea", "", disabled=disabled)
            self._form.controls.append(self._textarea)

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea.value += data
        elif self._option is not None:
            self._option[2] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        elif tag == "select" and self._select is not None:
            # An option without a value attribute submits its text.
            self._select.options = [
                [text.strip() if value is None else value, selected] for value, selected, text in self._select.options
            ]
            self._select = self._option = None
        elif tag == "option":
            self._option = None
        elif tag == "textarea" and self._textarea is not None:
            # A newline right after <textarea> is not part of the value (HTML's parsing rules).
            value = self._textarea.value
            self._textarea.value = value[2:] if value.startswith("\r\n") else value[1:] if value.startswith("\n") else value
            self._textarea = None


def parse_forms(text):
    parser = FormParser()
    parser.feed(text)
    parser.close()
    return parser.forms


def encoded(pairs):
    """A form submission as a browser sends it (application/x-www-form-urlencoded), in the form's order."""
    return {
        "content": urllib.parse.urlencode(pairs).encode(),
        "headers": {"Content-Type": "application/x-www-form-urlencoded"},
    }


def find_form(forms, predicate):
    return next((form for form in forms if predicate(form.attrs)), None)


CSRF_INPUT = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def csrf_from(text):
    found = CSRF_INPUT.search(text)
    return found.group(1) if found else None


# --- Setup: database, data, users (Django in this process) -----------------------------------------


def database_config():
    import dj_database_url

    return dj_database_url.parse(os.environ["DATABASE_URL"])


def _admin_connection():
    import psycopg

    config = database_config()
    return psycopg.connect(
        dbname="postgres",
        autocommit=True,
        host=config.get("HOST") or None,
        port=config.get("PORT") or None,
        user=config.get("USER") or None,
        password=config.get("PASSWORD") or None,
    )


def database_exists():
    with _admin_connection() as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database_config()["NAME"]]).fetchone() is not None


def _checked_name():
    name = database_config()["NAME"]
    if not name.startswith(DATABASE_PREFIX):
        sys.exit(f"refusing to drop or create {name!r}: the load test's database name must start with {DATABASE_PREFIX!r}")
    return name


def create_database():
    from psycopg import sql

    name = _checked_name()
    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        # The deployment checklist's recommendation (docs/deployment.md).
        conn.execute(sql.SQL("ALTER DATABASE {} SET jit = off").format(sql.Identifier(name)))


def drop_database():
    from django.db import connections
    from psycopg import sql

    connections.close_all()
    name = _checked_name()
    with _admin_connection() as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def role_of(index):
    """``("manager", None)`` or ``("staff", branch slug)`` for simulated user ``index`` (from 0)."""
    if index % MANAGER_EVERY == MANAGER_EVERY - 1:
        return "manager", None
    staff_number = index - index // MANAGER_EVERY
    return "staff", BRANCH_SLUGS[staff_number % len(BRANCH_SLUGS)]


def username_of(index):
    role, slug = role_of(index)
    return f"load-{'manager' if role == 'manager' else slug}-{index + 1:02d}"


def generate_customers(count, rng):
    """``count`` customers shaped like the demo's, with appointments, inserted in bulk."""
    from demo.management.commands import load_demo_data as demo
    from django.db import transaction
    from django.utils import timezone

    from wagtail_clientdb import booking_counts
    from wagtail_clientdb.contact import normalise_text, parse_phone
    from wagtail_clientdb.models import (
        Appointment,
        AppointmentStatus,
        Branch,
        ConsentChannel,
        ConsentEvent,
        Customer,
        CustomerGroup,
        Service,
    )
    from wagtail_clientdb.models.customer import CustomerTag, TaggedCustomer

    branches = list(Branch.objects.order_by("pk"))
    services = list(Service.objects.order_by("pk"))
    groups = list(CustomerGroup.objects.order_by("pk"))
    tags = list(CustomerTag.all_tags.order_by("pk"))
    today = timezone.localdate()
    batch = 2000
    made = 0
    with transaction.atomic():
        while made < count:
            size = min(batch, count - made)
            customers, scopes = [], []
            for i in range(made, made + size):
                first, last = rng.choice(demo.FIRST_NAMES), rng.choice(demo.LAST_NAMES)
                scope = rng.choices(["all", "some", "local"], weights=[40, 20, 40])[0]
                raw = demo.phone_as_typed(rng)
                phone = parse_phone(raw, "DE")
                email = ""
                if rng.random() < 0.92:  # unique: a returning visitor is found by it
                    email = f"{demo.mailbox_name(first)}.{demo.mailbox_name(last)}.{i}@{rng.choice(demo.EMAIL_DOMAINS)}"
                attributes = {}
                if rng.random() < 0.7:
                    attributes["hair_type"] = rng.choice(demo.HAIR_TYPES["en"])
                if rng.random() < 0.5:
                    attributes["referral"] = rng.choice(demo.REFERRALS["en"])
                if rng.random() < 0.6:
                    attributes["customer_number"] = f"K-{rng.randint(1000, 999999)}"
                customers.append(
                    Customer(
                        first_name=normalise_text(first),
                        last_name=normalise_text(last),
                        email=email,
                        phone_raw=phone.raw,
                        phone=phone.e164,
                        birthday=demo.random_date(rng, datetime.date(1950, 1, 1), datetime.date(2010, 12, 31))
                        if rng.random() < 0.4
                        else None,
                        notes=rng.choice(demo.CUSTOMER_NOTES["en"]) if rng.random() < 0.15 else "",
                        attributes=attributes,
                        marketing_consent=rng.random() < 0.4,
                        source=demo.pick(rng, demo.SOURCE_WEIGHTS),
                        home_branch=rng.choice(branches) if scope == "local" else None,
                        shared_with_all_branches=scope == "all",
                    )
                )
                scopes.append(scope)
            Customer.objects.bulk_create(customers)
            shared_links, tag_links, group_links, consents, appointments = [], [], [], [], []
            for customer, scope in zip(customers, scopes):
                if scope == "some":
                    seen_by = rng.sample(branches, rng.choice((1, 2)))
                    shared_links += [Customer.branches.through(customer_id=customer.pk, branch_id=b.pk) for b in seen_by]
                else:
                    seen_by = [customer.home_branch] if customer.home_branch else branches
                if customer.marketing_consent:
                    consents.append(ConsentEvent(customer=customer, given=True, channel=ConsentChannel.IMPORT))
                if rng.random() < 0.3:
                    tag_links += [TaggedCustomer(content_object=customer, tag=t) for t in rng.sample(tags, rng.choice((1, 2)))]
                if rng.random() < 0.2:
                    group_links.append(Customer.groups.through(customer_id=customer.pk, customergroup_id=rng.choice(groups).pk))
                usual = rng.choice(seen_by)
                for _ in range(rng.choices(range(7), weights=(20, 20, 18, 14, 12, 9, 7))[0]):
                    branch = usual if rng.random() < 0.8 else rng.choice(seen_by)
                    service = rng.choice(services)
                    if rng.random() < 0.04:
                        day, status = demo.salon_day(today, rng.randint(1, 30)), AppointmentStatus.BOOKED
                    else:
                        day, status = demo.salon_day(today, -rng.randint(1, 540)), demo.pick(rng, demo.PAST_STATUS_WEIGHTS)
                    start, end = demo.slot(rng, day, service.duration, branch)
                    appointments.append(
                        Appointment(
                            customer=customer, branch=branch, service=service, start=start, end=end, status=status,
                            source=demo.pick(rng, demo.APPOINTMENT_SOURCE_WEIGHTS),
                        )
                    )
            Customer.branches.through.objects.bulk_create(shared_links)
            TaggedCustomer.objects.bulk_create(tag_links)
            Customer.groups.through.objects.bulk_create(group_links)
            ConsentEvent.objects.bulk_create(consents)
            Appointment.objects.bulk_create(appointments, batch_size=5000)
            made += size
        booking_counts.recount_all()


def create_users(count):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.hashers import make_password
    from django.contrib.auth.models import Group
    from wagtail.users.models import UserProfile

    from demo.management.commands import load_demo_data as demo
    from wagtail_clientdb.models import Branch, BranchMembership

    User = get_user_model()
    branches = {branch.slug: branch for branch in Branch.objects.all()}
    groups = {"manager": Group.objects.get(name=demo.MANAGER_GROUP), "staff": Group.objects.get(name=demo.STAFF_GROUP)}
    hashed = make_password(PASSWORD)  # once: the hasher is slow on purpose
    for index in range(count):
        username = username_of(index)
        role, slug = role_of(index)
        user, created = User.objects.get_or_create(
            username=username, defaults={"password": hashed, "email": f"{username}@example.com", "first_name": username}
        )
        if not created:
            continue
        user.groups.add(groups[role])
        if slug:
            BranchMembership.objects.create(user=user, branch=branches[slug])
        profile = UserProfile.get_for_user(user)
        profile.preferred_language = "en"
        profile.save()


def set_up(args):
    from django.core.management import call_command
    from django.db import connection

    started = time.perf_counter()
    log(f"database {database_config()['NAME']}: creating, migrating")
    create_database()
    call_command("migrate", verbosity=0, interactive=False)
    log("loading the demo data")
    call_command("load_demo_data", language="en", stdout=open(os.devnull, "w"))
    log(f"adding {args.customers:,} customers with appointments")
    generate_customers(args.customers, random.Random(SEED))
    create_users(args.users)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")
    connection.close()
    seconds = time.perf_counter() - started
    log(f"setup done in {seconds:.0f} s")
    return round(seconds, 1)


# --- The plan: who edits what, what is searched and booked ---------------------------------------


def local_phone(e164):
    """``+491701234567`` as typed at a German front desk: ``0170 1234567``."""
    national = e164[3:]
    return f"0{national[:3]} {national[3:]}"


def make_plan(users, rng):
    """What the simulated users work on, read from the database before the run."""
    from django.utils import timezone

    from wagtail_clientdb import overrides
    from wagtail_clientdb.models import BookingPage, Branch, Customer, Service

    branches = {branch.slug: branch for branch in Branch.objects.all()}
    rows = list(
        Customer.objects.order_by("pk").values_list("pk", "email", "phone", "home_branch_id", "shared_with_all_branches")
    )
    shared_with = {}
    for customer_id, branch_id in Customer.branches.through.objects.values_list("customer_id", "branch_id"):
        shared_with.setdefault(customer_id, set()).add(branch_id)
    email_counts = {}
    for _pk, email, *_rest in rows:
        if email:
            email_counts[email] = email_counts.get(email, 0) + 1

    def sees(branch, row):
        pk, _email, _phone, home, everywhere = row
        return home == branch.pk if home else everywhere or branch.pk in shared_with.get(pk, ())

    visible = {slug: [row for row in rows if sees(branch, row)] for slug, branch in branches.items()}
    local = {slug: [row for row in rows if row[3] == branch.pk] for slug, branch in branches.items()}
    # A stored number that cannot be read must be corrected before the form saves: such
    # customers (2 % of them) are left out of the edit lists.
    taken = set(Customer.objects.exclude(phone_raw="").filter(phone="").values_list("pk", flat=True))

    def draw(pool, count):
        picked = []
        for row in rng.sample(pool, min(len(pool), count * 3)):
            if row[0] not in taken and len(picked) < count:
                taken.add(row[0])
                picked.append(row[0])
        return picked

    # The contended customers: one local customer of each branch.
    contended = {slug: draw(local[slug], 1)[0] for slug in BRANCH_SLUGS}
    plan_users = []
    for index in range(users):
        role, slug = role_of(index)
        if role == "manager":
            own = draw(rows, OWN_CUSTOMERS)
            contended_ids = list(contended.values())
        else:
            # Half the branch's own local customers (edited as they are), half shared ones
            # (edited as the branch's local values).
            own = draw(local[slug], OWN_CUSTOMERS // 2)
            own += draw([row for row in visible[slug] if not row[3]], OWN_CUSTOMERS - len(own))
            contended_ids = [contended[slug]]
        pool = rows if role == "manager" else visible[slug]
        plan_users.append(
            {
                "index": index,
                "username": username_of(index),
                "role": role,
                "branch": slug,
                "own": own,
                "contended": contended_ids,
                "inspect": [row[0] for row in rng.sample(pool, min(len(pool), 200))],
                "emails": [row[1] for row in rng.sample(pool, min(len(pool), 200)) if row[1]],
                "phones": [local_phone(row[2]) for row in rng.sample(pool, min(len(pool), 200)) if row[2].startswith("+491")],
            }
        )
    # Returning visitors: customers of the managers' own lists that every branch sees (so a
    # booking may meet an edit), and the contended ones, each at its branch's page.
    manager_own = {pk for user in plan_users if user["role"] == "manager" for pk in user["own"]}
    by_pk = {row[0]: row for row in rows}
    returning = [
        {"customer": pk, "email": by_pk[pk][1], "branches": list(BRANCH_SLUGS)}
        for pk in sorted(manager_own)
        if by_pk[pk][4] and by_pk[pk][1] and email_counts[by_pk[pk][1]] == 1
    ]
    returning += [
        {"customer": pk, "email": by_pk[pk][1], "branches": [slug]}
        for slug, pk in contended.items()
        if by_pk[pk][1] and email_counts[by_pk[pk][1]] == 1
    ]
    names = {pk: (first, last) for pk, first, last in Customer.objects.filter(pk__in=[r["customer"] for r in returning]).values_list("pk", "first_name", "last_name")}
    for visitor in returning:
        visitor["first_name"], visitor["last_name"] = names[visitor["customer"]]
    # What each returning visitor's branches see of them now: a booking whose questions they
    # leave unanswered (as they do here) must change none of it.
    for visitor in returning:
        customer = Customer.objects.get(pk=visitor["customer"])
        visitor["attributes_before"] = {
            slug: overrides.effective_customer(customer, branches[slug]).attributes for slug in visitor["branches"]
        }
    pages = {page.branch.slug: page.url for page in BookingPage.objects.live().select_related("branch")}
    services = list(Service.objects.order_by("pk").values_list("pk", flat=True))
    # The notes of the contended customers now: where their chain of saves starts (a token
    # when the database was kept from an earlier run).
    chain_roots = {}
    for pk, notes in Customer.objects.filter(pk__in=contended.values()).values_list("pk", "notes"):
        found = TOKEN_PATTERN.fullmatch(notes)
        chain_roots[str(pk)] = found.group(1) if found else None
    highest = Customer.objects.filter(phone__startswith="+49178").order_by("-phone").values_list("phone", flat=True).first()
    return {
        "phone_base": int(highest[-8:]) + 1 if highest else 10_000_000,
        "users": plan_users,
        "contended": contended,
        "returning": returning,
        "pages": pages,
        "services": services,
        "last_names": sorted({name for name in Customer.objects.values_list("last_name", flat=True).distinct() if len(name) >= 4}),
        "today": timezone.localdate().isoformat(),
        "chain_roots": chain_roots,
        "started_at": timezone.now().isoformat(),
    }


# --- The server ---------------------------------------------------------------------------------------


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


#: gunicorn's access log: the kind of request (a header the load client sends), the status,
#: and the time the server took to handle it in microseconds (without the wait for a free thread).
ACCESS_LOG_FORMAT = "%({x-load-kind}i)s\t%(s)s\t%(D)s"


def server_times(access_log):
    """Seconds the server took per request, by kind (gunicorn's access log)."""
    times = {}
    with contextlib.suppress(OSError):
        with open(access_log, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                parts = line.rstrip("\n").split("\t")
                if len(parts) == 3 and parts[2].isdigit():
                    times.setdefault(parts[0], []).append(int(parts[2]) / 1e6)
    return times


def start_server(args, port, media_root, access_log):
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
        "PYTHONPATH": os.pathsep.join([REPO_ROOT, EXAMPLE_SITE, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        "LOAD_MEDIA_ROOT": media_root,
    }
    command = [
        sys.executable, "-m", "gunicorn", "example_site.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(args.workers),
        "--threads", str(args.threads),
        "--worker-class", "gthread",
        # Idle connections stay open between a user's pages (longer than the longest pause).
        "--keep-alive", "30",
        "--timeout", "120",
        "--no-control-socket",
        "--error-logfile", "-",
        "--access-logfile", access_log,
        "--access-logformat", ACCESS_LOG_FORMAT,
    ]
    log_file = open(SERVER_LOG, "w")
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    import httpx

    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {process.returncode}; see {SERVER_LOG}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=5).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    stop_server(process)
    raise RuntimeError(f"gunicorn did not answer within 60 s; see {SERVER_LOG}")


def stop_server(process):
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)  # graceful: workers finish their requests
    try:
        process.wait(timeout=40)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


# --- CPU accounting -----------------------------------------------------------------------------------


def _proc_cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _processes():
    """(pid, name, parent pid) of every process."""
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as handle:
                    text = handle.read()
                name = text[text.index("(") + 1 : text.rindex(")")]
                parent = int(text.rsplit(")", 1)[1].split()[1])
                yield int(entry), name, parent
            except (OSError, ValueError):
                continue


def _is_backend_of(pid, database):
    """Whether PostgreSQL process ``pid`` serves a connection to ``database`` (its process
    title: ``postgres: 15/main: USER DATABASE HOST(PORT) STATE``)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            title = handle.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    return f" {database} " in title


class CpuMeter:
    """CPU seconds between ``start`` and ``stop``: of gunicorn (master and workers), of the
    PostgreSQL connections to the load test's database (other databases on the same server
    are other people's work), of this process, and the share of the whole machine that was
    busy. Processes are sampled every second, so that one's time counts even after it exits."""

    def __init__(self, server_pid, database):
        self.server_pid = server_pid
        self.database = database
        self.seen = {}  # pid → (group, first cpu, last cpu)
        self.backends = {}  # pid → whether it serves the load test's database

    @staticmethod
    def _machine():
        with open("/proc/stat") as handle:
            values = [int(v) for v in handle.readline().split()[1:]]
        idle = values[3] + values[4]
        return sum(values), idle

    def _sample(self):
        for pid, name, parent in _processes():
            group = None
            if pid == self.server_pid or parent == self.server_pid:
                group = "gunicorn"
            elif name == "postgres":
                # A new connection has its title set only after a moment: a "no" is asked again.
                if not self.backends.get(pid):
                    self.backends[pid] = _is_backend_of(pid, self.database)
                group = "postgres" if self.backends[pid] else None
            if group:
                cpu = _proc_cpu_seconds(pid)
                first = self.seen.get(pid, (group, cpu, cpu))[1]
                self.seen[pid] = (group, first, cpu)

    def start(self):
        self._sample()
        self.machine_before = self._machine()
        self.self_before = resource.getrusage(resource.RUSAGE_SELF)
        self.wall_before = time.perf_counter()

    async def sample_every_second(self, until):
        while time.monotonic() < until:
            self._sample()
            await asyncio.sleep(1)

    def stop(self):
        self._sample()
        total, idle = self._machine()
        wall = time.perf_counter() - self.wall_before
        usage = resource.getrusage(resource.RUSAGE_SELF)
        busy = 1 - (idle - self.machine_before[1]) / max(1, total - self.machine_before[0])
        by_group = {}
        for group, first, last in self.seen.values():
            by_group[group] = by_group.get(group, 0.0) + (last - first)
        client = (usage.ru_utime - self.self_before.ru_utime) + (usage.ru_stime - self.self_before.ru_stime)
        return {
            "wall_seconds": round(wall, 1),
            "machine_busy_share": round(busy, 3),
            "cpu_seconds": {
                "gunicorn": round(by_group.get("gunicorn", 0.0), 1),
                "postgresql_connections": round(by_group.get("postgres", 0.0), 1),
                "load_client": round(client, 1),
            },
            "cores_used": {
                "gunicorn": round(by_group.get("gunicorn", 0.0) / wall, 2),
                "postgresql_connections": round(by_group.get("postgres", 0.0) / wall, 2),
                "load_client": round(client / wall, 2),
                "machine": round(busy * (os.cpu_count() or 1), 2),
                # Everything else that ran (other people's work on a shared machine, PostgreSQL's
                # own background processes, the kernel).
                "other": round(
                    busy * (os.cpu_count() or 1) - (by_group.get("gunicorn", 0.0) + by_group.get("postgres", 0.0) + client) / wall, 2
                ),
            },
        }


# --- The load -----------------------------------------------------------------------------------------


class Stop(Exception):
    """The run's time is up."""


class Clock:
    """The two phases of a run: every user logs in, then all work until ``deadline``."""

    def __init__(self, users):
        self.users = users
        self.logins_done = 0  # logged in, or refused
        self.all_logged_in = asyncio.Event()
        self.go = asyncio.Event()
        self.deadline = math.inf

    def login_done(self):
        self.logins_done += 1
        if self.logins_done == self.users:
            self.all_logged_in.set()

    def start(self, duration):
        self.deadline = time.monotonic() + duration
        self.go.set()


class Stats:
    def __init__(self):
        self.times = {kind: [] for kind in KINDS}
        self.statuses = {kind: {} for kind in KINDS}
        self.server_errors = {kind: 0 for kind in KINDS}
        self.failed = {kind: 0 for kind in KINDS}  # no response, or an unexpected one
        self.client_errors = 0  # exceptions in this script
        self.samples = []  # the first few problems, for the report
        self.outcomes = {
            "logins": 0,
            "saves_accepted": 0,
            "saves_stale": 0,
            "saves_refused_other": 0,
            "saves_unknown": 0,
            "bookings_confirmed": 0,
            "bookings_slot_taken": 0,
            "bookings_refused_other": 0,
            "bookings_unknown": 0,
            "bookings_no_free_time": 0,
        }
        self.loop_lag = []

    def record(self, kind, status, seconds):
        self.times[kind].append(seconds)
        self.statuses[kind][status] = self.statuses[kind].get(status, 0) + 1

    def problem(self, kind, what, url, detail=""):
        if len(self.samples) < 40:
            self.samples.append({"kind": kind, "what": what, "url": url, "detail": detail[:2000]})


def percentile(values, share):
    """The nearest-rank percentile."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


class UnexpectedResponse(Exception):
    pass


_TLS_CONTEXT = []


def shared_tls_context():
    if not _TLS_CONTEXT:
        import ssl

        _TLS_CONTEXT.append(ssl.create_default_context())
    return _TLS_CONTEXT[0]


class SimulatedUser:
    def __init__(self, plan_user, plan, base_url, stats, clock, think, rng, run_id):
        import httpx

        self.me = plan_user
        self.plan = plan
        self.stats = stats
        self.clock = clock
        self.think_range = think
        self.rng = rng
        self.run_id = run_id
        limits = httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=20)
        options = {
            "base_url": base_url, "timeout": REQUEST_TIMEOUT, "limits": limits, "follow_redirects": False,
            # Plain HTTP to 127.0.0.1: one TLS context for all clients instead of one each (loading
            # the CA bundle takes tens of milliseconds, and would stall the event loop).
            "verify": shared_tls_context(),
        }
        self.admin = httpx.AsyncClient(**options)
        self.visitor = None  # a client without the admin session, its cookies cleared for each booking
        self.visitor_options = options
        self.saves = []  # [customer id, token, shown token, outcome]
        self.bookings = []  # {"token", "outcome", "email", "customer", "branch"}
        self.sequence = 0

    async def close(self):
        await self.admin.aclose()
        if self.visitor is not None:
            await self.visitor.aclose()

    # -- helpers --

    async def pause(self, low=None, high=None):
        low, high = (self.think_range if low is None else (low, high))
        seconds = self.rng.uniform(low, high)
        left = self.clock.deadline - time.monotonic()
        if seconds >= left:
            await asyncio.sleep(max(0.0, left))
            raise Stop
        await asyncio.sleep(seconds)

    async def request(self, kind, method, url, *, client=None, expect=(200,), **kwargs):
        """One request, timed to the last byte of the response; a 5xx or a status not in
        ``expect`` is counted and raises :class:`UnexpectedResponse`, as does no response."""
        import httpx

        client = client or self.admin
        kwargs["headers"] = {"X-Load-Kind": kind, **kwargs.get("headers", {})}  # for the server's log
        started = time.perf_counter()
        try:
            response = await client.request(method, url, **kwargs)
        except httpx.HTTPError as error:
            self.stats.failed[kind] += 1
            self.stats.record(kind, "no response", time.perf_counter() - started)
            self.stats.problem(kind, f"no response: {type(error).__name__}: {error}", url)
            raise UnexpectedResponse from error
        seconds = time.perf_counter() - started
        self.stats.record(kind, response.status_code, seconds)
        if response.status_code >= 500:
            self.stats.server_errors[kind] += 1
            self.stats.problem(kind, f"server error {response.status_code}", url, response.text)
            raise UnexpectedResponse
        if response.status_code not in expect:
            self.stats.failed[kind] += 1
            self.stats.problem(kind, f"unexpected {response.status_code}", url, response.headers.get("location", "") + "\n" + response.text)
            raise UnexpectedResponse
        return response

    def csrf_header(self, client=None):
        token = (client or self.admin).cookies.get("csrftoken")
        return {"X-CSRFToken": token} if token else {}

    # -- the session --

    async def run(self, start_delay):
        """Log in at ``start_delay`` (the login phase), then work from the clock's start until its deadline."""
        await asyncio.sleep(start_delay)
        try:
            try:
                await self.log_in()
            except UnexpectedResponse:
                return  # counted; this user cannot work
            finally:
                self.clock.login_done()
            await self.clock.go.wait()
            await self.pause(0, self.think_range[1])  # not all at once
            tasks, weights = zip(*TASKS)
            while time.monotonic() < self.clock.deadline:
                task = self.rng.choices(tasks, weights=weights)[0]
                try:
                    await getattr(self, f"task_{task}")()
                except UnexpectedResponse:
                    await self.pause()  # counted; the user carries on with something else
                except (Stop, asyncio.CancelledError):
                    raise
                except Exception as error:  # a mistake of this script, not of the server: shown, and the run fails
                    self.stats.client_errors += 1
                    self.stats.problem(task, f"load client error: {type(error).__name__}: {error}", "", traceback.format_exc())
                    await self.pause()
        except Stop:
            pass
        finally:
            await self.close()

    async def log_in(self):
        page = await self.request("login form", "GET", f"{ADMIN}login/")
        await asyncio.sleep(self.rng.uniform(1, 3))  # typing
        response = await self.request(
            "login", "POST", f"{ADMIN}login/", expect=(302,),
            data={"csrfmiddlewaretoken": csrf_from(page.text), "username": self.me["username"], "password": PASSWORD, "next": ADMIN},
        )
        if response.headers.get("location") != ADMIN:
            self.stats.failed["login"] += 1
            self.stats.problem("login", "login refused", f"{ADMIN}login/", response.headers.get("location", ""))
            raise UnexpectedResponse
        self.stats.outcomes["logins"] += 1

    async def task_dashboard(self):
        await self.request("dashboard", "GET", ADMIN)
        await self.pause()

    async def task_listing(self):
        roll = self.rng.random()
        if roll < 0.5:
            await self.request("listing", "GET", CUSTOMERS)
        elif roll < 0.8:
            await self.request("listing, later page", "GET", CUSTOMERS, params={"p": self.rng.randint(2, 50)})
        else:
            await self.request("listing, most bookings", "GET", CUSTOMERS, params={"ordering": "-bookings_count"})
        await self.pause()

    async def task_search(self):
        """What the listing's search box fetches as one types (the results part of the listing)."""
        roll = self.rng.random()
        if roll < 0.5 or not self.me["emails"]:
            name = self.rng.choice(self.plan["last_names"])
            start = self.rng.randint(0, max(0, len(name) - 4))
            kind, query = "search: name fragment", name[start : start + self.rng.randint(3, 5)]
        elif roll < 0.75 or not self.me["phones"]:
            kind, query = "search: email", self.rng.choice(self.me["emails"])
        else:
            kind, query = "search: phone, local form", self.rng.choice(self.me["phones"])
        await self.request(kind, "GET", f"{CUSTOMERS}results/", params={"q": query})
        await self.pause()

    async def task_inspect(self):
        customer = self.rng.choice(self.me["inspect"] + self.me["own"])
        await self.request("inspect", "GET", f"{CUSTOMERS}inspect/{customer}/")
        await self.pause()

    async def task_edit(self):
        contended = self.rng.random() < CONTENDED_SHARE or not self.me["own"]  # (a small database)
        customer = self.rng.choice(self.me["contended"] if contended else self.me["own"])
        url = f"{CUSTOMERS}edit/{customer}/"
        page = await self.request("edit form", "GET", url)
        forms = parse_forms(page.text)
        form = find_form(forms, lambda attrs: attrs.get("id") == "w-editor-form")
        session = find_form(forms, lambda attrs: "w-editing-sessions" in attrs.get("class", ""))
        if form is None or form.control("notes") is None:
            self.stats.failed["edit form"] += 1
            self.stats.problem("edit form", "no edit form with notes", url, page.text[:2000])
            raise UnexpectedResponse
        shown = TOKEN_PATTERN.search(form.value("notes") or "")
        ping_url = release_url = None
        if session is not None:
            match = re.search(r'data-w-swap-src-value="([^"]+)"', page.text)
            release = re.search(r'data-w-action-url-value="([^"]+)"', page.text)
            ping_url, release_url = (match.group(1) if match else None), (release.group(1) if release else None)
        if ping_url:
            # Wagtail's page pings as soon as it is shown, then every 10 seconds.
            await self.request("edit: session ping", "POST", ping_url, headers=self.csrf_header(), data={"is_editing": "1"})
        await self.pause(2, 6)  # typing
        self.sequence += 1
        token = f"{self.run_id}-u{self.me['index']:02d}-{self.sequence:04d}"
        record = [customer, token, shown.group(1) if shown else None, "unknown"]
        self.saves.append(record)
        try:
            response = await self.request(
                "edit: save", "POST", url, expect=(200, 302),
                **encoded(form.submission({"notes": f"{NOTES_PREFIX}{token}"})),
            )
        except UnexpectedResponse:
            self.stats.outcomes["saves_unknown"] += 1
            raise
        if response.status_code == 302:
            record[3] = "accepted"
            self.stats.outcomes["saves_accepted"] += 1
            if release_url:
                await self.request("edit: session release", "POST", release_url, headers=self.csrf_header(), data={})
            await self.request("listing", "GET", response.headers["location"])
        elif STALE_TEXT in response.text:
            record[3] = "stale"
            self.stats.outcomes["saves_stale"] += 1
        else:
            record[3] = "refused"
            self.stats.outcomes["saves_refused_other"] += 1
            errors = re.findall(r'class="error-message"[^>]*>\s*(?:<[^>]+>\s*)*([^<]+)', response.text)
            self.stats.problem("edit: save", "form refused", url, " | ".join(e.strip() for e in errors) or response.text[:2000])
        await self.pause()

    async def task_book(self):
        import httpx

        if self.visitor is None:
            self.visitor = httpx.AsyncClient(**self.visitor_options)
        self.visitor.cookies.clear()  # a new visitor
        returning = self.rng.random() < RETURNING_SHARE and self.plan["returning"]
        if returning:
            person = self.rng.choice(self.plan["returning"])
            slug = self.rng.choice(person["branches"])
            details = {"first_name": person["first_name"], "last_name": person["last_name"], "email": person["email"], "phone": ""}
        else:
            from demo.management.commands.load_demo_data import FIRST_NAMES, LAST_NAMES

            person = None
            slug = self.rng.choice(BRANCH_SLUGS)
            self.sequence += 1
            number = f"{self.me['index']:02d}{self.sequence:04d}"
            details = {
                "first_name": self.rng.choice(FIRST_NAMES),
                "last_name": self.rng.choice(LAST_NAMES),
                "email": f"visitor-{self.run_id}-{number}@example.net",
                # 0178 is not among the generated customers' prefixes, and the numbers go on from
                # the highest one stored: nobody else has the number (the identity rule would find them).
                "phone": f"0178 {self.plan['phone_base'] + self.me['index'] * 10_000 + self.sequence:08d}"
                if self.rng.random() < 0.5 else "",
            }
        page_url = self.plan["pages"][slug]
        await self.request("booking page", "GET", page_url, client=self.visitor)
        await self.pause()
        today = datetime.date.fromisoformat(self.plan["today"])
        day = today + datetime.timedelta(days=self.rng.randint(1, 60))
        service = self.rng.choice(self.plan["services"])
        form = None
        for _attempt in range(3):  # a Sunday or a full day: the next day
            page = await self.request(
                "booking: free times", "GET", page_url, client=self.visitor, params={"service": service, "date": day.isoformat()}
            )
            form = find_form(parse_forms(page.text), lambda attrs: "data-clientdb-book" in attrs)
            if form is not None and form.choices("start"):
                break
            form = None
            day += datetime.timedelta(days=1)
            await self.pause(0.5, 1.5)
        if form is None:
            self.stats.outcomes["bookings_no_free_time"] += 1
            await self.pause()
            return
        await self.pause(3, 8)  # filling in the form
        token = form.value("token")
        changes = {**details, "start": self.rng.choice(form.choices("start"))}
        if not returning and self.rng.random() < 0.5:
            changes["attr__hair_type"] = self.rng.choice([v for v in form.choices("attr__hair_type") if v] or [""])
        record = {"token": token, "outcome": "unknown", "email": details["email"], "branch": slug,
                  "customer": person["customer"] if person else None}
        self.bookings.append(record)
        try:
            response = await self.request(
                "booking: book", "POST", form.action or page_url, client=self.visitor, expect=(302, 400),
                **encoded(form.submission(changes)),
            )
        except UnexpectedResponse:
            self.stats.outcomes["bookings_unknown"] += 1
            raise
        if response.status_code == 302 and "/booked/" in response.headers.get("location", ""):
            record["outcome"] = "confirmed"
            self.stats.outcomes["bookings_confirmed"] += 1
            await self.request("booking: confirmation", "GET", response.headers["location"], client=self.visitor)
        elif response.status_code == 400 and SLOT_TAKEN_TEXT in response.text:
            record["outcome"] = "slot taken"
            self.stats.outcomes["bookings_slot_taken"] += 1
        else:
            record["outcome"] = "refused"
            self.stats.outcomes["bookings_refused_other"] += 1
            errors = re.findall(r'class="errorlist[^"]*"[^>]*>(.*?)</ul>', response.text, re.S)
            self.stats.problem("booking: book", f"booking refused ({response.status_code})", page_url,
                               " | ".join(re.sub(r"<[^>]+>", " ", e).strip() for e in errors) or response.text[:2000])
        await self.pause()


async def watch_loop_lag(stats, until):
    """How late the event loop wakes up: a late wake-up would add to the measured times."""
    while time.monotonic() < until:
        before = time.monotonic()
        await asyncio.sleep(0.1)
        stats.loop_lag.append(time.monotonic() - before - 0.1)


async def run_load(args, plan, base_url, meter):
    stats = Stats()
    # In every token this run sends (notes, visitors' emails): unlike the users' choices,
    # which repeat from run to run, it differs, so that a kept database (--reuse) is checked too.
    run_id = secrets.token_hex(3)
    clock = Clock(len(plan["users"]))
    users = [
        SimulatedUser(plan_user, plan, base_url, stats, clock, args.think, random.Random(SEED + 100 + plan_user["index"]), run_id)
        for plan_user in plan["users"]
    ]
    spacing = args.ramp / max(1, len(users))
    running = asyncio.gather(*(user.run(i * spacing) for i, user in enumerate(users)))
    # The measured load starts when every user has logged in (or been refused).
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(clock.all_logged_in.wait(), timeout=args.ramp + 2 * REQUEST_TIMEOUT)
    log(f"logged in: {stats.outcomes['logins']} of {len(users)}; measuring for {args.duration:.0f} s")
    meter.start()
    started = time.monotonic()
    clock.start(args.duration)
    sampler = asyncio.create_task(meter.sample_every_second(clock.deadline))
    lag = asyncio.create_task(watch_loop_lag(stats, clock.deadline))
    # Bounded: after the deadline only requests already sent may finish (each within REQUEST_TIMEOUT).
    await asyncio.wait_for(running, timeout=args.duration + 3 * REQUEST_TIMEOUT)
    await sampler
    await lag
    return stats, users, time.monotonic() - started


# --- The checks after the run --------------------------------------------------------------------------


def check_writes(plan, users):
    """Lost writes: saves and bookings the server accepted that are not in the database."""
    from django.db.models import Count
    from django.utils.dateparse import parse_datetime

    from wagtail_clientdb import overrides
    from wagtail_clientdb.models import Appointment, AppointmentStatus, Branch, BranchBookings, Customer

    branches = {branch.slug: branch for branch in Branch.objects.all()}
    report = {"own_customers_checked": 0, "own_lost": [], "own_unsettled": 0, "contended": {}, "contended_lost": []}

    def stored_notes(user, customer_id):
        branch = branches[user.me["branch"]] if user.me["role"] == "staff" else None
        return overrides.effective_customer(Customer.objects.get(pk=customer_id), branch).value("notes")

    contended_ids = set(plan["contended"].values())
    for user in users:
        by_customer = {}
        for customer_id, token, shown, outcome in user.saves:
            if customer_id not in contended_ids:
                by_customer.setdefault(customer_id, []).append((token, outcome))
        for customer_id, saves in by_customer.items():
            accepted = [token for token, outcome in saves if outcome == "accepted"]
            if not accepted:
                continue
            report["own_customers_checked"] += 1
            stored = stored_notes(user, customer_id)
            expected = f"{NOTES_PREFIX}{accepted[-1]}"
            if stored == expected:
                continue
            # A save without an answer (a timeout) after the last accepted one may have been stored.
            last_accepted = max(i for i, (_t, o) in enumerate(saves) if o == "accepted")
            unsettled = {f"{NOTES_PREFIX}{t}" for t, o in saves[last_accepted + 1 :] if o == "unknown"}
            if stored in unsettled:
                report["own_unsettled"] += 1
            else:
                report["own_lost"].append({"user": user.me["username"], "customer": customer_id, "expected": expected, "stored": stored})

    # The contended customers: the accepted saves form one chain, the last one stored.
    for slug, customer_id in plan["contended"].items():
        saves = [(token, shown) for user in users for c, token, shown, outcome in user.saves if c == customer_id and outcome == "accepted"]
        stale = sum(1 for user in users for c, _t, _s, outcome in user.saves if c == customer_id and outcome == "stale")
        unknown = {token for user in users for c, token, _s, outcome in user.saves if c == customer_id and outcome == "unknown"}
        stored = Customer.objects.filter(pk=customer_id).values_list("notes", flat=True).first() or ""
        match = TOKEN_PATTERN.fullmatch(stored)
        stored_token = match.group(1) if match else None
        successors = {}
        for token, shown in saves:
            successors.setdefault(shown, []).append(token)
        root = plan["chain_roots"][str(customer_id)]
        chain, at = [], root
        while len(successors.get(at, [])) == 1 and len(chain) <= len(saves):
            at = successors[at][0]
            chain.append(at)
        forks = {str(base): tokens for base, tokens in successors.items() if len(tokens) > 1}
        complete = len(chain) == len(saves) and not forks
        tail_ok = (not saves and stored_token == root) or (chain and stored_token == chain[-1]) or stored_token in unknown
        report["contended"][slug] = {
            "customer": customer_id, "accepted": len(saves), "stale": stale, "chain": len(chain), "stored": stored_token,
        }
        if not complete or not tail_ok:
            report["contended_lost"].append({"branch": slug, "customer": customer_id, "forks": forks, "chain": chain, "stored": stored_token})

    # Bookings: every confirmed one stored, with its customer; no other online booking made.
    started = parse_datetime(plan["started_at"])
    bookings = [booking for user in users for booking in user.bookings]
    confirmed = {b["token"]: b for b in bookings if b["outcome"] == "confirmed"}
    unknown = {b["token"] for b in bookings if b["outcome"] == "unknown"}
    stored = {
        token: (customer_id, email)
        for token, customer_id, email in Appointment.objects.filter(booking_token__isnull=False, created_at__gte=started)
        .values_list("booking_token", "customer_id", "customer__email")
    }
    missing = sorted(set(confirmed) - set(stored))
    extra = sorted(set(stored) - set(confirmed) - unknown)
    wrong_customer = [
        {"token": token, "expected": b["customer"] or b["email"], "stored": stored[token]}
        for token, b in confirmed.items()
        if token in stored and (stored[token][0] != b["customer"] if b["customer"] else stored[token][1] != b["email"])
    ]
    # A returning visitor who answered nothing changed nothing of what the branch knows of them.
    visitors = {visitor["customer"]: visitor for visitor in plan["returning"]}
    changed_by_booking = []
    for customer_id, slug in sorted({(b["customer"], b["branch"]) for b in confirmed.values() if b["customer"]}):
        before = visitors[customer_id]["attributes_before"][slug]
        after = overrides.effective_customer(Customer.objects.get(pk=customer_id), branches[slug]).attributes
        if after != before:
            changed_by_booking.append({"customer": customer_id, "branch": slug, "before": before, "after": after})
    report["changed_by_booking"] = changed_by_booking
    # The kept booking counts against a recount of the appointments.
    counted = dict(
        Appointment.objects.exclude(status=AppointmentStatus.CANCELLED).exclude(customer=None)
        .values_list("customer_id").annotate(n=Count("pk")).values_list("customer_id", "n")
    )
    wrong_totals = [
        {"customer": pk, "stored": total, "appointments": counted.get(pk, 0)}
        for pk, total in Customer.objects.values_list("pk", "bookings_total")
        if total != counted.get(pk, 0)
    ]
    per_branch = {
        (c, b): n
        for c, b, n in Appointment.objects.exclude(status=AppointmentStatus.CANCELLED).exclude(customer=None)
        .values_list("customer_id", "branch_id").annotate(n=Count("pk")).values_list("customer_id", "branch_id", "n")
    }
    kept = {(c, b): n for c, b, n in BranchBookings.objects.values_list("customer_id", "branch_id", "count")}
    wrong_branch_counts = sorted(set(per_branch.items()) ^ set(kept.items()))
    report["bookings"] = {
        "confirmed": len(confirmed),
        "stored": len(stored),
        "missing": missing,
        "unexplained_extra": extra,
        "unsettled": len(set(stored) & unknown),
        "wrong_customer": wrong_customer,
    }
    report["booking_counts"] = {"wrong_totals": wrong_totals[:50], "wrong_totals_count": len(wrong_totals),
                                "wrong_branch_counts": len(wrong_branch_counts)}
    report["lost_writes"] = (
        len(report["own_lost"]) + len(report["contended_lost"]) + len(missing) + len(wrong_customer)
        + len(wrong_totals) + len(wrong_branch_counts)
    )
    return report


# --- The report ---------------------------------------------------------------------------------------


LOGIN_KINDS = ("login form", "login")


def summarise(stats, seconds, served):
    """Rows per kind of request (the login phase's apart) and the totals of the measured load;
    ``served``: the server's own times by kind (:func:`server_times`)."""
    rows, login_rows = [], []
    for kind in KINDS:
        times = stats.times[kind]
        if not times:
            continue
        (login_rows if kind in LOGIN_KINDS else rows).append(
            {
                "kind": kind,
                "requests": len(times),
                "p50_ms": round(percentile(times, 0.5) * 1000),
                "p95_ms": round(percentile(times, 0.95) * 1000),
                "max_ms": round(max(times) * 1000),
                "server_p50_ms": round(percentile(served[kind], 0.5) * 1000) if served.get(kind) else None,
                "server_p95_ms": round(percentile(served[kind], 0.95) * 1000) if served.get(kind) else None,
                "server_errors": stats.server_errors[kind],
                "failed": stats.failed[kind],
                "statuses": {str(k): v for k, v in sorted(stats.statuses[kind].items(), key=str)},
            }
        )
    every = [t for kind, times in stats.times.items() if kind not in LOGIN_KINDS for t in times]
    every_served = [t for kind, times in served.items() if kind in KINDS and kind not in LOGIN_KINDS for t in times]
    total = {
        "requests": len(every),
        "per_second": round(len(every) / seconds, 1),
        "p50_ms": round(percentile(every, 0.5) * 1000) if every else None,
        "p95_ms": round(percentile(every, 0.95) * 1000) if every else None,
        "max_ms": round(max(every) * 1000) if every else None,
        "server_p50_ms": round(percentile(every_served, 0.5) * 1000) if every_served else None,
        "server_p95_ms": round(percentile(every_served, 0.95) * 1000) if every_served else None,
        # Errors of the login phase count too.
        "server_errors": sum(stats.server_errors.values()),
        "failed": sum(stats.failed.values()),
    }
    return rows, login_rows, total


def print_report(rows, login_rows, total, stats, writes, cpu):
    def line(label, row):
        served = f"{row['server_p50_ms'] if row['server_p50_ms'] is not None else '-':>7} " \
                 f"{row['server_p95_ms'] if row['server_p95_ms'] is not None else '-':>7}"
        print(f"{label:<28} {row['requests']:>8} {row['p50_ms']:>7} {row['p95_ms']:>7} {row['max_ms']:>7} {served} "
              f"{row['server_errors']:>5} {row['failed']:>6}")

    print()
    print(f"{'':<28} {'':>8} {'as the users waited':>23} {'in the server':>15}")
    print(f"{'page':<28} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'p50 ms':>7} {'p95 ms':>7} "
          f"{'5xx':>5} {'failed':>6}")
    for row in rows:
        line(row["kind"], row)
    line("all requests (login apart)", total)
    print("before the load:")
    for row in login_rows:
        line(row["kind"], row)
    print()
    o = stats.outcomes
    print(f"{total['per_second']} requests/s; logins {o['logins']}; saves accepted {o['saves_accepted']}, "
          f"refused as stale {o['saves_stale']}, refused otherwise {o['saves_refused_other']}, no answer {o['saves_unknown']}; "
          f"bookings confirmed {o['bookings_confirmed']}, time taken meanwhile {o['bookings_slot_taken']}, "
          f"refused otherwise {o['bookings_refused_other']}, no answer {o['bookings_unknown']}, "
          f"no free time found {o['bookings_no_free_time']}")
    print(f"lost writes: {writes['lost_writes']} (own customers checked {writes['own_customers_checked']}, "
          f"contended {json.dumps(writes['contended'])}, bookings {writes['bookings']['confirmed']} confirmed / "
          f"{writes['bookings']['stored']} stored, booking counts wrong {writes['booking_counts']['wrong_totals_count']})")
    if writes["changed_by_booking"]:
        print(f"CHANGED BY A BOOKING THAT ANSWERED NOTHING: {len(writes['changed_by_booking'])} customers, "
              f"e.g. {json.dumps(writes['changed_by_booking'][0], default=str)}")
    if stats.client_errors:
        print(f"ERRORS OF THE LOAD CLIENT ITSELF: {stats.client_errors} (see problems in the results file)")
    lag = sorted(stats.loop_lag)
    if lag:
        print(f"client event loop lag: p50 {percentile(lag, 0.5) * 1000:.1f} ms, p99 {percentile(lag, 0.99) * 1000:.1f} ms, "
              f"max {lag[-1] * 1000:.0f} ms")
    print(f"CPU: {json.dumps(cpu['cores_used'])} cores (machine busy {cpu['machine_busy_share']:.0%})")
    print()


def machine_facts():
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    packages = {}
    for name in ("Django", "wagtail", "gunicorn", "httpx", "psycopg"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "?"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        postgresql = cursor.fetchone()[0]
    return {"nproc": os.cpu_count(), "cpu": cpu, "python": platform.python_version(), "packages": packages,
            "postgresql": postgresql, "loadavg_before": [round(x, 2) for x in os.getloadavg()]}


def commit_facts():
    try:
        commit = subprocess.run(["git", "-C", REPO_ROOT, "rev-parse", "HEAD"], capture_output=True, check=True, text=True).stdout.strip()
        changed = subprocess.run(
            ["git", "-C", REPO_ROOT, "status", "--porcelain", "--", "wagtail_clientdb", "example_site"],
            capture_output=True, check=True, text=True,
        ).stdout.split("\n")
        return {"commit": commit, "uncommitted_changes": [line for line in changed if line.strip()]}
    except (OSError, subprocess.CalledProcessError) as error:
        return {"git_error": str(error)}


# --- Main ---------------------------------------------------------------------------------------------


def think_range(text):
    try:
        low, high = (float(part) for part in text.split("-", 1))
    except ValueError:
        raise argparse.ArgumentTypeError("a range of seconds such as 1-5") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError("a range of seconds such as 1-5")
    return low, high


def positive(kind):
    def parse(text):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError("must be above 0")
        return value

    return parse


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=positive(int), default=50, help="simulated users (50)")
    parser.add_argument("--duration", type=positive(float), default=120.0, help="seconds of load, after the logins (120)")
    parser.add_argument("--ramp", type=float, default=20.0, help="seconds over which the users log in, before the load (20)")
    parser.add_argument("--think", type=think_range, default=(1.0, 5.0), help="pause between pages, seconds (1-5)")
    parser.add_argument("--customers", type=int, default=20_000, help="customers added to the demo data (20000)")
    parser.add_argument("--workers", type=positive(int), default=3, help="gunicorn worker processes (3)")
    parser.add_argument("--threads", type=positive(int), default=4, help="threads per worker (4)")
    parser.add_argument("--keep", action="store_true", help="keep the database at the end")
    parser.add_argument("--reuse", action="store_true", help="use the database kept by an earlier run (--keep) as it is")
    parser.add_argument("--results", default=RESULTS_FILE, help="where to write the JSON results")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        import gunicorn  # noqa: F401
        import httpx  # noqa: F401
    except ImportError as missing:
        sys.exit(f"{missing.name} is missing: pip install -e '.[benchmark]' (gunicorn, httpx)")
    import django

    django.setup()
    _checked_name()
    if args.reuse and not database_exists():
        sys.exit(f"--reuse: the database {database_config()['NAME']} does not exist")
    workdir = tempfile.mkdtemp(prefix="clientdb-load-")
    server = None
    code = 2
    try:
        setup_seconds = None if args.reuse else set_up(args)
        if args.reuse:
            create_users(args.users)  # a larger --users than the kept database has
        facts = machine_facts()
        plan = make_plan(args.users, random.Random(SEED))
        from django.db import connections

        connections.close_all()
        port = free_port()
        log(f"gunicorn: {args.workers} workers × {args.threads} threads on 127.0.0.1:{port}")
        access_log = os.path.join(workdir, "access.log")
        server = start_server(args, port, os.path.join(workdir, "media"), access_log)
        meter = CpuMeter(server.pid, database_config()["NAME"])
        log(f"{args.users} users log in over {args.ramp:.0f} s, then work for {args.duration:.0f} s "
            f"(pauses {args.think[0]:g}-{args.think[1]:g} s)")
        with contextlib.suppress(OSError):
            # The client's own timing should not wait behind the server it measures (both
            # share the two cores); it needs a few per cent of one core.
            os.setpriority(os.PRIO_PROCESS, 0, -5)
        stats, users, seconds = asyncio.run(run_load(args, plan, f"http://127.0.0.1:{port}", meter))
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, 0, 0)
        cpu = meter.stop()
        facts["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
        stop_server(server)
        server = None
        log("checking what was written")
        writes = check_writes(plan, users)
        rows, login_rows, total = summarise(stats, seconds, server_times(access_log))
        print_report(rows, login_rows, total, stats, writes, cpu)
        ok = (
            total["server_errors"] == 0 and total["failed"] == 0 and writes["lost_writes"] == 0
            and not writes["changed_by_booking"] and not stats.client_errors
        )
        report = {
            "generated_by": "benchmarks/load_test.py (generated file; do not edit)",
            "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join(["benchmarks/load_test.py", *(argv if argv is not None else sys.argv[1:])]),
            "options": {k: v for k, v in vars(args).items() if k != "results"},
            "setup_seconds": setup_seconds,
            "load_seconds": round(seconds, 1),
            "code": commit_facts(),
            "machine": facts,
            "cpu": cpu,
            "pages": rows,
            "login_phase": login_rows,
            "total": total,
            "outcomes": stats.outcomes,
            "load_client_errors": stats.client_errors,
            "writes": writes,
            "client_loop_lag_ms": {
                "p50": round(percentile(stats.loop_lag, 0.5) * 1000, 1) if stats.loop_lag else None,
                "p99": round(percentile(stats.loop_lag, 0.99) * 1000, 1) if stats.loop_lag else None,
                "max": round(max(stats.loop_lag) * 1000, 1) if stats.loop_lag else None,
            },
            "problems": stats.samples,
            "passed": ok,
        }
        with open(args.results, "w") as handle:
            json.dump(report, handle, indent=2, default=str)
            handle.write("\n")
        log(f"results written to {os.path.relpath(args.results, REPO_ROOT)}; server log {os.path.relpath(SERVER_LOG, REPO_ROOT)}")
        if not ok:
            log("FAILED: " + "; ".join(
                f"{what}: {n}" for what, n in (("server errors", total["server_errors"]), ("failed requests", total["failed"]),
                                               ("lost writes", writes["lost_writes"]),
                                               ("customers changed by a booking that should change nothing",
                                                len(writes["changed_by_booking"])),
                                               ("errors of the load client", stats.client_errors)) if n
            ))
        code = 0 if ok else 1
    finally:
        stop_server(server)
        shutil.rmtree(workdir, ignore_errors=True)
        if args.keep or args.reuse:
            log(f"database {database_config()['NAME']} kept")
        else:
            drop_database()
            log(f"database {database_config()['NAME']} dropped")
    return code


if __name__ == "__main__":
    sys.exit(main())
