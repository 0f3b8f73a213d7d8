#!/usr/bin/env python
"""The duplicate scan over 100,000 customers with planted duplicates (issue #15; docs/performance.md).

    .venv/bin/python benchmarks/duplicates.py generate [--customers 100000] [--branches 10]
    .venv/bin/python benchmarks/duplicates.py measure [--rounds 3] [--json benchmarks/duplicates-results.json]

Both use DATABASE_URL, by default postgres://postgres@127.0.0.1:5432/clientdb_dupes, and the
settings of benchmarks/settings.py.

``generate`` drops and re-creates that database (only a database named ``clientdb_dupes…``),
migrates it and fills it with ``COPY``: ten branches; customers 60 % shared with all
branches, 20 % with one branch, 20 % local to one; names drawn from the few hundred first and
last names of benchmarks/scale.py (common last names are common, so many people share a
name); unique emails on 90 %, phone numbers on 80 % (random mobile and landline numbers,
typed in various ways), a birthday on 70 % (1940–2009), and 5 % of the shared customers
with a branch's local values (a married name or a private email). 120 customers share the
placeholder email ``keine@email.de`` and 150 the birthday 1 January 1900.

Then about 2 % of the customers are entered a second time, each kind of duplicate as often
as the others:

* ``email``: the same email, the name typed with one mistake;
* ``phone``: the same phone number typed in another way, another name (a family member's phone);
* ``name_birthday``: the name typed with one mistake (a letter dropped, doubled, swapped or
  replaced, an umlaut written out, first and last name swapped), the same birthday, no
  email or phone in common;
* ``name_phone``: the name with one mistake and the same number with another prefix
  ("+43 660 …" for "+49 170 …"), no birthday;
* ``local_email``: a branch's local customer whose email is the local email that branch keeps
  for a shared customer.

``measure`` runs the scan (``duplicates.scan()``, what the ``clientdb_find_duplicates``
command and task run) ``--rounds`` times: the first on an empty list of pairs, the others
on the list it left (nothing new). Then it compares the pairs found with the planted ones
(found per kind; pairs found that nobody planted, by rule, with examples: people who
happen to share a similar name and a birthday), runs the same scan in Python (what SQLite
uses) on the same data and checks that it finds the same pairs, and times the lookup for
one new customer (the admin form's check) and for 1,000 new customers at once (a chunk of
the import preview).

The figures are printed and written to ``--json`` (generated; not meant to be committed).
"""

import argparse
import datetime
import json
import os
import random
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/clientdb_dupes"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)

from benchmarks.run import ensure_database, log, machine_facts, server_facts, settle  # noqa: E402
from benchmarks.scale import (  # noqa: E402
    EMAIL_DOMAINS,
    FIRST_MAILBOX,
    FIRST_NAMES,
    LAST_MAILBOX,
    LAST_NAME_TOTALS,
    LAST_NAMES,
    Table,
    bulk_load,
    weighted_pick,
)

RESULTS_FILE = os.path.join(HERE, "duplicates-results.json")
SEED = 20261130
BATCH = 20_000
KINDS = ["email", "phone", "name_birthday", "name_phone", "local_email"]
#: Share of the customers entered a second time.
PLANTED_SHARE = 0.02
PLACEHOLDER_EMAIL, PLACEHOLDER_EMAIL_COUNT = "keine@email.de", 120
PLACEHOLDER_BIRTHDAY, PLACEHOLDER_BIRTHDAY_COUNT = datetime.date(1900, 1, 1), 150
MOBILE = ["170", "171", "172", "173", "175", "176", "177", "178", "179", "151", "152", "157", "160", "162", "163"]
AREA = ["30", "40", "89", "221", "69", "711", "211", "231", "201", "421"]

ALL, SOME, LOCAL = 0, 1, 2


def typed(rng, e164):
    """An E.164 German number as people type it."""
    national = "0" + e164[3:]
    choice = rng.randrange(4)
    if choice == 0:
        return f"+49 {e164[3:6]} {e164[6:]}"
    if choice == 1:
        return f"{national[:4]} {national[4:]}"
    if choice == 2:
        return f"{national[:4]}/{national[4:]}"
    return e164


