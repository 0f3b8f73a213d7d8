#!/usr/bin/env python
"""One million customers, fifty branches: a data generator and a benchmark of the admin pages.

    .venv/bin/python benchmarks/scale.py generate --customers 1000000 --branches 50 --appointments 2000000
    .venv/bin/python benchmarks/scale.py measure [--rounds 6] [--only NAME,...] [--json benchmarks/scale-results.json]

Both use DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/clientdb_scale, and
the settings of benchmarks/settings.py.

``generate`` drops and re-creates that database (only a database named ``clientdb_scale…``),
migrates it and fills it with ``COPY``: branches ``branch-01`` … with opening hours, ten
services offered everywhere, five customer groups, twenty tags, three customer attributes
(hair type, visits, customer number), the head-office user ``manager`` and one staff user
per branch (``staff-01`` …, member of exactly that branch, with the permissions of
tests/conftest.py). Customers: 60 % shared with all branches, 20 % with one to three
branches, 20 % local to one branch; names drawn from a few hundred first and last names
(common last names are common); unique emails; German phone numbers typed in various
ways; attributes on half, tags on 30 %, groups on 20 %, marketing consent (with its
consent event) on 40 %; 5 % have local values in one branch. Appointments: a few regulars
with 500 each (shared with all branches, with local values in branch-01, mostly booked
there), the rest spread over the customers, over the past two years and the next two
months, each in a branch that sees the customer. One customer in 500 has a pending
deletion request. Secondary indexes and foreign keys are dropped while the rows are
copied and re-created afterwards, as a restore does. Then one customer in 20 (never a
regular) is archived, the head office saves six company segments (``SEGMENTS``: one rule,
five rules — tag, group, consent, at least two visits, last visit in the past year —,
loyal customers, birthdays, no-shows, new customers) and the dynamic group "Loyal
(dynamic)" takes its members from the "Loyal customers" segment; the run ends with
VACUUM ANALYZE.

``measure`` requests admin pages through Django's test client, logged in as ``manager``
(head office) and as the staff user of the branch where the busiest regular has local
values (``staff-01``): one warm-up request per page and role, whose database queries are
counted, then ``--rounds`` timed requests (median, min, max of the wall time of
``client.get``, rendering included). Pages: the customer listing (page 1, page 1000 —
the last page when there are fewer —, searches by a last-name fragment, a full email and
a phone number typed in the German local form, the Location filter, ordering by most
bookings, filters by tag, group and attribute), the appointment listing, the week view
of one branch, the inspect page of a customer with 500 appointments and the listing
showing a customer by the branch's local email; and, for issue #17, the listing filtered
by each filter added with it (last visit in the past 30 days, at least 3 visits, never
visited, a no-show, an upcoming appointment, birthday this month and within 7 days,
created in the past 30 days, local values, archived only, the dynamic group), the
one-rule and the five-rule segment opened as the Segments list opens them (the listing
with the segment's query string) and the Segments list itself, which counts each
segment's customers. The baseline is a plain Wagtail
``SnippetViewSet`` over the same customer table (ORM search over the same fields,
``list_filter`` on groups, tag name — django-filter builds no filter for taggit's manager
itself —, consent and source; no branch rules), mounted in this
process only and measured as the manager wherever it has the same page. Then, once
each: an export of 100,000 customers (the manager's listing, in its order, through
``export.write_file``), an export of every customer the one-rule segment finds, per role,
and the processing of 10,000 pending deletion requests with
``deletion.process_queue`` — last, inside a transaction that is rolled back, so that the
database keeps its customers (its commits are savepoints there), followed by VACUUM ANALYZE.

The figures are printed and written to ``--json`` (generated; not meant to be committed).
"""

import argparse
import array
import bisect
import contextlib
import datetime
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
import types
import unicodedata
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/clientdb_scale"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)

from benchmarks.run import count_lines, ensure_database, log, machine_facts, server_facts, settle  # noqa: E402

RESULTS_FILE = os.path.join(HERE, "scale-results.json")
SEED = 20260301
#: Rows per COPY statement: Python's memory stays bounded, whatever the size.
BATCH = 20_000

# --- The shape of the data ------------------------------------------------------------------------------

BRANCH_TIMEZONES = ["Europe/Berlin"] * 8 + ["Europe/Vienna", "Europe/Zurich"]
OPENS, CLOSES = 9, 18  # Monday to Saturday
# service: minutes
SERVICES = {
    "Cut & blow-dry": 60, "Men's cut": 30, "Beard trim": 15, "Kids' cut": 30, "Blow-dry": 45,
    "Colour": 120, "Highlights": 150, "Perm": 120, "Hair treatment": 30, "Updo": 60,
}
# name, is_default
CUSTOMER_GROUPS = [("Online bookings", True), ("VIP", False), ("Students", False), ("Newsletter", False), ("Staff family", False)]
TAGS = [
    "blonde", "regular", "colour", "kids", "sensitive scalp", "late-payer", "curly", "long hair", "short hair",
    "bridal", "walk-in", "gift voucher", "coffee", "no small talk", "allergy", "student", "senior", "vegan products",
    "referral", "instagram",
]
HAIR_TYPES = ["fine", "normal", "thick", "curly"]
FILTERED_HAIR_TYPE = "curly"
FIRST_NAMES = [
    "Anna", "Maria", "Emma", "Mia", "Hannah", "Sophie", "Lena", "Lea", "Marie", "Laura", "Julia", "Sarah", "Katrin",
    "Petra", "Sabine", "Ute", "Renate", "Heike", "Claudia", "Susanne", "Andrea", "Monika", "Birgit", "Karin",
    "Nicole", "Stefanie", "Melanie", "Christina", "Jana", "Lisa", "Johanna", "Clara", "Ida", "Greta", "Frieda",
    "Nele", "Emilia", "Charlotte", "Amelie", "Luisa", "Paula", "Mila", "Elif", "Aylin", "Zeynep", "Agnieszka",
    "Olga", "Ewa", "Chiara", "Zoë", "Chloé", "Käthe", "Dörte", "Jürgen", "Sören", "Jörg", "Björn", "Günter",
    "Lukas", "Leon", "Finn", "Jonas", "Paul", "Felix", "Maximilian", "Tobias", "Stefan", "Thomas", "Michael",
    "Andreas", "Ömer", "Mehmet", "Can", "Malte", "Jens", "Uwe", "Fynn", "Ole", "Luca", "Timo", "Peter", "Klaus",
    "Wolfgang", "Frank", "Markus", "Daniel", "Alexander", "Christian", "Martin", "Sebastian", "Florian", "Jan",
    "Tim", "Niklas", "Moritz", "Elias", "Noah", "Ben", "Emil", "Anton", "Theo", "Henry", "Matteo", "David",
    "Samuel", "Oskar", "Karl", "Hans", "Dieter", "Horst", "Bernd", "Ralf", "Sven", "Dirk", "Marco", "Ahmet",
    "Mustafa", "Piotr", "Tomasz", "Ivan", "Nikola", "Giorgos",
]
#: Most common first: the n-th name is drawn with a weight of 1 / n ** 0.7.
LAST_NAMES = [
    "Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Meyer", "Wagner", "Becker", "Schulz", "Hoffmann",
    "Schäfer", "Koch", "Bauer", "Richter", "Klein", "Wolf", "Schröder", "Neumann", "Schwarz", "Zimmermann",
    "Braun", "Krüger", "Hofmann", "Hartmann", "Lange", "Schmitt", "Werner", "Schmitz", "Krause", "Meier",
    "Lehmann", "Schmid", "Schulze", "Maier", "Köhler", "Herrmann", "König", "Walter", "Mayer", "Huber", "Kaiser",
    "Fuchs", "Peters", "Lang", "Scholz", "Möller", "Weiß", "Jung", "Hahn", "Schubert", "Vogel", "Friedrich",
    "Keller", "Günther", "Frank", "Berger", "Winkler", "Roth", "Beck", "Lorenz", "Baumann", "Franke", "Albrecht",
    "Schuster", "Simon", "Ludwig", "Böhm", "Winter", "Kraus", "Martin", "Schumacher", "Krämer", "Vogt", "Stein",
    "Jäger", "Otto", "Sommer", "Groß", "Seidel", "Heinrich", "Brandt", "Haas", "Schreiber", "Graf", "Schulte",
    "Dietrich", "Ziegler", "Kuhn", "Kühn", "Pohl", "Engel", "Horn", "Busch", "Bergmann", "Thomas", "Voigt",
    "Sauer", "Arnold", "Wolff", "Pfeiffer", "Schmidtke", "Schmiedel", "Meißner", "Voß", "Özdemir", "Yılmaz",
    "Kaya", "Demir", "Şahin", "Çelik", "Yıldız", "Yıldırım", "Öztürk", "Aydın", "Arslan", "Doğan", "Kılıç",
    "Nowak", "Kowalski", "Wiśniewski", "Wójcik", "Kowalczyk", "Kamiński", "Lewandowski", "Zieliński", "Nguyen",
    "Tran", "Le", "Pham", "Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano", "Colombo", "Ricci",
    "Marino", "Greco", "Popescu", "Ionescu", "Popov", "Ivanov", "Petrov", "Smirnov", "Kuznetsov", "Horvat",
    "Kovačević", "Novak", "García", "Fernández", "López", "Martínez", "Sánchez", "Pérez", "Silva", "Santos",
    "Oliveira", "Costa", "Dubois", "Durand", "Lefebvre", "Moreau", "Laurent", "Smith", "Jones", "Brown", "Taylor",
    "Wilson", "Evans", "Johnson", "Jansen", "de Jong", "de Vries", "van Dijk", "Bakker", "Visser", "Peeters",
    "Janssens", "Maes", "Hansen", "Nielsen", "Jensen", "Andersen", "Larsen", "Johansson", "Andersson",
    "Karlsson", "Nilsson", "Eriksson", "Virtanen", "Korhonen", "Papadopoulos", "Nagy", "Kovács", "Tóth",
    "Szabó", "Horváth", "Dvořák", "Novotný", "Svoboda",
]
#: The listing's search by a last-name fragment: Schmidt, Schmitt, Schmitz, Schmid, Schmidtke, Schmiedel.
LAST_NAME_FRAGMENT = "Schm"
EMAIL_DOMAINS = ["example.com", "example.de", "example.org", "example.net"]
MOBILE_PREFIXES = ["170", "171", "176"]
LANDLINE_FORMATS = ["030 {n}", "+49 30 {n}", "030/{n}", "(030) {n}"]
MOBILE_FORMATS = ["0{p} {n}", "+49 {p} {n}", "0{p}-{n}", "+49{p}{n}"]
CUSTOMER_NOTES = [
    "Prefers Saturday mornings.", "Likes a strong coffee while waiting.", "Always books together with her sister.",
    "Sensitive to strong fragrances.", "Wants the same cut as last time, no experiments.",
]
LOCAL_NOTES = ["Parks in the courtyard.", "Books with the same stylist only.", "Pays monthly.", "Prefers the window seat."]
APPOINTMENT_NOTES = ["Running 10 minutes late, called ahead.", "Bring the colour chart.", "Paid by card."]