def misspelt(rng, first, last):
    """The name with one mistake people make."""
    umlauts = {"ü": "ue", "ö": "oe", "ä": "ae", "ß": "ss", "Ü": "Ue", "Ö": "Oe", "Ä": "Ae"}
    choice = rng.randrange(6)
    if choice == 0:
        return last, first
    if choice == 1 and any(ch in umlauts for ch in first + last):
        return "".join(umlauts.get(ch, ch) for ch in first), "".join(umlauts.get(ch, ch) for ch in last)
    which = rng.randrange(2)
    if len([first, last][which]) < 4:
        which = 0 if len(first) >= len(last) else 1
    word = [first, last][which]
    if len(word) < 3:
        return (first + word[-1], last) if which == 0 else (first, last + word[-1])
    i = rng.randrange(1, len(word) - 1)
    if choice in (1, 2):
        word = word[:i] + word[i + 1 :]  # a letter dropped
    elif choice == 3:
        word = word[:i] + word[i] + word[i:]  # a letter doubled
    elif choice == 4:
        word = word[:i] + word[i + 1] + word[i] + word[i + 2 :]  # two letters swapped
    else:
        word = word[:i] + rng.choice("aeinrst") + word[i + 1 :]  # a letter replaced
    return (word, last) if which == 0 else (first, word)


class Generator:
    CUSTOMER_FIELDS = (
        "id", "first_name", "last_name", "email", "phone_raw", "phone", "notes", "birthday", "marketing_consent",
        "attributes", "source", "external_id", "home_branch", "shared_with_all_branches", "created_at", "updated_at",
        "version", "bookings_total",
    )
    OVERRIDE_FIELDS = ("customer", "branch", "last_name", "email", "attributes", "updated_at", "version")

    def __init__(self, branch_ids, customers):
        from django.utils import timezone

        from wagtail_clientdb.models import Customer, CustomerOverride

        self.rng = random.Random(SEED)
        self.branch_ids = branch_ids
        self.customers = customers
        self.now = timezone.now()
        self.customer = Table(Customer, self.CUSTOMER_FIELDS)
        self.branch_links = Table(Customer.branches.through, ("customer", "branch"))
        self.local_values = Table(CustomerOverride, self.OVERRIDE_FIELDS)
        self.originals = customers - int(customers * PLANTED_SHARE)
        #: (original id, twin id, kind); each original is entered twice at most.
        self.planted = []
        self.twinned = set()
        #: id → (first, last, email, e164, birthday, scope, branch index, local email)
        self.people = {}
        self.used_numbers = set()

    @property
    def tables(self):
        return [self.customer, self.branch_links, self.local_values]

    def number(self):
        rng = self.rng
        while True:
            if rng.random() < 0.7:
                e164 = f"+49{rng.choice(MOBILE)}{rng.randrange(1_000_000, 99_999_999):08d}"[:14]
            else:
                area = rng.choice(AREA)
                e164 = f"+49{area}{rng.randrange(1_000_000, 9_999_999)}"
            if e164 not in self.used_numbers:
                self.used_numbers.add(e164)
                return e164

    def batches(self):
        for first in range(1, self.customers + 1, BATCH):
            rows = {table: [] for table in self.tables}
            for pk in range(first, min(first + BATCH, self.customers + 1)):
                if pk <= self.originals:
                    self.add_original(pk, rows)
                else:
                    self.add_twin(pk, rows)
            yield rows

    def row(self, pk, first, last, email, phone_raw, phone, birthday, scope, branch):
        return (
            pk, first, last, email, phone_raw, phone, "", birthday, False, "{}", "manual", "",
            self.branch_ids[branch] if scope == LOCAL else None, scope == ALL, self.now, self.now, 1, 0,
        )

    def add_original(self, pk, rows):
        rng = self.rng
        draw = rng.random()
        scope = ALL if draw < 0.6 else SOME if draw < 0.8 else LOCAL
        branch = rng.randrange(len(self.branch_ids))
        if scope == SOME:
            rows[self.branch_links].append((pk, self.branch_ids[branch]))
        f, l = rng.randrange(len(FIRST_NAMES)), weighted_pick(rng, LAST_NAME_TOTALS)
        first, last = FIRST_NAMES[f], LAST_NAMES[l]
        email = ""
        if pk <= PLACEHOLDER_EMAIL_COUNT:
            email = PLACEHOLDER_EMAIL
        elif rng.random() < 0.9:
            email = f"{FIRST_MAILBOX[f]}.{LAST_MAILBOX[l]}.{pk}@{EMAIL_DOMAINS[pk % len(EMAIL_DOMAINS)]}"
        e164 = self.number() if rng.random() < 0.8 else ""
        birthday = None
        if PLACEHOLDER_EMAIL_COUNT < pk <= PLACEHOLDER_EMAIL_COUNT + PLACEHOLDER_BIRTHDAY_COUNT:
            birthday = PLACEHOLDER_BIRTHDAY
        elif rng.random() < 0.7:
            birthday = datetime.date(1940, 1, 1) + datetime.timedelta(days=rng.randrange(70 * 365))
        local_email = None
        if scope != LOCAL and rng.random() < 0.05 / 0.8:
            if rng.random() < 0.5:
                local_email = f"{FIRST_MAILBOX[f]}.private.{pk}@example.net"
                rows[self.local_values].append((pk, self.branch_ids[branch], None, local_email, "{}", self.now, 1))
            else:
                married = LAST_NAMES[weighted_pick(rng, LAST_NAME_TOTALS)]
                rows[self.local_values].append((pk, self.branch_ids[branch], married, None, "{}", self.now, 1))
        self.people[pk] = (first, last, email, e164, birthday, scope, branch, local_email)
        rows[self.customer].append(self.row(pk, first, last, email, typed(rng, e164) if e164 else "", e164, birthday, scope, branch))

    def add_twin(self, pk, rows):
        rng = self.rng
        kind = KINDS[(pk - self.originals - 1) % len(KINDS)]
        while True:
            original = rng.randrange(PLACEHOLDER_EMAIL_COUNT + PLACEHOLDER_BIRTHDAY_COUNT + 1, self.originals + 1)
            first, last, email, e164, birthday, scope, branch, local_email = self.people[original]
            usable = {
                "email": bool(email),
                "phone": bool(e164),
                "name_birthday": bool(birthday),
                "name_phone": bool(e164),
                "local_email": bool(local_email),
            }[kind]
            if usable and original not in self.twinned:
                self.twinned.add(original)
                break
        # The twin is entered where the original is seen: the same branch.
        twin_scope = LOCAL if kind == "local_email" else scope
        new_first, new_last = misspelt(rng, first, last)
        new_email, new_e164, new_raw, new_birthday = "", "", "", None
        if kind == "email":
            new_email = email
        elif kind == "phone":
            new_first = FIRST_NAMES[rng.randrange(len(FIRST_NAMES))]
            new_last = last
            new_e164, new_raw = e164, typed(rng, e164)
        elif kind == "name_birthday":
            new_birthday = birthday
        elif kind == "name_phone":
            new_e164 = "+43660" + e164[-7:]
            new_raw = f"+43 660 {e164[-7:]}"
        else:
            new_first, new_last, new_email = first, last, local_email
        if twin_scope == SOME:
            rows[self.branch_links].append((pk, self.branch_ids[branch]))
        self.planted.append((original, pk, kind))
        rows[self.customer].append(self.row(pk, new_first, new_last, new_email, new_raw, new_e164, new_birthday, twin_scope, branch))


def generate(args):
    import dj_database_url

    name = dj_database_url.parse(os.environ["DATABASE_URL"])["NAME"]
    if not name.startswith("clientdb_dupes"):
        sys.exit(f"generate drops and re-creates its database; {name!r} is not a clientdb_dupes… database")
    started = time.perf_counter()
    log(f"database {ensure_database(fresh=True)}: created; migrating")
    import django
    from django.core.management import call_command
    from django.db import connection

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    from django.contrib.auth import get_user_model

    from wagtail_clientdb.models import Branch

    branches = Branch.objects.bulk_create(
        Branch(name=f"Branch {n:02d}", slug=f"branch-{n:02d}", timezone="Europe/Berlin") for n in range(1, args.branches + 1)
    )
    get_user_model().objects.create_superuser("manager", "manager@example.com", "manager")
    data = Generator([b.pk for b in branches], args.customers)
    with bulk_load([table.name for table in data.tables]):
        for batch in data.batches():
            for table, rows in batch.items():
                table.write(rows)
        with connection.cursor() as cursor:
            cursor.execute("SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)", [data.customer.name, args.customers])
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE benchmark_planted (original bigint, twin bigint, kind text)")
        with cursor.copy("COPY benchmark_planted FROM STDIN") as copy:
            for row in data.planted:
                copy.write_row(row)
    settle()
    log(
        f"{data.customer.rows:,} customers ({len(data.planted):,} planted duplicates), "
        f"{data.branch_links.rows:,} branch links, {data.local_values.rows:,} with local values, "
        f"in {time.perf_counter() - started:.1f} s"
    )


def timed(function, *args):
    started = time.perf_counter()
    value = function(*args)
    return value, time.perf_counter() - started