SHARED_WITH_ALL, SHARED_WITH_SOME, LOCAL = 0, 1, 2
#: Customers with branch-local values: 5 % of all, all of them global customers (80 %).
LOCAL_VALUES_SHARE_OF_GLOBAL = 0.05 / 0.8
HEAVY_APPOINTMENTS = 500
HISTORY_DAYS, FUTURE_DAYS = 730, 60
#: One customer in this many has a pending deletion request.
DELETION_REQUEST_EVERY = 500
#: One customer in this many is archived (5 %).
ARCHIVED_EVERY = 20
#: Company segments (issue #17), as the listing's query strings: ``{tag}`` is the tag
#: SEGMENT_TAG, ``{group}`` the group SEGMENT_GROUP, dates are ISO days. The first two are
#: measured as listings, all of them in the Segments list with their counts.
SEGMENT_TAG, SEGMENT_GROUP = "regular", "VIP"
SEGMENT_ONE_RULE, SEGMENT_FIVE_RULES = "Regulars", "Regular VIPs with consent, seen this year"
SEGMENTS = {
    SEGMENT_ONE_RULE: "tags={tag}",
    SEGMENT_FIVE_RULES: "tags={tag}&groups={group}&marketing_consent=true&visits_min=2"
                        "&last_visit_from={year_ago}&last_visit_to={today}",
    "Loyal customers": "visits_min=4",
    "Birthdays this month": "birthday=this_month&marketing_consent=true",
    "Missed an appointment": "no_shows=1",
    "New this month": "created_from={month_ago}&created_to={today}",
    # Twenty in all: what a business that works from lists keeps.
    "Regulars with consent": "tags={tag}&marketing_consent=true",
    "Two visits or more": "visits_min=2",
    "Five visits or more": "visits_min=5",
    "Two no-shows": "no_shows=2",
    "Birthday within two weeks": "birthday_within=14",
    "Booked": "upcoming_appointment=true",
    "Marketing consent": "marketing_consent=true",
    "Group members": "groups={group}",
    "Seen this year": "last_visit_from={year_ago}",
    "Came this month": "last_visit_from={month_ago}",
    "Never visited": "visits_max=0",
    "With local values": "local_values=true",
    "Archived": "archived=yes",
    "Named Müller": "q=Müller",
}
#: A dynamic group (its name, its segment's name): its members follow the segment's rule.
DYNAMIC_GROUP = ("Loyal (dynamic)", "Loyal customers")

# German spelling of umlauts for email addresses; other accents are dropped.
EMAIL_SPELLING = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "ı": "i"})


def mailbox_name(name):
    spelled = unicodedata.normalize("NFKD", name.lower().translate(EMAIL_SPELLING))
    return spelled.encode("ascii", "ignore").decode().replace(" ", "")


FIRST_MAILBOX = [mailbox_name(name) for name in FIRST_NAMES]
LAST_MAILBOX = [mailbox_name(name) for name in LAST_NAMES]


def weighted_pick(rng, cumulative):
    """An index drawn with the weights whose running totals are ``cumulative``."""
    return bisect.bisect(cumulative, rng.random() * cumulative[-1])


def running_totals(weights):
    totals, total = [], 0.0
    for weight in weights:
        total += weight
        totals.append(total)
    return totals


LAST_NAME_TOTALS = running_totals(1 / (rank + 1) ** 0.7 for rank in range(len(LAST_NAMES)))


# --- generate -----------------------------------------------------------------------------------------------


class Table:
    """``COPY`` into a model's table, the columns named by the model's fields."""

    def __init__(self, model, field_names):
        from django.db import connection

        meta = model._meta
        fields = [meta.get_field(name) for name in field_names]
        # A NOT NULL column added to the model and not filled here fails now, by name.
        unfilled = [
            f.column for f in meta.concrete_fields
            if not f.null and not f.primary_key and not f.has_db_default() and f not in fields
        ]
        if unfilled:
            raise RuntimeError(f"{meta.db_table}: the generator does not fill {', '.join(unfilled)}")
        quote = connection.ops.quote_name
        self.model = model
        self.name = meta.db_table
        self.sql = f"COPY {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) FROM STDIN"
        self.rows = 0

    def write(self, rows):
        from django.db import connection

        with connection.cursor() as cursor, cursor.copy(self.sql) as copy:
            for row in rows:
                copy.write_row(row)
        self.rows += len(rows)