def measure(args):
    import django

    django.setup()
    from django.db import connection

    from wagtail_clientdb import duplicates, scope
    from wagtail_clientdb.models import Customer, DuplicatePair, DuplicateReason

    started = time.perf_counter()
    facts = {"machine": machine_facts(), "server": server_facts()}
    customers = Customer.objects.count()
    with connection.cursor() as cursor:
        cursor.execute("SELECT original, twin, kind FROM benchmark_planted")
        planted = {(min(o, t), max(o, t)): kind for o, t, kind in cursor.fetchall()}
    log(f"{customers:,} customers, {len(planted):,} planted duplicates")

    DuplicatePair.objects.all().delete()
    settle()
    rounds = []
    for number in range(args.rounds):
        result = duplicates.scan()
        rounds.append(result.__dict__)
        log(f"scan {number + 1}: {result.seconds:.2f} s, {result.found:,} pairs ({result.new:,} new, {result.gone:,} gone)")

    pairs = {}
    for pair_id, a, b in DuplicatePair.objects.values_list("pk", "customer_a_id", "customer_b_id"):
        pairs[pair_id] = (a, b)
    rules = {}
    for pair_id, rule in DuplicateReason.objects.values_list("pair_id", "rule"):
        rules.setdefault(pairs[pair_id], set()).add(rule)
    found = set(pairs.values())
    by_kind = {kind: {"planted": 0, "found": 0} for kind in KINDS}
    for pair, kind in planted.items():
        by_kind[kind]["planted"] += 1
        by_kind[kind]["found"] += pair in found
    unplanted = sorted(pair for pair in found if pair not in planted)
    unplanted_rules = {}
    for pair in unplanted:
        for rule in rules[pair]:
            unplanted_rules[rule] = unplanted_rules.get(rule, 0) + 1
    names = dict(
        (pk, f"{first} {last} {birthday or ''}".strip())
        for pk, first, last, birthday in Customer.objects.filter(
            pk__in=[pk for pair in unplanted[:10] for pk in pair]
        ).values_list("pk", "first_name", "last_name", "birthday")
    )
    examples = [f"{names[a]} / {names[b]}: {', '.join(sorted(rules[(a, b)]))}" for a, b in unplanted[:10]]
    for kind, counts in by_kind.items():
        log(f"planted {kind}: {counts['found']} of {counts['planted']} found")
    log(f"pairs nobody planted: {len(unplanted):,} ({unplanted_rules})")

    log("the same scan in Python (as on SQLite), on the same data")
    in_python, python_seconds = timed(lambda: duplicates.found_in_python(duplicates.all_keys()))
    same = set(in_python) == found
    log(f"python scan: {python_seconds:.2f} s, {len(in_python):,} pairs, the same pairs as the SQL scan: {same}")

    viewer = scope.Viewer(None, True)
    rng = random.Random(SEED + 1)
    sample = rng.sample(sorted(planted), 100)
    twins = {pk: c for pk, c in ((c.pk, c) for c in Customer.objects.filter(pk__in=[t for _o, t in sample]))}

    def person(customer):
        return duplicates.Person(
            first_name=customer.first_name, last_name=customer.last_name, email=customer.email, phone=customer.phone,
            phone_raw=customer.phone_raw, birthday=customer.birthday,
        )

    people = [person(twins[t]) for _o, t in sample]
    people += [duplicates.Person(first_name="Nobody", last_name=f"Known{n}", email=f"nobody{n}@example.org",
                                 phone=f"+4915199{n:06d}", birthday=datetime.date(1970, 1, 1 + n % 28)) for n in range(100)]
    single = []
    for one in people:
        _found, seconds = timed(duplicates.find, viewer, [one])
        single.append(seconds * 1000)
    chunk = people * 5
    chunk_found, chunk_seconds = timed(duplicates.find, viewer, chunk)
    log(
        f"lookup of one new customer: median {statistics.median(single):.1f} ms (max {max(single):.1f}); "
        f"of {len(chunk):,} at once: {chunk_seconds * 1000:.0f} ms"
    )

    report = {
        "generated_by": "benchmarks/duplicates.py measure (generated file; do not edit)",
        "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "customers": customers,
        "planted": len(planted),
        "scan_rounds": rounds,
        "pairs_found": len(found),
        "planted_found_by_kind": by_kind,
        "unplanted_pairs": len(unplanted),
        "unplanted_by_rule": unplanted_rules,
        "unplanted_examples": examples,
        "python_scan_seconds": round(python_seconds, 2),
        "python_scan_same_pairs": same,
        "lookup_one_ms_median": round(statistics.median(single), 2),
        "lookup_one_ms_max": round(max(single), 2),
        "lookup_chunk": {"people": len(chunk), "ms": round(chunk_seconds * 1000, 1),
                         "with_matches": sum(1 for matches in chunk_found if matches)},
        "total_seconds": round(time.perf_counter() - started, 1),
        **facts,
    }
    with open(args.json, "w") as handle:
        json.dump(report, handle, indent=2, default=str)
        handle.write("\n")
    print(json.dumps({k: v for k, v in report.items() if k not in ("machine", "server")}, indent=2, default=str))
    return 0


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("generate", help="(re)create the database and fill it")
    make.add_argument("--customers", type=int, default=100_000)
    make.add_argument("--branches", type=int, default=10)
    timing = commands.add_parser("measure", help="time the duplicate scan and the lookups")
    timing.add_argument("--rounds", type=int, default=3, help="scans (3): the first on an empty list, then again")
    timing.add_argument("--json", default=RESULTS_FILE, help="where to write the results (benchmarks/duplicates-results.json)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "generate":
        generate(args)
        return 0
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