@contextlib.contextmanager
def bulk_load(tables):
    """Drop the foreign keys and the indexes that back no constraint of ``tables`` while
    they are filled, and re-create them afterwards, as a restore does: an index built
    once from sorted rows and a foreign key checked by one join cost a fraction of
    keeping them up row by row. The definitions are read from the database, so the
    schema ends as the migrations made it. A failed run leaves them dropped; generate
    starts from a new database anyway."""
    from django.db import connection

    quote = connection.ops.quote_name
    dropped = []
    with connection.cursor() as cursor:
        for table in tables:
            cursor.execute(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            foreign_keys = cursor.fetchall()
            cursor.execute(
                "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index i "
                "WHERE indrelid = %s::regclass AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conrelid = i.indrelid AND c.conindid = i.indexrelid)",
                [table],
            )
            indexes = cursor.fetchall()
            for name, _definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {quote(table)} DROP CONSTRAINT {quote(name)}")
            for name, _definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
            dropped.append((table, foreign_keys, indexes))
    yield
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for _table, _foreign_keys, indexes in dropped:
            for _name, definition in indexes:
                cursor.execute(definition)
        for table, foreign_keys, _indexes in dropped:
            for name, definition in foreign_keys:
                cursor.execute(f"ALTER TABLE {quote(table)} ADD CONSTRAINT {quote(name)} {definition}")
        cursor.execute("RESET maintenance_work_mem")
    log(f"indexes and foreign keys re-created in {time.perf_counter() - started:.1f} s")


@dataclass
class Setup:
    """What the customers and appointments refer to, by primary key."""

    branch_ids: list
    branch_zones: list
    service_ids: list
    service_minutes: list
    group_ids: list
    tag_ids: list
    manager_id: int
    staff_ids: list  # per branch, in the order of branch_ids


def create_setup(branch_count):
    """Branches, services, groups, tags, attributes and users, with the ORM (a few hundred rows)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils.text import slugify

    from tests.conftest import MANAGER_EXTRA_PERMISSIONS, STAFF_PERMISSIONS, permissions
    from wagtail_clientdb.models import (
        AttributeDefinition,
        AttributeTarget,
        AttributeType,
        Branch,
        BranchMembership,
        ClientDBSettings,
        CustomerGroup,
        CustomerTag,
        OpeningHours,
        Service,
    )

    branches = Branch.objects.bulk_create(
        Branch(
            name=f"Branch {n:02d}",
            slug=f"branch-{n:02d}",
            address=f"Hauptstraße {n}\n10{n:03d} Berlin",
            timezone=BRANCH_TIMEZONES[n % len(BRANCH_TIMEZONES)],
            parallel_bookings=3,
        )
        for n in range(1, branch_count + 1)
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(branch=branch, weekday=weekday, opens=datetime.time(OPENS), closes=datetime.time(CLOSES))
        for branch in branches
        for weekday in range(6)
    )
    services = Service.objects.bulk_create(Service(name=name, duration=minutes) for name, minutes in SERVICES.items())
    Service.branches.through.objects.bulk_create(
        Service.branches.through(service=service, branch=branch) for service in services for branch in branches
    )
    groups = CustomerGroup.objects.bulk_create(
        CustomerGroup(name=name, is_default=is_default) for name, is_default in CUSTOMER_GROUPS
    )
    tags = CustomerTag.all_tags.bulk_create(CustomerTag(name=name, slug=slugify(name)) for name in TAGS)
    customer = AttributeTarget.CUSTOMER
    AttributeDefinition.objects.bulk_create([
        AttributeDefinition(applies_to=customer, key="hair_type", label="Hair type", field_type=AttributeType.CHOICE,
                            choices=HAIR_TYPES, sort_order=0),
        AttributeDefinition(applies_to=customer, key="visits", label="Visits", field_type=AttributeType.INTEGER, sort_order=1),
        AttributeDefinition(applies_to=customer, key="customer_number", label="Customer number",
                            field_type=AttributeType.TEXT, sort_order=2),
    ])
    settings = ClientDBSettings.load()
    settings.branches_may_edit_global_customers = True
    settings.save()

    staff_group = Group.objects.create(name="Branch staff")
    staff_group.permissions.set(permissions(STAFF_PERMISSIONS))
    manager_group = Group.objects.create(name="Branch managers")
    manager_group.permissions.set(permissions(STAFF_PERMISSIONS + MANAGER_EXTRA_PERMISSIONS))
    User = get_user_model()
    manager = User.objects.create_user("manager", "manager@example.com", first_name="Head", last_name="Office")
    manager.groups.add(manager_group)
    staff = []
    for n, branch in enumerate(branches, start=1):
        user = User.objects.create_user(f"staff-{n:02d}", f"staff-{n:02d}@example.com", first_name="Staff", last_name=f"{n:02d}")
        user.groups.add(staff_group)
        BranchMembership.objects.create(branch=branch, user=user)
        staff.append(user.pk)
    return Setup(
        branch_ids=[b.pk for b in branches],
        branch_zones=[b.zoneinfo for b in branches],
        service_ids=[s.pk for s in services],
        service_minutes=[s.duration for s in services],
        group_ids=[g.pk for g in groups],
        tag_ids=[t.pk for t in tags],
        manager_id=manager.pk,
        staff_ids=staff,
    )


class ScaleData:
    """The rows of the customer tables and of the appointments, batch by batch.

    Customers get ids 1 … n; the first ``heavy`` ones are the regulars with 500
    appointments. What the appointments need of each customer (which branches see it,
    its usual branch, how long ago it was created) is kept in compact arrays.
    """

    CUSTOMER_FIELDS = (
        "id", "first_name", "last_name", "email", "phone_raw", "phone", "notes", "birthday", "marketing_consent",
        "attributes", "source", "external_id", "home_branch", "shared_with_all_branches", "created_at", "updated_at",
        "version", "bookings_total", "visits_total", "no_shows_total",
    )
    OVERRIDE_FIELDS = (
        "customer", "branch", "last_name", "email", "phone_raw", "phone", "notes", "attributes", "updated_at", "version",
    )
    APPOINTMENT_FIELDS = (
        "customer", "branch", "start", "end", "service", "staff", "status", "source", "attributes", "notes",
        "created_at", "updated_at",
    )
    DELETION_FIELDS = ("customer", "customer_number", "status", "requested_by", "requested_in_branch", "requested_at", "errors", "reason")

    def __init__(self, setup, customers, appointments):
        from django.utils import timezone

        from wagtail_clientdb.models import (
            Appointment,
            ConsentEvent,
            Customer,
            CustomerOverride,
            DeletionRequest,
            TaggedCustomer,
        )

        self.setup = setup
        self.customers = customers
        self.rng = random.Random(SEED)
        self.now = timezone.now()
        self.today = timezone.localdate(self.now)
        self.heavy = max(1, min(5, appointments // 20_000))
        self.per_heavy = min(HEAVY_APPOINTMENTS, appointments // (4 * self.heavy))
        self.appointments = appointments
        self.scope = bytearray(customers + 1)
        self.usual_branch = array.array("H", bytes(2 * (customers + 1)))
        self.created_days_ago = array.array("H", bytes(2 * (customers + 1)))
        self.shared_branches = {}  # customer id → indexes of the branches it is shared with
        self.customer = Table(Customer, self.CUSTOMER_FIELDS)
        self.branch_links = Table(Customer.branches.through, ("customer", "branch"))
        self.group_links = Table(Customer.groups.through, ("customer", "customergroup"))
        self.tag_links = Table(TaggedCustomer, ("content_object", "tag"))
        self.local_values = Table(CustomerOverride, self.OVERRIDE_FIELDS)
        self.consent_events = Table(ConsentEvent, ("customer", "given", "channel", "recorded_at", "reference"))
        self.appointment = Table(Appointment, self.APPOINTMENT_FIELDS)
        self.deletion_requests = Table(DeletionRequest, self.DELETION_FIELDS)
        # Appointment days from two years ago to two months ahead; the salons are closed on Sundays.
        self.days = []
        for offset in range(-HISTORY_DAYS, FUTURE_DAYS + 1):
            day = self.today + datetime.timedelta(days=offset)
            self.days.append(day + datetime.timedelta(days=1) if day.weekday() == 6 else day)
        self.slots = [datetime.time(OPENS + quarter // 4, 15 * (quarter % 4)) for quarter in range(4 * (CLOSES - OPENS))]
        self.durations = [datetime.timedelta(minutes=m) for m in setup.service_minutes]

    @property
    def tables(self):
        return [self.customer, self.branch_links, self.group_links, self.tag_links, self.local_values,
                self.consent_events, self.appointment, self.deletion_requests]

    # Customers ---------------------------------------------------------------------------------------------

    def customer_batches(self):
        """Per batch of customers: the rows of each customer table."""
        for first in range(1, self.customers + 1, BATCH):
            batch = {table: [] for table in (self.customer, self.branch_links, self.group_links, self.tag_links,
                                             self.local_values, self.consent_events)}
            for pk in range(first, min(first + BATCH, self.customers + 1)):
                self.add_customer(pk, batch)
            yield batch

    def add_customer(self, pk, rows):
        rng, setup = self.rng, self.setup
        branch_count = len(setup.branch_ids)
        heavy = pk <= self.heavy
        draw = rng.random()
        scope = SHARED_WITH_ALL if heavy or draw < 0.6 else SHARED_WITH_SOME if draw < 0.8 else LOCAL
        usual = 0 if heavy else rng.randrange(branch_count)
        if scope == SHARED_WITH_SOME:
            shared = rng.sample(range(branch_count), min(branch_count, rng.randint(1, 3)))
            usual = shared[0]
            self.shared_branches[pk] = tuple(shared)
            rows[self.branch_links] += [(pk, setup.branch_ids[index]) for index in shared]
        self.scope[pk], self.usual_branch[pk] = scope, usual

        first, last = rng.randrange(len(FIRST_NAMES)), weighted_pick(rng, LAST_NAME_TOTALS)
        email = ""
        if rng.random() < 0.95:
            email = f"{FIRST_MAILBOX[first]}.{LAST_MAILBOX[last]}.{pk}@{EMAIL_DOMAINS[pk % len(EMAIL_DOMAINS)]}"
        phone_raw, phone = self.phone(pk)
        days_ago = 2000 if heavy else rng.randrange(4 * 365)
        self.created_days_ago[pk] = days_ago
        created = self.now - datetime.timedelta(days=days_ago, seconds=rng.randrange(86400))
        birthday = None
        if rng.random() < 0.4:
            birthday = datetime.date(1950, 1, 1) + datetime.timedelta(days=rng.randrange(60 * 365))
        attributes = {}
        if rng.random() < 0.5:
            if rng.random() < 0.8:
                attributes["hair_type"] = rng.choice(HAIR_TYPES)
            if rng.random() < 0.6:
                attributes["visits"] = rng.randrange(200)
            if rng.random() < 0.5:
                attributes["customer_number"] = f"K-{pk}"
        draw = rng.random()
        source = "manual" if draw < 0.4 else "import" if draw < 0.7 else "online_booking" if draw < 0.9 else "api"
        consent = rng.random() < 0.4
        if consent:
            channel = {"manual": "admin", "online_booking": "form"}.get(source, source)
            rows[self.consent_events].append((pk, True, channel, created, ""))
        rows[self.customer].append((
            pk, FIRST_NAMES[first], LAST_NAMES[last], email, phone_raw, phone,
            rng.choice(CUSTOMER_NOTES) if rng.random() < 0.1 else "", birthday, consent,
            json.dumps(attributes) if attributes else "{}",
            source, f"EXT-{pk:08d}" if source == "import" else "",
            setup.branch_ids[usual] if scope == LOCAL else None, scope == SHARED_WITH_ALL, created, created, 1,
            0, 0, 0,  # counted once the appointments are in (booking_counts.recount_all)
        ))
        if rng.random() < 0.3:
            rows[self.tag_links] += [(pk, tag) for tag in rng.sample(setup.tag_ids, 1 if rng.random() < 0.7 else 2)]
        if rng.random() < 0.2:
            rows[self.group_links] += [(pk, g) for g in rng.sample(setup.group_ids, 1 if rng.random() < 0.9 else 2)]
        if heavy or (scope != LOCAL and rng.random() < LOCAL_VALUES_SHARE_OF_GLOBAL):
            rows[self.local_values].append(self.local_values_row(pk, first, last, scope, heavy))

    def phone(self, pk):
        """(as typed, E.164): 30 % Berlin landlines, 60 % mobiles, unique by customer; some unreadable or none."""
        rng = self.rng
        draw = rng.random()
        if draw < 0.3:
            number = 20_000_000 + pk
            return rng.choice(LANDLINE_FORMATS).format(n=number), f"+4930{number}"
        if draw < 0.9:
            prefix, number = MOBILE_PREFIXES[pk % len(MOBILE_PREFIXES)], 10_000_000 + pk
            return rng.choice(MOBILE_FORMATS).format(p=prefix, n=number), f"+49{prefix}{number}"
        if draw < 0.91:
            return "ask at desk", ""
        return "", ""

    def local_values_row(self, pk, first, last, scope, heavy):
        """What one branch keeps for itself: notes, often a phone, sometimes a name, an email or an attribute.
        The regulars have theirs in branch-01, with a local email (the listing is searched by it)."""
        rng, setup = self.rng, self.setup
        if heavy:
            branch = 0
        elif scope == SHARED_WITH_SOME:
            branch = rng.choice(self.shared_branches[pk])
        else:
            branch = rng.randrange(len(setup.branch_ids))
        last_name = rng.choice(LAST_NAMES) if rng.random() < 0.2 else None
        email = None
        if heavy or rng.random() < 0.2:
            email = f"{FIRST_MAILBOX[first]}.{LAST_MAILBOX[last]}.{pk}@local.example.net"
        phone_raw = phone = None
        if rng.random() < 0.5:
            number = 20_000_000 + pk
            phone_raw, phone = f"0176 {number}", f"+49176{number}"
        attributes = {"hair_type": rng.choice(HAIR_TYPES)} if rng.random() < 0.1 else {}
        return (pk, setup.branch_ids[branch], last_name, email, phone_raw, phone, rng.choice(LOCAL_NOTES),
                json.dumps(attributes), self.now, 1)

    # Appointments ------------------------------------------------------------------------------------------

    def appointment_batches(self):
        batch = []
        for pk, branch in self.appointment_customers():
            batch.append(self.appointment_row(pk, branch))
            if len(batch) == BATCH:
                yield batch
                batch = []
        if batch:
            yield batch

    def appointment_customers(self):
        """(customer, branch index) of every appointment: the regulars' first, mostly in branch-01."""
        rng, branch_count = self.rng, len(self.setup.branch_ids)
        for pk in range(1, self.heavy + 1):
            for _ in range(self.per_heavy):
                yield pk, 0 if rng.random() < 0.8 else rng.randrange(branch_count)
        for _ in range(self.appointments - self.heavy * self.per_heavy):
            pk = rng.randrange(self.heavy + 1, self.customers + 1)
            scope, usual = self.scope[pk], self.usual_branch[pk]
            if scope == LOCAL or rng.random() < 0.8:
                yield pk, usual
            elif scope == SHARED_WITH_ALL:
                yield pk, rng.randrange(branch_count)
            else:
                yield pk, rng.choice(self.shared_branches[pk])

    def appointment_row(self, pk, branch):
        rng, setup = self.rng, self.setup
        # Not before the customer was created.
        day = self.days[HISTORY_DAYS + rng.randint(-min(HISTORY_DAYS, self.created_days_ago[pk]), FUTURE_DAYS)]
        service = rng.randrange(len(setup.service_ids))
        duration = self.durations[service]
        slot = rng.randrange(len(self.slots) - setup.service_minutes[service] // 15 + 1)
        start = datetime.datetime.combine(day, self.slots[slot], tzinfo=setup.branch_zones[branch])
        draw = rng.random()
        if start < self.now:
            status = "completed" if draw < 0.85 else "cancelled" if draw < 0.95 else "no_show"
        else:
            status = "booked" if draw < 0.95 else "cancelled"
        draw = rng.random()
        source = "manual" if draw < 0.5 else "online_booking" if draw < 0.85 else "import" if draw < 0.95 else "api"
        # Booked one day to four weeks ahead.
        created = min(start - datetime.timedelta(days=rng.randint(1, 28)), self.now)
        return (
            pk, setup.branch_ids[branch], start, start + duration, setup.service_ids[service],
            setup.staff_ids[branch] if rng.random() < 0.5 else None, status, source, "{}",
            rng.choice(APPOINTMENT_NOTES) if rng.random() < 0.05 else "", created, created,
        )

    # Deletion requests ------------------------------------------------------------------------------------------

    def deletion_request_rows(self):
        """Pending requests for one customer in DELETION_REQUEST_EVERY (never a regular): a local customer's
        asked for by its branch's staff, a global one's by the head office."""
        rng, setup = self.rng, self.setup
        count = min(self.customers // DELETION_REQUEST_EVERY, self.customers - self.heavy)
        rows = []
        for pk in sorted(rng.sample(range(self.heavy + 1, self.customers + 1), count)):
            requested = self.now - datetime.timedelta(minutes=rng.randrange(60 * 24 * 14))
            if self.scope[pk] == LOCAL:
                by, branch = setup.staff_ids[self.usual_branch[pk]], setup.branch_ids[self.usual_branch[pk]]
            else:
                by, branch = setup.manager_id, None
            rows.append((pk, pk, "pending", by, branch, requested, "[]", "requested"))
        return rows


def archive_some(heavy):
    """Archive one customer in ARCHIVED_EVERY (never a regular), some while after it was created:
    the listing hides them by default, ``archived=yes`` shows them alone."""
    from django.db import connection

    from wagtail_clientdb.models import Customer

    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {connection.ops.quote_name(Customer._meta.db_table)} "
            "SET archived_at = created_at + (now() - created_at) / 2 WHERE id %% %s = %s AND id > %s",
            [ARCHIVED_EVERY, ARCHIVED_EVERY // 2, heavy],
        )
        return cursor.rowcount


def create_segments():
    """Company segments saved by the head office (SEGMENTS: one rule, five rules, a few more for
    the Segments list) and the dynamic group DYNAMIC_GROUP defined by one of them. Idempotent."""
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from wagtail_clientdb import segments
    from wagtail_clientdb.models import CustomerGroup, CustomerTag, Segment, SegmentVisibility

    manager = get_user_model().objects.get(username="manager")
    today = timezone.localdate()
    values = {
        "tag": CustomerTag.all_tags.get(name=SEGMENT_TAG).pk,
        "group": CustomerGroup.objects.get(name=SEGMENT_GROUP).pk,
        "year_ago": (today - datetime.timedelta(days=365)).isoformat(),
        "month_ago": (today - datetime.timedelta(days=30)).isoformat(),
        "today": today.isoformat(),
    }
    saved = {}
    for name, query in SEGMENTS.items():
        query = segments.clean_query(query.format(**values))
        saved[name], _created = Segment.objects.update_or_create(
            name=name, defaults={"query": query, "owner": manager, "visibility": SegmentVisibility.COMPANY}
        )
    group_name, segment_name = DYNAMIC_GROUP
    CustomerGroup.objects.update_or_create(name=group_name, defaults={"segment": saved[segment_name]})
    return saved


def check_phones(customer_rows):
    """The generated numbers are what the app itself makes of them as typed (else searches would miss them)."""
    from wagtail_clientdb.contact import parse_phone

    phone_raw, phone = ScaleData.CUSTOMER_FIELDS.index("phone_raw"), ScaleData.CUSTOMER_FIELDS.index("phone")
    for row in customer_rows[:2000]:
        parsed = parse_phone(row[phone_raw], "DE")
        if parsed.e164 != row[phone]:
            raise RuntimeError(f"phone {row[phone_raw]!r} is stored as {row[phone]!r}, the app reads {parsed.e164!r}")


def generate(args):
    if args.customers < 10 or args.branches < 1 or args.appointments < 0:
        sys.exit("need at least 10 customers and one branch")
    import dj_database_url

    name = dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]
    if not name.startswith("clientdb_scale"):
        sys.exit(f"generate drops and re-creates its database; {name!r} is not a clientdb_scale… database")
    started = time.perf_counter()
    log(f"database {ensure_database(fresh=True)}: created; migrating")
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    log(f"migrated in {time.perf_counter() - started:.1f} s; creating {args.branches} branches, services, groups, tags, users")
    setup = create_setup(args.branches)
    data = ScaleData(setup, args.customers, args.appointments)

    with bulk_load([table.name for table in data.tables]):
        step = time.perf_counter()
        for number, batch in enumerate(data.customer_batches()):
            if number == 0:
                check_phones(batch[data.customer])
            for table, rows in batch.items():
                table.write(rows)
            if number % 10 == 9:
                log(f"customers: {data.customer.rows:,} of {args.customers:,}")
        with connection.cursor() as cursor:
            # The ids were given explicitly; new customers continue after them.
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [data.customer.name, args.customers])
        log(f"customers: {data.customer.rows:,} with {data.branch_links.rows:,} branch links, "
            f"{data.group_links.rows:,} group links, {data.tag_links.rows:,} tag links, "
            f"{data.local_values.rows:,} with local values, {data.consent_events.rows:,} consent events, "
            f"in {time.perf_counter() - step:.1f} s")
        step = time.perf_counter()
        for number, batch in enumerate(data.appointment_batches()):
            data.appointment.write(batch)
            if number % 20 == 19:
                log(f"appointments: {data.appointment.rows:,} of {args.appointments:,}")
        log(f"appointments: {data.appointment.rows:,} ({data.heavy} customers with {data.per_heavy} each) "
            f"in {time.perf_counter() - step:.1f} s")
        data.deletion_requests.write(data.deletion_request_rows())
        log(f"pending deletion requests: {data.deletion_requests.rows:,}")
    step = time.perf_counter()
    from wagtail_clientdb import booking_counts

    booking_counts.recount_all()
    log(f"booking counts in {time.perf_counter() - step:.1f} s")
    log(f"archived customers: {archive_some(data.heavy):,}")
    log(f"segments: {', '.join(create_segments())}; dynamic group {DYNAMIC_GROUP[0]!r}")
    step = time.perf_counter()
    settle()
    log(f"VACUUM ANALYZE and CHECKPOINT in {time.perf_counter() - step:.1f} s")
    print(f"generated {args.customers:,} customers, {args.branches} branches, {data.appointment.rows:,} appointments "
          f"in {time.perf_counter() - started:.1f} s")


# --- measure ------------------------------------------------------------------------------------------------

MANAGER, STAFF = "manager", "staff"
EXPORT_ROWS = 100_000
DELETIONS = 10_000
PLAIN_URLCONF = "benchmarks_scale_urls"


@dataclass
class Page:
    """An admin page, requested by each role with its query parameters (or a reason why not)."""

    name: str
    url: str
    params: dict  # role → query parameters, or the reason the role has no such page
    baseline: dict | None = None  # the plain listing's parameters, None without a like page
    notes: list = field(default_factory=list)
    may_be_empty: bool = False  # a filter that may find nobody for a role (no failure then)
    api: bool = False  # requested with each role's API token instead of its admin session
    settings: dict = field(default_factory=dict)  # Django settings the page is requested with


def plain_customer_urlconf():
    """The test project's URLs, and under /admin/plain-customers/ a plain Wagtail SnippetViewSet
    over the customer table: Wagtail's own listing, search and filters, no branch rules.

    It is mounted in this process only; the Customer model stays registered as a snippet
    with the app's viewset alone. Its views sit behind Wagtail's admin login check, as
    the admin's own URLs do.
    """
    from django.urls import include, path
    from wagtail.admin.auth import require_admin_access
    from wagtail.snippets.views.snippets import SnippetViewSet
    from wagtail.utils.urlpatterns import decorate_urlpatterns

    from tests import urls as project_urls
    from wagtail_clientdb.models import Customer

    class PlainCustomerViewSet(SnippetViewSet):
        model = Customer
        url_prefix = "plain-customers"
        url_namespace = "plain_customers"
        list_display = ["__str__", "email", "phone_raw", "created_at"]
        search_fields = ["first_name", "last_name", "email", "phone"]
        list_filter = ["groups", "tags__name", "marketing_consent", "source"]

    viewset = PlainCustomerViewSet(name="plain_customers")
    urls = decorate_urlpatterns(viewset.get_urlpatterns(), require_admin_access)
    module = types.ModuleType(PLAIN_URLCONF)
    module.urlpatterns = [
        path(f"admin/{viewset.url_prefix}/", include((urls, viewset.url_namespace))),
        *project_urls.urlpatterns,
    ]
    sys.modules[PLAIN_URLCONF] = module
    return viewset


def local_phone(e164):
    """A Berlin number as typed at a German desk: "030 20012345"."""
    import phonenumbers

    return phonenumbers.format_number(phonenumbers.parse(e164), phonenumbers.PhoneNumberFormat.NATIONAL)


def build_pages(plain_viewset):
    """The pages and what they show: customers picked by what they are, not by their ids."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Exists, OuterRef
    from django.urls import reverse

    from wagtail_clientdb import deletion
    from wagtail_clientdb.models import Appointment, Branch, Customer, CustomerGroup, CustomerOverride, CustomerTag, DeletionRequest

    busiest = Appointment.objects.values("customer").annotate(n=Count("pk")).order_by("-n").first()
    if busiest is None:
        sys.exit("no appointments: generate with --appointments")
    regular = Customer.objects.get(pk=busiest["customer"])
    local = CustomerOverride.objects.filter(customer=regular).exclude(email=None).select_related("branch").first()
    if local is None:
        sys.exit(f"customer {regular.pk} ({busiest['n']} appointments) has no local email in any branch: generate again")
    branch = local.branch
    staff = get_user_model().objects.filter(clientdb_branch_memberships__branch=branch).order_by("username").first()
    manager = get_user_model().objects.get(username="manager")
    # Customers both roles see with the same values: shared with all, not queued for deletion,
    # no local values in the staff's branch; from the middle of the table.
    plain = (
        Customer.objects.filter(shared_with_all_branches=True, archived_at=None, pk__gte=Customer.objects.count() // 2)
        .exclude(Exists(DeletionRequest.objects.filter(customer=OuterRef("pk"), status__in=deletion.OPEN)))
        .exclude(Exists(CustomerOverride.objects.filter(customer=OuterRef("pk"), branch=branch)))
        .order_by("pk")
    )
    by_email = plain.exclude(email="").first()
    by_phone = plain.filter(phone__startswith="+4930", phone_raw__startswith="+49").first()
    other_branch = Branch.objects.exclude(pk=branch.pk).order_by("slug").first() or branch
    tag = CustomerTag.all_tags.order_by("name").first()
    group = CustomerGroup.objects.filter(segment=None).order_by("name").first()  # a manual group

    customers = reverse("wagtailsnippets_wagtail_clientdb_customer:list")

    def both(params):
        return {MANAGER: params, STAFF: params}

    def search(customer, query, missing):
        """Both roles' parameters and the baseline's for a search, or the reason there is none."""
        if customer is None:
            return both(missing), None
        return both({"q": query(customer)}), {"q": query(customer)}

    email_params, email_baseline = search(by_email, lambda c: c.email, "no customer with an email")
    phone_params, phone_baseline = search(
        by_phone, lambda c: local_phone(c.phone), "no customer with a Berlin number typed internationally"
    )
    pages = [
        Page("list-page-1", customers, both({}), {}),
        Page("list-page-1000", customers, both({"p": 1000}), {"p": 1000},
             ["a listing of fewer than 1000 pages shows its last page"]),
        Page("search-last-name", customers, both({"q": LAST_NAME_FRAGMENT}), {"q": LAST_NAME_FRAGMENT}),
        Page("search-email", customers, email_params, email_baseline),
        Page("search-phone-local", customers, phone_params, phone_baseline,
             [f"customer {by_phone.pk} typed {by_phone.phone_raw!r}; the plain search compares the text as typed"]
             if by_phone else []),
        Page("filter-branch", customers,
             {MANAGER: {"branch": other_branch.pk}, STAFF: "staff have no Location filter: they always see their own branch"}),
        Page("order-most-bookings", customers, both({"ordering": "-bookings_count"})),
        Page("filter-tag", customers, both({"tags": tag.pk}), {"tags__name": tag.name}, [f"tag {tag.name!r}"]),
        Page("filter-group", customers, both({"groups": group.pk}), {"groups": group.pk}, [f"group {group.name!r}"]),
        Page("filter-attribute", customers, both({"attribute_hair_type": FILTERED_HAIR_TYPE})),
        Page("appointments-page-1", reverse("wagtailsnippets_wagtail_clientdb_appointment:list"), both({})),
        Page("appointments-week", reverse("wagtailsnippets_wagtail_clientdb_appointment:week"), both({"branch": branch.pk}),
             notes=[f"{branch.slug}, this week"]),
        Page("inspect-500-appointments", reverse("wagtailsnippets_wagtail_clientdb_customer:inspect", args=(regular.pk,)),
             both({}), notes=[f"customer {regular.pk}, {busiest['n']} appointments"]),
        Page("list-branch-local-values", customers,
             {MANAGER: {"branch": branch.pk, "q": local.email}, STAFF: {"q": local.email}},
             notes=[f"customer {regular.pk} found by {branch.slug}'s local email"]),
        *segment_pages(customers),
        *bulk_and_chooser_pages(customers),
        *api_sync_pages(),
    ]
    plain_list = reverse(plain_viewset.get_url_name("list"))
    return pages, plain_list, {MANAGER: manager, STAFF: staff}


def segment_pages(customers):
    """Issue #17: the listing by each of the filters added with it, archived customers, a dynamic
    group, two segments opened as the admin opens them, and the Segments list with its counts."""
    from django.urls import reverse
    from django.utils import timezone

    from wagtail_clientdb import segments
    from wagtail_clientdb.models import CustomerGroup, Segment

    def both(params):
        return {MANAGER: params, STAFF: params}

    today = timezone.localdate()
    month_ago = (today - datetime.timedelta(days=30)).isoformat()
    try:
        one_rule, five_rules = (Segment.objects.get(name=name) for name in (SEGMENT_ONE_RULE, SEGMENT_FIVE_RULES))
        dynamic = CustomerGroup.objects.get(name=DYNAMIC_GROUP[0])
    except (Segment.DoesNotExist, CustomerGroup.DoesNotExist):
        sys.exit("no segments or dynamic group: generate again (this database was generated before issue #17)")

    def segment_page(name, segment):
        url, _sep, query = segments.listing_url(segment).partition("?")
        return Page(name, f"{url}?{query}" if query else url, both({}), notes=[f"{segment.name!r}: {segment.query}"],
                    may_be_empty=True)

    return [
        Page("filter-last-visit-30-days", customers, both({"last_visit_from": month_ago, "last_visit_to": today.isoformat()})),
        Page("filter-visits-min-3", customers, both({"visits_min": 3})),
        Page("filter-visits-max-0", customers, both({"visits_max": 0}), notes=["never visited (in the branch shown)"]),
        Page("filter-no-shows", customers, both({"no_shows": 1})),
        Page("filter-upcoming", customers, both({"upcoming_appointment": "true"})),
        Page("filter-birthday-month", customers, both({"birthday": "this_month"})),
        Page("filter-birthday-7-days", customers, both({"birthday_within": 7})),
        Page("filter-created-30-days", customers, both({"created_from": month_ago, "created_to": today.isoformat()})),
        Page("filter-local-values", customers, both({"local_values": "true"})),
        Page("filter-archived", customers, both({"archived": "yes"})),
        Page("filter-dynamic-group", customers, both({"groups": dynamic.pk}),
             notes=[f"{dynamic.name!r}: {dynamic.segment.query}"]),
        segment_page("segment-1-rule", one_rule),
        segment_page("segment-5-rules", five_rules),
        Page("segments-list", reverse(Segment.snippet_viewset.get_url_name("list")), both({}),
             notes=[f"{Segment.objects.count()} company segments, each counted"]),
    ]


def bulk_and_chooser_pages(customers):
    """Pages outside the listing that read many customers: the customer chooser (booking), the
    Customer groups list with its counts, and a bulk action's confirmation for every customer
    of a listing ("select all"), which names twenty and counts the rest (issue #17)."""
    from django.urls import reverse

    from wagtail_clientdb.models import CustomerGroup

    def both(params):
        return {MANAGER: params, STAFF: params}

    chooser = reverse("wagtailsnippetchoosers_wagtail_clientdb_customer:choose_results")
    archive = reverse("wagtail_bulk_action", args=("wagtail_clientdb", "customer", "archive"))
    return [
        Page("chooser-page-1", chooser, both({})),
        Page("chooser-search", chooser, both({"q": LAST_NAME_FRAGMENT})),
        Page("groups-list", reverse(CustomerGroup.snippet_viewset.get_url_name("list")), both({})),
        Page("bulk-confirm-all", archive, both({"id": "all", "next": customers}), may_be_empty=True,
             notes=["archive, every customer of the listing: the confirmation page"]),
        Page("bulk-confirm-search", archive, both({"id": "all", "next": f"{customers}?q={LAST_NAME_FRAGMENT}"}),
             may_be_empty=True, notes=["archive, the listing of a last-name search: the confirmation page"]),
        Page("bulk-confirm-never-visited", archive, both({"id": "all", "next": f"{customers}?visits_max=0"}),
             may_be_empty=True, notes=["archive, the listing of customers who never visited: the confirmation page"]),
    ]


def api_sync_pages():
    """The API's list of changes as a client keeping a copy reads it (docs/api.md, "Keeping a
    copy"): the first page of a first copy (every customer changed since 1900), a page from the
    middle of it (after the change read last), and an incremental sync of the last hour; the
    first page of the list in name order beside them."""
    from wagtail_clientdb.models import Customer

    url = "/api/v3/clientdb/customers/"
    middle = Customer.objects.order_by("updated_at", "pk").values("updated_at", "pk")[Customer.objects.count() // 2]
    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)

    def both(params):
        # WAGTAILAPI_LIMIT_MAX: Wagtail's default, 20 a page.
        return {MANAGER: {"limit": 20, **params}, STAFF: {"limit": 20, **params}}

    # A copy is kept with the archived customers too, as docs/api.md's "Keeping a copy" asks.
    return [
        Page("api-list-page-1", url, both({}), api=True),
        Page("api-sync-first-page", url, both({"updated_since": "1900-01-01T00:00:00Z", "archived": "any"}), api=True),
        Page("api-sync-middle-page", url,
             both({"updated_since": middle["updated_at"].isoformat(), "after_id": middle["pk"], "archived": "any"}), api=True,
             notes=[f"after customer {middle['pk']}, the middle of the head office's changes"]),
        Page("api-sync-last-hour", url, both({"updated_since": hour_ago.isoformat(), "archived": "any"}), api=True, may_be_empty=True),
        # A first copy in 2,000 requests instead of 50,000, where the site allows larger pages.
        Page("api-sync-first-page-500", url, both({"updated_since": "1900-01-01T00:00:00Z", "archived": "any", "limit": 500}),
             api=True, settings={"WAGTAILAPI_LIMIT_MAX": 500}, notes=["WAGTAILAPI_LIMIT_MAX = 500"]),
        Page("api-sync-appointments-first-page", "/api/v3/clientdb/appointments/", both({"updated_since": "1900-01-01T00:00:00Z"}), api=True),
    ]


def measure_bulk_action(users):
    """A bulk action on every customer who never visited, as the background task makes it (a
    chunk a transaction), per role; inside a transaction that is rolled back."""
    from django.db import connection, transaction
    from django.utils import timezone

    from wagtail_clientdb import bulk_edits
    from wagtail_clientdb.models import BulkActionJob

    results = {}
    for role, user in users.items():
        with transaction.atomic():
            viewer_branch = None if role == MANAGER else user.clientdb_branch_memberships.get().branch
            job = BulkActionJob.objects.create(
                created_by=user, branch=viewer_branch, action="add_tags", query="visits_max=0",
                options={"tags": ["benchmark"]}, opened_at=timezone.now(),
            )
            counter = QueryCounter()
            with connection.execute_wrapper(counter):
                start = time.perf_counter()
                bulk_edits.run_job(job)
                seconds = time.perf_counter() - start
            transaction.set_rollback(True)
        results[role] = {"status": job.status, "customers": job.rows_total, "tagged": job.counts.get("done"),
                         "seconds": round(seconds, 1), "customers_per_s": round(job.rows_total / seconds) if seconds else None,
                         "queries": counter.queries}
    settle()
    results["note"] = ("add a tag to every customer who never visited (in the branch shown), a chunk of "
                       f"{bulk_edits.CHUNK} at a time, each a savepoint of one transaction that is rolled back")
    return results


def shown_rows(html):
    """Rows of the page's listing tables (a listing, the inspect page's appointments) or the week view's
    appointments; not those of the keyboard-shortcuts dialog every admin page carries. An API
    list's items."""
    if html.startswith("{"):
        return len(json.loads(html).get("items", ()))
    bodies = re.findall(r'<table class="listing\b.*?<tbody>(.*?)</tbody>', html, re.S)
    return sum(body.count("<tr") for body in bodies) + html.count("data-clientdb-week-appointment")


def with_params(url, params):
    from django.utils.http import urlencode

    return f"{url}?{urlencode(params)}" if params else url


def time_page(client, url, rounds):
    """One warm-up request, whose queries are counted, then ``rounds`` timed ones."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    result = {"url": url, "status": response.status_code, "queries": len(queries),
              "rows_shown": shown_rows(response.content.decode())}
    if response.status_code != 200:
        return result
    seconds, processor_seconds, database_seconds = [], [], []
    for _round in range(rounds):
        waited = QueryTimer()
        start, processor_start = time.perf_counter(), time.process_time()
        with connection.execute_wrapper(waited):
            response = client.get(url)
        seconds.append(time.perf_counter() - start)
        processor_seconds.append(time.process_time() - processor_start)
        database_seconds.append(waited.seconds)
        if response.status_code != 200:
            result["status"] = response.status_code
            return result
    result.update(
        median_ms=round(1000 * statistics.median(seconds), 1),
        min_ms=round(1000 * min(seconds), 1),
        max_ms=round(1000 * max(seconds), 1),
        # This process's own time (not PostgreSQL's): what rendering and the ORM cost.
        processor_median_ms=round(1000 * statistics.median(processor_seconds), 1),
        # The time its queries took, as this process waited for them (the database's work and
        # the driver's).
        database_median_ms=round(1000 * statistics.median(database_seconds), 1),
    )
    return result


class QueryTimer:
    """Adds up how long a request's queries take."""

    def __init__(self):
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        start = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - start


class QueryCounter:
    """Counts the queries of a long job (CaptureQueriesContext would keep the text of each)."""

    def __init__(self):
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        self.queries += 1
        return execute(sql, params, many, context)


def measure_export(manager):
    """The manager's listing, in its order, the first EXPORT_ROWS customers written as CSV."""
    from django.http import QueryDict

    from wagtail_clientdb import listing, scope
    from wagtail_clientdb.models import Customer

    rows = min(EXPORT_ROWS, Customer.objects.filter(archived_at=None).count())
    viewer = scope.Viewer(manager, True)
    return write_export(viewer, listing.customers_as_listed(viewer, QueryDict())[:rows], rows)


def measure_segment_export(users):
    """The one-rule segment as each role sees it, every customer it finds, written as CSV (what its
    "Download CSV" writes, in the background above EXPORT_BACKGROUND_ROWS)."""
    from wagtail_clientdb import listing, scope, segments
    from wagtail_clientdb.models import Segment

    segment = Segment.objects.get(name=SEGMENT_ONE_RULE)
    found = {}
    for role, user in users.items():
        viewer = scope.viewer_for_user(user)
        queryset = segments.customers(viewer, segment)
        found[role] = {"segment": segment.name, **write_export(viewer, queryset, listing.count_exactly(queryset))}
    return found


def write_export(viewer, queryset, rows):
    from django.db import connection

    from wagtail_clientdb import export

    counter = QueryCounter()
    with tempfile.TemporaryDirectory(prefix="clientdb-scale-") as folder:
        path = os.path.join(folder, "export.csv")
        with connection.execute_wrapper(counter), open(path, "wb") as output:
            start = time.perf_counter()
            export.write_file(queryset, "csv", output, viewer=viewer)
            seconds = time.perf_counter() - start
        lines, size = count_lines(path), os.path.getsize(path)
    if lines != rows + 1:
        raise RuntimeError(f"the export has {lines} lines, expected {rows + 1}")
    return {"rows": rows, "seconds": round(seconds, 2), "rows_per_s": round(rows / seconds), "queries": counter.queries,
            "file_mb": round(size / 2**20, 1)}


def measure_deletions():
    """Process DELETIONS pending requests — those generated, and more for customers picked from the
    end of the table — inside a transaction that is rolled back: the customers stay."""
    from django.db import connection, transaction
    from django.db.models import Exists, OuterRef

    from wagtail_clientdb import deletion
    from wagtail_clientdb.models import Customer, DeletionRequest, DeletionStatus

    with transaction.atomic():
        pending = DeletionRequest.objects.filter(status=DeletionStatus.PENDING).count()
        wanted = min(DELETIONS, Customer.objects.count() // 10)
        unqueued = (
            Customer.objects.exclude(Exists(DeletionRequest.objects.filter(customer=OuterRef("pk"), status__in=deletion.OPEN)))
            .order_by("-pk")
            .values_list("pk", flat=True)[: max(0, wanted - pending)]
        )
        DeletionRequest.objects.bulk_create(DeletionRequest(customer_id=pk, customer_number=pk) for pk in unqueued)
        requests = DeletionRequest.objects.filter(status__in=deletion.OPEN).count()
        counter = QueryCounter()
        with connection.execute_wrapper(counter):
            start = time.perf_counter()
            deleted = deletion.process_queue()
            seconds = time.perf_counter() - start
        blocked = DeletionRequest.objects.filter(status=DeletionStatus.BLOCKED).count()
        transaction.set_rollback(True)
    # The rolled-back rows are dead rows now: cleared, so that the next measure plans as this one did.
    settle()
    return {"requests": requests, "deleted": deleted, "blocked": blocked, "seconds": round(seconds, 2),
            "requests_per_s": round(requests / seconds), "queries": counter.queries,
            "note": "in one transaction, rolled back: each request's commit is a savepoint, no fsync"}


def database_facts():
    from django.db import connection

    from wagtail_clientdb.models import Appointment, Branch, Customer, CustomerOverride, DeletionRequest

    with connection.cursor() as cursor:
        cursor.execute("SHOW jit")
        jit = cursor.fetchone()[0]
    return {
        **server_facts(),
        "jit": jit,
        "customers": Customer.objects.count(),
        "appointments": Appointment.objects.count(),
        "branches": Branch.objects.count(),
        "customers_with_local_values": CustomerOverride.objects.values("customer").distinct().count(),
        "pending_deletion_requests": DeletionRequest.objects.filter(status="pending").count(),
    }


def print_table(results):
    print()
    print(f"{'page':<26} {'role':<8} {'median ms':>10} {'min-max ms':>17} {'in db ms':>9} {'queries':>8} {'rows':>5} "
          f"{'baseline ms':>12} {'b. queries':>10} {'b. rows':>7} {'ratio':>6}")
    for result in results:
        if "skipped" in result:
            print(f"{result['page']:<26} {result['role']:<8} skipped: {result['skipped']}")
            continue
        if "median_ms" not in result:
            print(f"{result['page']:<26} {result['role']:<8} FAILED: HTTP {result['status']}")
            continue
        spread = f"{result['min_ms']:.1f}-{result['max_ms']:.1f}"
        baseline = result.get("baseline") or {}
        base_ms = f"{baseline['median_ms']:.1f}" if "median_ms" in baseline else ""
        base_queries = str(baseline["queries"]) if baseline else ""
        base_rows = str(baseline["rows_shown"]) if baseline else ""
        ratio = f"{result['ratio']:.2f}" if result.get("ratio") else ""
        print(f"{result['page']:<26} {result['role']:<8} {result['median_ms']:>10.1f} {spread:>17} {result['database_median_ms']:>9.1f} "
              f"{result['queries']:>8} {result['rows_shown']:>5} {base_ms:>12} {base_queries:>10} {base_rows:>7} {ratio:>6}")
    print()


def measure(args):
    import django

    django.setup()
    from django.test import Client, override_settings
    from wagtail.models import APIToken

    jobs = ["export-100k", "export-segment", "bulk-action-never-visited", "process-10k-deletions"]
    plain_viewset = plain_customer_urlconf()
    started = time.perf_counter()
    facts = {"server": database_facts(), "machine": machine_facts()}
    log(f"{facts['server']['customers']:,} customers, {facts['server']['appointments']:,} appointments; finding the pages")
    results, failures, jobs_done = [], [], {}
    with override_settings(ROOT_URLCONF=PLAIN_URLCONF):
        pages, plain_list, users = build_pages(plain_viewset)
        known = {page.name for page in pages} | set(jobs)
        wanted = [name.strip() for name in args.only.split(",")] if args.only else sorted(known)
        if set(wanted) - known:
            sys.exit(f"unknown measurements: {', '.join(sorted(set(wanted) - known))}; known: {', '.join(sorted(known))}")
        clients, api_clients = {}, {}
        for role, user in users.items():
            clients[role] = Client()
            clients[role].force_login(user)
            # The first request of a process fills Django's and Wagtail's caches.
            clients[role].get("/admin/")
            _token, secret = APIToken.create_token(user=user, name="scale benchmark")
            api_clients[role] = Client(headers={"Authorization": f"Bearer {secret}"})
        for page in pages:
            if page.name not in wanted:
                continue
            for role, params in page.params.items():
                entry = {"page": page.name, "role": role, "user": users[role].username, "notes": page.notes}
                if isinstance(params, str):
                    results.append({**entry, "skipped": params})
                    log(f"{page.name} as {role}: skipped ({params})")
                    continue
                with override_settings(**page.settings):
                    entry.update(time_page((api_clients if page.api else clients)[role], with_params(page.url, params), args.rounds))
                if role == MANAGER and page.baseline is not None:
                    baseline = time_page(clients[MANAGER], with_params(plain_list, page.baseline), args.rounds)
                    entry["baseline"] = baseline
                    if "median_ms" in baseline and "median_ms" in entry:
                        entry["ratio"] = round(entry["median_ms"] / baseline["median_ms"], 2)
                    if baseline["status"] != 200:
                        failures.append(f"{page.name} (plain baseline): HTTP {baseline['status']}")
                if entry["status"] != 200:
                    failures.append(f"{page.name} as {role}: HTTP {entry['status']}")
                elif entry["rows_shown"] == 0 and not page.may_be_empty:
                    failures.append(f"{page.name} as {role}: no rows shown")
                results.append(entry)
                log(f"{page.name} as {role}: HTTP {entry['status']}, {entry.get('median_ms', '-')} ms "
                    f"({entry.get('processor_median_ms', '-')} ms processor, {entry.get('database_median_ms', '-')} ms in the database), "
                    f"{entry['queries']} queries, {entry['rows_shown']} rows")
        if "export-100k" in wanted:
            log("export: the manager's listing, first 100,000 customers, CSV")
            jobs_done["export-100k"] = measure_export(users[MANAGER])
            log(f"export: {jobs_done['export-100k']}")
        if "export-segment" in wanted:
            log(f"export: the segment {SEGMENT_ONE_RULE!r}, every customer it finds, CSV, per role")
            jobs_done["export-segment"] = measure_segment_export(users)
            log(f"export: {jobs_done['export-segment']}")
        if "bulk-action-never-visited" in wanted:
            log("bulk action: tag every customer who never visited, as the background task does, per role (rolled back)")
            jobs_done["bulk-action-never-visited"] = measure_bulk_action(users)
            log(f"bulk action: {jobs_done['bulk-action-never-visited']}")
        if "process-10k-deletions" in wanted:
            log("deletion requests: processing the queue (last, in a transaction that is rolled back)")
            jobs_done["process-10k-deletions"] = measure_deletions()
            log(f"deletion requests: {jobs_done['process-10k-deletions']}")

    print_table(results)
    for name, job in jobs_done.items():
        print(f"{name}: {json.dumps(job)}")
    report = {
        "generated_by": "benchmarks/scale.py measure (generated file; do not edit)",
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "command": " ".join([os.path.relpath(sys.executable, REPO_ROOT), "benchmarks/scale.py", *sys.argv[1:]]),
        "rounds": args.rounds,
        "total_seconds": round(time.perf_counter() - started, 1),
        **facts,
        "pages": results,
        "jobs": jobs_done,
        "failures": failures,
    }
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2, default=str)
        handle.write("\n")
    log(f"results written to {os.path.relpath(args.json, REPO_ROOT)}")
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures))
        return 1
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="(re)create the database and fill it")
    make.add_argument("--customers", type=int, default=1_000_000)
    make.add_argument("--branches", type=int, default=50)
    make.add_argument("--appointments", type=int, default=2_000_000)
    timing = commands.add_parser("measure", help="time the admin pages, an export and the deletion queue")
    timing.add_argument("--rounds", type=int, default=6, help="timed requests per page and role, after one warm-up (6)")
    timing.add_argument("--only", help="comma-separated measurements (default: all)")
    timing.add_argument("--json", default=RESULTS_FILE, help="where to write the results (benchmarks/scale-results.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "generate":
        generate(args)
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
