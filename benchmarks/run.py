#!/usr/bin/env python
"""Benchmarks of the customer import and export against plain baselines (docs/performance.md).

    .venv/bin/python benchmarks/run.py [--rows 100000] [--default-rows 5000]
        [--memory-rows 1000000] [--export-rows 1000000] [--quick] [--only NAME,...] [--profile]
        [--repeat N] [--profile-only] [--code REF] [--busy-core]

The parent process creates and migrates the benchmark database (DATABASE_URL, default
postgres://postgres@127.0.0.1:5432/clientdb_bench), writes the input files to a temporary
directory, and then runs every seeding step and every measurement in a fresh subprocess
(``run.py --one NAME ...``), so that the peak RSS of each measurement is its own. Customer
tables are truncated between measurements. A summary is printed and the figures are
written to benchmarks/results.json (generated; not meant to be committed).

The app's code is read from the working tree, or with ``--code REF`` from a snapshot of
that commit (``git archive``, into the temporary directory), so that a run measures one
version even while the working tree changes. Every subprocess records a fingerprint of
the code it imported; a run whose fingerprints differ is flagged.
"""

import argparse
import contextlib
import csv
import datetime
import hashlib
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
if REPO_ROOT not in sys.path:
    sys.path.insert(0, REPO_ROOT)
if os.environ.get("BENCH_CODE_DIR"):
    # A snapshot of wagtail_clientdb (--code REF) comes before the working tree.
    sys.path.insert(0, os.environ["BENCH_CODE_DIR"])
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/clientdb_bench"
os.environ.setdefault("DATABASE_URL", DEFAULT_DATABASE_URL)

RESULTS_FILE = os.path.join(HERE, "results.json")
BENCH_USERNAME = "bench"
GROUP_NAME = "VIP"
TAGS_CELL = "regular, blonde"
HEADERS = ["First name", "Last name", "Email", "Phone", "Tags", "Groups", "Notes"]
#: The columns of the default ModelResource, in the CSV's column order (Tags and Groups are ignored by it).
DEFAULT_RESOURCE_HEADERS = ["first_name", "last_name", "email", "phone_raw", "tags", "groups", "notes"]
#: The columns the plain export writer writes (the scalar columns of the app's export).
PLAIN_EXPORT_FIELDS = [
    "first_name", "last_name", "email", "phone", "notes", "birthday",
    "marketing_consent", "source", "external_id", "created_at",
]
SEED_BATCH = 5000
#: Every n-th customer seeded for the export gets a tag and a group.
EXPORT_TAGGED_EVERY = 10

TARGETS = {
    "import_vs_plain_bulk": 0.5,
    "import_vs_default_resource": 10.0,
    "import_memory_rss_mb": 400.0,
    "export_vs_plain_writer": 0.5,
    "export_rss_mb": 200.0,
}


# --- Input data (no Django needed) ---------------------------------------------------------------------


def existing_phone(k):
    return f"+49 30 {12000000 + k}"


def existing_phone_e164(k):
    return f"+4930{12000000 + k}"


def new_phone(i):
    return f"+49 151 {10000000 + i}"


def new_phone_e164(i):
    return f"+49151{10000000 + i}"


def import_row(i):
    """Row ``i`` (0-based) of an import file. Even rows carry the email and phone of existing
    customer ``i`` (seeded by ``seed-existing``), so they match and update it; odd rows are
    new people."""
    if i % 2 == 0:
        email, phone = f"customer{i}@example.com", existing_phone(i)
    else:
        email, phone = f"new{i}@example.com", new_phone(i)
    return [f"First{i}", f"Last{i}", email, phone, TAGS_CELL, GROUP_NAME, f"Imported note {i}"]


def write_csv(path, rows):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADERS)
        for i in range(rows):
            writer.writerow(import_row(i))


def write_xlsx(path, rows):
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Customers")
    sheet.append(HEADERS)
    for i in range(rows):
        sheet.append(import_row(i))
    workbook.save(path)


# --- Helpers used in the subprocesses ----------------------------------------------------------------


def rss_mb():
    """Current resident set size in MiB (Linux)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(who=resource.RUSAGE_SELF):
    """Peak resident set size of this process in MiB (ru_maxrss is in KiB on Linux); with
    ``RUSAGE_CHILDREN``, that of its largest finished child process (the import's helper)."""
    return resource.getrusage(who).ru_maxrss / 1024


def log(message):
    # UTC: django.setup() changes the process's local time zone (TIME_ZONE).
    print(f"[{datetime.datetime.now(datetime.UTC):%H:%M:%S}Z] {message}", file=sys.stderr, flush=True)


def code_fingerprint():
    """Where the imported wagtail_clientdb lives, and a hash of its Python files and templates."""
    import wagtail_clientdb

    package = os.path.dirname(os.path.abspath(wagtail_clientdb.__file__))
    digest = hashlib.sha256()
    for folder, dirs, files in os.walk(package):
        dirs[:] = sorted(d for d in dirs if d != "__pycache__")
        for name in sorted(files):
            if name.endswith((".py", ".html")):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, package).encode())
                with open(path, "rb") as handle:
                    digest.update(handle.read())
    return package, digest.hexdigest()[:16]


def bench_user():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.get(username=BENCH_USERNAME)


def settle():
    """After seeding: statistics for the planner, and nothing left for autovacuum or the
    checkpointer to do with the seeded rows while a measurement runs (it did, here, taking
    a core from whichever measurement came next)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
        cursor.execute("CHECKPOINT")


def count_lines(path):
    lines = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            lines += chunk.count(b"\n")
    return lines


def _memory_of(pid):
    """(RSS, PSS) of a process in MiB, from /proc; PSS shares each page among the processes using it."""
    figures = {}
    with open(f"/proc/{pid}/smaps_rollup") as rollup:
        for line in rollup:
            key, _sep, rest = line.partition(":")
            if key in ("Rss", "Pss"):
                figures[key] = int(rest.split()[0]) / 1024
    return figures.get("Rss", 0.0), figures.get("Pss", 0.0)


def _children():
    pids = set()
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/children") as children:
            pids.update(children.read().split())
    return pids


class MemorySampler:
    """Samples this process and its children (the import's helper) every second: the peak
    of their RSS added up (pages they share count twice) and of their PSS added up (the
    memory they take together)."""

    def __init__(self):
        self.peak_rss = self.peak_pss = 0.0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stopped.wait(1.0):
            rss = pss = 0.0
            for pid in ["self", *_children()]:
                with contextlib.suppress(OSError):
                    process_rss, process_pss = _memory_of(pid)
                    rss, pss = rss + process_rss, pss + process_pss
            self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stopped.set()
        self.thread.join()
        return False


class Measurement:
    """Times one block of work; the result dict is what the subprocess reports."""

    def __init__(self, name, rows):
        self.result = {"name": name, "rows": rows}
        self.memory = MemorySampler()

    def __enter__(self):
        self.result["rss_before_mb"] = round(rss_mb(), 1)
        self.cpu = cpu_seconds()
        self.memory.__enter__()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        seconds = time.perf_counter() - self.start
        self.memory.__exit__(*exc)
        self.result["sampled_peak_rss_all_mb"] = round(self.memory.peak_rss, 1)
        self.result["sampled_peak_pss_all_mb"] = round(self.memory.peak_pss, 1)
        self.result["seconds"] = round(seconds, 3)
        self.result["rows_per_s"] = round(self.result["rows"] / seconds, 1) if seconds else None
        # CPU time of this Python process and its helper (the database server's time is not in it).
        self.result["python_cpu_seconds"] = round(cpu_seconds() - self.cpu, 3)
        return False


def cpu_seconds():
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


# --- Seeding steps -------------------------------------------------------------------------------------


def _bulk_create_in_batches(make, count):
    from wagtail_clientdb.models import Customer

    created = []
    for start in range(0, count, SEED_BATCH):
        batch = [make(k) for k in range(start, min(start + SEED_BATCH, count))]
        created.extend(c.pk for c in Customer.objects.bulk_create(batch, batch_size=SEED_BATCH))
    return created


def step_seed_existing(args):
    """``count`` existing customers for the import runs: customer{k}@example.com, +49 30 ... ."""
    from wagtail_clientdb.models import Customer

    def make(k):
        return Customer(
            first_name=f"First{k}",
            last_name=f"Last{k}",
            email=f"customer{k}@example.com",
            phone_raw=existing_phone(k),
            phone=existing_phone_e164(k),
            notes="Seeded",
            shared_with_all_branches=True,
        )

    start = time.perf_counter()
    _bulk_create_in_batches(make, args.count)
    settle()
    return {"name": "seed-existing", "rows": args.count, "seconds": round(time.perf_counter() - start, 3)}


def step_seed_export(args):
    """``count`` customers for the export runs; every tenth has a tag and a group."""
    from wagtail_clientdb.models import Customer, CustomerGroup, CustomerTag, TaggedCustomer

    def make(k):
        return Customer(
            first_name=f"First{k}",
            last_name=f"Last{k % 5000}",
            email=f"export{k}@example.com",
            phone_raw=new_phone(k),
            phone=new_phone_e164(k),
            notes=f"Note {k}",
            marketing_consent=k % 3 == 0,
            shared_with_all_branches=True,
        )

    start = time.perf_counter()
    pks = _bulk_create_in_batches(make, args.count)
    tag, _created = CustomerTag.all_tags.get_or_create(name="regular")
    group = CustomerGroup.objects.get(name=GROUP_NAME)
    tagged = pks[::EXPORT_TAGGED_EVERY]
    TaggedCustomer.objects.bulk_create(
        (TaggedCustomer(content_object_id=pk, tag_id=tag.pk) for pk in tagged), batch_size=SEED_BATCH
    )
    through = Customer.groups.through
    through.objects.bulk_create(
        (through(customer_id=pk, customergroup_id=group.pk) for pk in tagged), batch_size=SEED_BATCH
    )
    settle()
    return {"name": "seed-export", "rows": args.count, "seconds": round(time.perf_counter() - start, 3)}


# --- Measurements ----------------------------------------------------------------------------------------


def measure_import_plain_bulk(args):
    """The ORM's limit: csv.reader → Customer objects → bulk_create(batch_size=1000). No
    normalisation, no validation, no matching, no tags or groups."""
    from wagtail_clientdb.models import Customer

    with Measurement("import-plain-bulk", args.rows) as measured:
        with open(args.file, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            next(reader)
            customers = [
                Customer(first_name=r[0], last_name=r[1], email=r[2], phone_raw=r[3], notes=r[6]) for r in reader
            ]
        Customer.objects.bulk_create(customers, batch_size=1000)
    assert len(customers) == args.rows, (len(customers), args.rows)
    return measured.result


def measure_import_default_resource(args):
    """What most projects use: a ModelResource with default options, on the first rows of the same CSV."""
    import tablib
    from import_export import resources

    from wagtail_clientdb.models import Customer

    class PlainCustomerResource(resources.ModelResource):
        class Meta:
            model = Customer
            # "id" is listed because the default import_id_fields is ["id"] and must be a field;
            # the file has no id column, so every row is a new customer.
            fields = ("id", "first_name", "last_name", "email", "phone_raw", "notes")

    with open(args.file, newline="", encoding="utf-8") as handle:
        lines = [line for _n, line in zip(range(args.rows + 1), handle)]
    text = "".join(lines)
    with Measurement("import-default-resource", args.rows) as measured:
        dataset = tablib.Dataset().load(text, format="csv")
        # ModelResource reads columns named like the model fields.
        dataset.headers = DEFAULT_RESOURCE_HEADERS
        result = PlainCustomerResource().import_data(dataset, dry_run=False)
    if result.has_errors() or result.has_validation_errors():
        errors = [str(error.error) for _line, errors in result.row_errors()[:3] for error in errors]
        errors += [str(row.error_dict) for row in result.invalid_rows[:3]]
        raise RuntimeError(f"the default resource refused rows: {result.totals} {errors}")
    measured.result["counts"] = {key: value for key, value in result.totals.items() if value}
    return measured.result


def measure_import_clientdb(args, name, *, dry_run=False):
    """The app's engine, as the admin's background task runs it: inspect the upload, then import
    (or, with ``dry_run``, preview: what the import page shows before the user confirms)."""
    from django.core.files import File

    from wagtail_clientdb.imports import runner
    from wagtail_clientdb.models import ImportJob

    job = ImportJob(created_by=bench_user(), original_name=os.path.basename(args.file), all_branches=True)
    with open(args.file, "rb") as handle:
        job.file.save(os.path.basename(args.file), File(handle), save=False)
    job.save()
    with Measurement(name, args.rows) as measured:
        start = time.perf_counter()
        data_rows = runner.inspect_upload(job)
        inspected = time.perf_counter()
        if runner.needs_mapping(job, data_rows):
            raise RuntimeError(f"columns not recognised: {job.headers} -> {job.targets}")
        outcome = runner.run(job, dry_run=dry_run)
        ran = time.perf_counter()
        runner.finish(job, outcome, dry_run=dry_run)
    measured.result["inspect_seconds"] = round(inspected - start, 3)
    measured.result["run_seconds"] = round(ran - inspected, 3)
    measured.result["finish_seconds"] = round(measured.result["seconds"] - (ran - start), 3)
    measured.result["counts"] = dict(outcome.counts)
    measured.result["format"] = job.format
    if outcome.counts["invalid"] or outcome.refused_everything:
        measured.result["invalid_examples"] = outcome.invalid_rows[:5]
        raise RuntimeError(f"the import refused rows: {outcome.counts} {outcome.invalid_rows[:5]}")
    if outcome.total != args.rows:
        raise RuntimeError(f"{outcome.total} rows counted, {args.rows} in the file")
    if args.expect_updates is not None and outcome.counts["updated"] != args.expect_updates:
        raise RuntimeError(f"expected {args.expect_updates} updated customers, got {outcome.counts}")
    job.file.delete(save=False)
    return measured.result


#: Records per call of the API's bulk import (the most one call takes).
API_CALL_RECORDS = 10_000


def api_record(i):
    """Row ``i`` of the import file as a record of the API's bulk import."""
    first_name, last_name, email, phone, tags, group, notes = import_row(i)
    return {
        "first_name": first_name, "last_name": last_name, "email": email, "phone": phone,
        "tags": [tag.strip() for tag in tags.split(",")], "groups": [group], "notes": notes,
    }


def measure_import_clientdb_api(args):
    """The API's bulk import of the file's rows, in calls of 10,000 records, through Django's
    request handling with a bearer token (the client's JSON encoding is done before the clock
    starts, its decoding of the answers after it stops).

    The process has answered one request of the API before: a server loads its URLs, the API's
    routes and their schemas once, on its first request, not on each bulk call (0.04 s here,
    2 % of a call, which the file import, run by a worker without URLs, never pays)."""
    from django.test import Client
    from wagtail.models import APIToken

    _token, secret = APIToken.create_token(user=bench_user(), name="benchmark")
    bodies = [
        json.dumps({"customers": [api_record(i) for i in range(start, min(start + API_CALL_RECORDS, args.rows))]})
        for start in range(0, args.rows, API_CALL_RECORDS)
    ]
    client = Client(headers={"Authorization": f"Bearer {secret}"})
    if client.get("/api/v3/clientdb/customers/", {"limit": 1}).status_code != 200:
        raise RuntimeError("the API refused the benchmark's token")
    counts = dict.fromkeys(("created", "updated", "unchanged", "errors"), 0)
    answers = []
    with Measurement("import-clientdb-api", args.rows) as measured:
        for body in bodies:
            response = client.post("/api/v3/clientdb/customers/bulk/", body, content_type="application/json")
            if response.status_code != 200:
                raise RuntimeError(f"the API answered {response.status_code}: {response.content[:500]!r}")
            answers.append(response.content)
    # The client's decoding of the answers, like its encoding of the records, is not the server's time.
    for content in answers:
        answer = json.loads(content)
        for key in counts:
            counts[key] += answer[key]
    measured.result["calls"] = len(bodies)
    measured.result["counts"] = counts
    if counts["updated"] != args.expect_updates or counts["created"] != args.rows - args.expect_updates:
        raise RuntimeError(f"expected {args.expect_updates} updated customers, got {counts}")
    return measured.result


def measure_export_plain_writer(args):
    """A plain csv.writer over values_list().iterator(): no prefetches, no formatting."""
    from wagtail_clientdb.models import Customer

    output = os.path.join(args.workdir, "export-plain.csv")
    with Measurement("export-plain-writer", args.rows) as measured, open(output, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(PLAIN_EXPORT_FIELDS)
        for row in Customer.objects.values_list(*PLAIN_EXPORT_FIELDS).iterator(chunk_size=2000):
            writer.writerow(row)
    return _check_export(measured.result, output, args.rows)


def measure_export_clientdb(args):
    """The app's export: the manager's listing queryset written by export.write_file."""
    from django.http import QueryDict

    from wagtail_clientdb import export, listing, scope

    output = os.path.join(args.workdir, "export-clientdb.csv")
    viewer = scope.Viewer(bench_user(), True)
    with Measurement("export-clientdb-csv", args.rows) as measured:
        queryset = listing.customers_as_listed(viewer, QueryDict())
        with open(output, "wb") as handle:
            export.write_file(queryset, "csv", handle, viewer=viewer)
    return _check_export(measured.result, output, args.rows)


def _check_export(result, output, rows):
    lines = count_lines(output)
    if lines != rows + 1:
        raise RuntimeError(f"{output} has {lines} lines, expected {rows + 1}")
    result["file_mb"] = round(os.path.getsize(output) / 2**20, 1)
    os.remove(output)
    return result


def _profiled(measure, title, filename):
    """Run ``measure()`` under cProfile; the top costs go to benchmarks/<filename> (``--profile``)."""
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    result = measure()
    profiler.disable()
    text = io.StringIO()
    stats = pstats.Stats(profiler, stream=text)
    code_dir, code_sha = code_fingerprint()
    text.write(f"{title}; wagtail_clientdb {code_sha}. Generated by benchmarks/run.py --profile.\n")
    text.write("Sorted by own time:\n")
    stats.sort_stats("tottime").print_stats(25)
    text.write("\nSorted by cumulative time:\n")
    stats.sort_stats("cumulative").print_stats(40)
    path = os.path.join(HERE, filename)
    with open(path, "w") as handle:
        # Paths relative to the repository (and to the snapshot of --code).
        handle.write(text.getvalue().replace(os.path.dirname(code_dir) + "/", "").replace(REPO_ROOT + "/", ""))
    result["profile_file"] = os.path.relpath(path, REPO_ROOT)
    result["note"] = "timed under cProfile (slower than without)"
    return result


def profile_import(args):
    return _profiled(
        lambda: measure_import_clientdb(args, "profile-import"),
        f"cProfile of the app's CSV import, {args.rows:,} rows (half of them updates)",
        "profile-import.txt",
    )


def profile_api(args):
    return _profiled(
        lambda: measure_import_clientdb_api(args),
        f"cProfile of the API's bulk import, {args.rows:,} records (half of them updates)",
        "profile-api.txt",
    )


def profile_export(args):
    return _profiled(
        lambda: measure_export_clientdb(args),
        f"cProfile of the app's CSV export, {args.rows:,} customers",
        "profile-export.txt",
    )


ONE = {
    "seed-existing": step_seed_existing,
    "seed-export": step_seed_export,
    "import-plain-bulk": measure_import_plain_bulk,
    "import-default-resource": measure_import_default_resource,
    "import-clientdb-csv": lambda args: measure_import_clientdb(args, "import-clientdb-csv"),
    "import-clientdb-xlsx": lambda args: measure_import_clientdb(args, "import-clientdb-xlsx"),
    "preview-clientdb-csv": lambda args: measure_import_clientdb(args, "preview-clientdb-csv", dry_run=True),
    "import-memory-1m": lambda args: measure_import_clientdb(args, "import-memory-1m"),
    "import-clientdb-api": measure_import_clientdb_api,
    "export-plain-writer": measure_export_plain_writer,
    "export-clientdb-csv": measure_export_clientdb,
    "profile-import": profile_import,
    "profile-api": profile_api,
    "profile-export": profile_export,
}


def run_one(args):
    """Subprocess entry point: one step, its result written as JSON to ``--result-file``."""
    import django

    django.setup()
    code_dir, code_sha = code_fingerprint()
    try:
        result = ONE[args.one](args)
        # An import of more than one chunk forks a helper process that checks rows. Its peak
        # is added to this process's: an upper bound, as pages they share count twice.
        result["peak_rss_main_mb"] = round(peak_rss_mb(), 1)
        result["peak_rss_helper_mb"] = round(peak_rss_mb(resource.RUSAGE_CHILDREN), 1)
        result["peak_rss_mb"] = round(result["peak_rss_main_mb"] + result["peak_rss_helper_mb"], 1)
        result["code_dir"], result["code_sha"] = code_dir, code_sha
        if code_fingerprint()[1] != code_sha:
            result["code_changed_during_step"] = True
    except BaseException:
        result = {"name": args.one, "error": traceback.format_exc()}
        with open(args.result_file, "w") as handle:
            json.dump(result, handle)
        raise
    with open(args.result_file, "w") as handle:
        json.dump(result, handle)


# --- The parent process -----------------------------------------------------------------------------------


def ensure_database(fresh):
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(os.environ["DATABASE_URL"])
    connect = {
        "host": config.get("HOST") or None,
        "port": config.get("PORT") or None,
        "user": config.get("USER") or None,
        "password": config.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **connect) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]).fetchone()
        if exists and fresh:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(config["NAME"])))
            exists = False
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(config["NAME"])))
    return config["NAME"]


def prepare_database():
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from wagtail_clientdb.models import CustomerGroup

    call_command("migrate", verbosity=0, interactive=False)
    User = get_user_model()
    if not User.objects.filter(username=BENCH_USERNAME).exists():
        User.objects.create_superuser(BENCH_USERNAME, "bench@example.com", "bench")
    CustomerGroup.objects.get_or_create(name=GROUP_NAME)


def reset_tables():
    """Empty the customer table and everything that refers to it, and the import jobs."""
    from django.db import connection

    from wagtail_clientdb.models import Customer, ImportJob

    with connection.cursor() as cursor:
        cursor.execute(f'TRUNCATE "{Customer._meta.db_table}", "{ImportJob._meta.db_table}" CASCADE')
        cursor.execute("CHECKPOINT")
    connection.close()


def server_facts():
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT version()")
        version = cursor.fetchone()[0]
        cursor.execute("SHOW shared_buffers")
        shared_buffers = cursor.fetchone()[0]
        cursor.execute("SHOW synchronous_commit")
        synchronous_commit = cursor.fetchone()[0]
    connection.close()
    return {"postgresql": version, "shared_buffers": shared_buffers, "synchronous_commit": synchronous_commit}


def machine_facts():
    from importlib.metadata import PackageNotFoundError, version

    cpu = ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), "")
    except OSError:
        pass
    memory = ""
    try:
        with open("/proc/meminfo") as info:
            memory = f"{int(info.readline().split()[1]) // 1024} MiB"
    except OSError:
        pass
    packages = {}
    for name in ("Django", "wagtail", "django-import-export", "tablib", "openpyxl", "python-calamine", "psycopg"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = "?"
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory": memory,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": packages,
    }


def git(*arguments):
    """Read-only git queries (rev-parse, diff --name-only, archive)."""
    return subprocess.run(["git", "-C", REPO_ROOT, *arguments], check=True, capture_output=True).stdout


def snapshot_code(ref, workdir):
    """Extract wagtail_clientdb at commit ``ref`` into ``workdir/code``; returns the commit and the folder."""
    import io
    import tarfile

    commit = git("rev-parse", "--verify", f"{ref}^{{commit}}").decode().strip()
    folder = os.path.join(workdir, "code")
    os.makedirs(folder)
    with tarfile.open(fileobj=io.BytesIO(git("archive", "--format=tar", commit, "wagtail_clientdb"))) as archive:
        archive.extractall(folder)
    return commit, folder


def code_facts(ref, commit):
    facts = {"source": f"snapshot of {ref} (git archive)" if ref else "working tree"}
    try:
        facts["commit"] = commit or git("rev-parse", "HEAD").decode().strip()
        facts["subject"] = git("log", "-1", "--format=%s", facts["commit"]).decode().strip()
        if not ref:
            changed = git("diff", "--name-only", "HEAD", "--", "wagtail_clientdb").decode().split()
            facts["uncommitted_changes"] = changed
    except (OSError, subprocess.CalledProcessError) as error:
        facts["git_error"] = str(error)
    return facts


def child(name, workdir, **options):
    """Run one step in a fresh interpreter; returns its result dict (with ``error`` on failure)."""
    result_file = os.path.join(workdir, f"result-{name}.json")
    command = [sys.executable, os.path.abspath(__file__), "--one", name, "--result-file", result_file, "--workdir", workdir]
    for key, value in options.items():
        if value is not None:
            command += [f"--{key.replace('_', '-')}", str(value)]
    log(f"{name}: {' '.join(os.path.relpath(c, REPO_ROOT) if c.startswith(REPO_ROOT) else c for c in command[1:])}")
    load_before = [round(x, 2) for x in os.getloadavg()]
    start = time.perf_counter()
    completed = subprocess.run(command, cwd=REPO_ROOT, check=False)
    wall = time.perf_counter() - start
    load_after = [round(x, 2) for x in os.getloadavg()]
    try:
        with open(result_file) as handle:
            result = json.load(handle)
    except (OSError, ValueError):
        result = {"name": name, "error": f"exit status {completed.returncode}, no result written"}
    result["wall_seconds"] = round(wall, 1)
    result["loadavg_1_5_15_before"], result["loadavg_1_5_15_after"] = load_before, load_after
    if completed.returncode and "error" not in result:
        result["error"] = f"exit status {completed.returncode}"
    if "error" in result:
        log(f"{name}: FAILED\n{result['error']}")
    elif "rows_per_s" in result:
        log(f"{name}: {result['rows']:,} rows in {result['seconds']:.1f} s = {result['rows_per_s']:,.0f} rows/s, "
            f"peak RSS {result['peak_rss_mb']:.0f} MB")
    else:
        log(f"{name}: done in {result.get('seconds', wall):.1f} s")
    return result


def aggregate(runs):
    """One measurement's repeats → the median run's figures, with all rates and the highest peak RSS."""
    import statistics

    failed = [run for run in runs if "error" in run]
    if failed:
        return {**failed[0], "repeats": len(runs), "runs": runs}
    ordered = sorted(runs, key=lambda run: run["rows_per_s"])
    result = dict(ordered[(len(ordered) - 1) // 2])
    rates = [run["rows_per_s"] for run in runs]
    result["rows_per_s"] = round(statistics.median(rates), 1)
    result["seconds"] = round(result["rows"] / result["rows_per_s"], 3)
    result["rows_per_s_min"], result["rows_per_s_max"] = min(rates), max(rates)
    result["peak_rss_mb"] = max(run["peak_rss_mb"] for run in runs)
    result["repeats"] = len(runs)
    result["runs"] = runs
    return result


def round_ratios(a, b):
    """The ratio within each round of repeats (a and b measured side by side)."""
    if not a or not b or "runs" not in a or "runs" not in b or "error" in a or "error" in b:
        return None
    return [round(x["rows_per_s"] / y["rows_per_s"], 3) for x, y in zip(a["runs"], b["runs"])]


def ratio(a, b):
    if not a or not b or "rows_per_s" not in a or "rows_per_s" not in b:
        return None
    return round(a["rows_per_s"] / b["rows_per_s"], 3)


def verdicts(results):
    """The issue's targets, each with the measured value and MET / NOT MET."""
    get = results.get
    checks = []

    def check(target, value, limit, holds):
        if value is None:
            checks.append({"target": target, "value": None, "limit": limit, "verdict": "NOT MEASURED"})
        else:
            checks.append({"target": target, "value": value, "limit": limit, "verdict": "MET" if holds(value) else "NOT MET"})

    for fmt in ("csv", "xlsx"):
        name = f"import-clientdb-{fmt}"
        check(f"{fmt.upper()} import rate / plain bulk_create rate >= 0.5",
              ratio(get(name), get("import-plain-bulk")), TARGETS["import_vs_plain_bulk"], lambda v: v >= 0.5)
        check(f"{fmt.upper()} import rate / default ModelResource rate >= 10",
              ratio(get(name), get("import-default-resource")), TARGETS["import_vs_default_resource"], lambda v: v >= 10)
    memory = get("import-memory-1m") or {}
    check(f"peak RSS importing {memory.get('rows', 0):,} CSV rows < 400 MB",
          memory.get("peak_rss_mb") if "error" not in memory else None, TARGETS["import_memory_rss_mb"], lambda v: v < 400)
    check("CSV export rate / plain csv.writer rate >= 0.5",
          ratio(get("export-clientdb-csv"), get("export-plain-writer")), TARGETS["export_vs_plain_writer"], lambda v: v >= 0.5)
    check("API bulk import rate / CSV file import rate >= 1",
          ratio(get("import-clientdb-api"), get("import-clientdb-csv")), 1.0, lambda v: v >= 1)
    exported = get("export-clientdb-csv") or {}
    check(f"peak RSS exporting {exported.get('rows', 0):,} customers < 200 MB",
          exported.get("peak_rss_mb") if "error" not in exported else None, TARGETS["export_rss_mb"], lambda v: v < 200)
    return checks


def print_summary(results, checks):
    print()
    print(f"{'measurement':<26} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'(min-max of repeats)':>22} "
          f"{'RSS at start MB':>16} {'peak RSS MB':>12}")
    for name, result in results.items():
        if "error" in result:
            print(f"{name:<26} {'FAILED':>10}")
            continue
        spread = f"{result['rows_per_s_min']:,.0f}-{result['rows_per_s_max']:,.0f}" if result["repeats"] > 1 else ""
        print(f"{name:<26} {result['rows']:>10,} {result['seconds']:>9.1f} {result['rows_per_s']:>10,.0f} {spread:>22} "
              f"{result['rss_before_mb']:>16.0f} {result['peak_rss_mb']:>12.0f}")
    print()
    for item in checks:
        value = "-" if item["value"] is None else item["value"]
        print(f"{item['verdict']:<12} {item['target']}: {value}")
    print()


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, help="rows of the import files and existing customers (100000)")
    parser.add_argument("--default-rows", type=int, help="rows for the default ModelResource (5000)")
    parser.add_argument("--memory-rows", type=int, help="rows of the memory import (1000000)")
    parser.add_argument("--export-rows", type=int, help="customers exported (1000000)")
    parser.add_argument("--quick", action="store_true", help="everything at 1/100 size (a smoke check)")
    parser.add_argument("--only", help="comma-separated measurements to run (default: all)")
    parser.add_argument("--repeat", type=int, default=1, help="rounds of the 100k imports and of the exports (median reported; 1)")
    parser.add_argument("--profile", action="store_true", help="also profile a 10,000-row CSV import and export with cProfile")
    parser.add_argument("--profile-only", action="store_true", help="only the --profile steps; results.json is not written")
    parser.add_argument("--fresh-db", action="store_true", help="drop and re-create the benchmark database first")
    parser.add_argument("--keep-files", action="store_true", help="keep the temporary directory with the input files")
    parser.add_argument("--results", default=RESULTS_FILE, help="where to write the JSON results")
    parser.add_argument(
        "--busy-core", action="store_true",
        help="keep one core busy with another process throughout (a server doing other work meanwhile)",
    )
    parser.add_argument("--code", metavar="REF", help="measure wagtail_clientdb as of this commit (e.g. HEAD), not the working tree")
    # Subprocess options.
    parser.add_argument("--one", choices=sorted(ONE), help=argparse.SUPPRESS)
    parser.add_argument("--result-file", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--count", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--expect-updates", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scale = 100 if args.quick else 1
    args.rows = args.rows or 100_000 // scale
    args.default_rows = args.default_rows or 5_000 // scale
    args.memory_rows = args.memory_rows or 1_000_000 // scale
    args.export_rows = args.export_rows or 1_000_000 // scale
    return args


MEASUREMENTS = [
    "import-plain-bulk",
    "import-default-resource",
    "import-clientdb-csv",
    "preview-clientdb-csv",
    "import-clientdb-xlsx",
    "import-clientdb-api",
    "import-memory-1m",
    "export-plain-writer",
    "export-clientdb-csv",
]


def main(argv=None):
    args = parse_args(argv)
    if args.one:
        run_one(args)
        return 0

    args.profile = args.profile or args.profile_only
    wanted = MEASUREMENTS if not args.only else [name.strip() for name in args.only.split(",")]
    if args.profile_only:
        wanted = []
    unknown = set(wanted) - set(MEASUREMENTS)
    if unknown:
        sys.exit(f"unknown measurements: {', '.join(sorted(unknown))}")
    if args.default_rows > args.rows:
        sys.exit("--default-rows must not exceed --rows")

    workdir = tempfile.mkdtemp(prefix="clientdb-bench-")
    os.environ["BENCH_MEDIA_ROOT"] = os.path.join(workdir, "media")
    started = time.perf_counter()
    busy = None
    try:
        if args.busy_core:
            # Another program taking one core for as long as the run lasts.
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            log(f"one core kept busy by process {busy.pid}")
        commit = None
        if args.code:
            commit, folder = snapshot_code(args.code, workdir)
            os.environ["BENCH_CODE_DIR"] = folder
            sys.path.insert(0, folder)
            log(f"measuring wagtail_clientdb at {commit[:10]} ({args.code}), extracted to {folder}")
        code = code_facts(args.code, commit)
        if code.get("uncommitted_changes"):
            log(f"note: uncommitted changes in {', '.join(code['uncommitted_changes'])} are measured too")
        database = ensure_database(args.fresh_db)
        import django

        django.setup()
        log(f"database {database}: migrating")
        prepare_database()
        facts = {"machine": machine_facts(), "server": server_facts(), "busy_core": args.busy_core}

        files = {}
        import_names = {
            "import-plain-bulk", "import-default-resource", "import-clientdb-csv", "preview-clientdb-csv", "import-clientdb-xlsx"
        }
        if import_names & set(wanted):
            files["csv"] = os.path.join(workdir, f"customers-{args.rows}.csv")
            log(f"writing {files['csv']}")
            write_csv(files["csv"], args.rows)
        if "import-clientdb-xlsx" in wanted:
            files["xlsx"] = os.path.join(workdir, f"customers-{args.rows}.xlsx")
            log(f"writing {files['xlsx']}")
            write_xlsx(files["xlsx"], args.rows)
        if "import-memory-1m" in wanted:
            files["memory"] = os.path.join(workdir, f"customers-{args.memory_rows}.csv")
            log(f"writing {files['memory']}")
            write_csv(files["memory"], args.memory_rows)
        file_sizes = {key: round(os.path.getsize(path) / 2**20, 1) for key, path in files.items()}

        runs = {}  # measurement → its repeats
        steps = []  # seeding, with timings
        updates = (args.rows + 1) // 2  # the even rows match existing customers

        def measure(name, **options):
            runs.setdefault(name, []).append(child(name, workdir, **options))

        # The 100k-row imports, interleaved round by round, each on a freshly seeded table.
        seeded = [
            ("import-plain-bulk", {"file": files.get("csv"), "rows": args.rows}),
            ("import-default-resource", {"file": files.get("csv"), "rows": args.default_rows}),
            ("import-clientdb-csv", {"file": files.get("csv"), "rows": args.rows, "expect_updates": updates}),
            ("preview-clientdb-csv", {"file": files.get("csv"), "rows": args.rows, "expect_updates": updates}),
            ("import-clientdb-xlsx", {"file": files.get("xlsx"), "rows": args.rows, "expect_updates": updates}),
            ("import-clientdb-api", {"rows": args.rows, "expect_updates": updates}),
        ]
        for _round in range(args.repeat):
            for name, options in seeded:
                if name in wanted:
                    reset_tables()
                    steps.append(child("seed-existing", workdir, count=args.rows))
                    measure(name, **options)
        if "import-memory-1m" in wanted:
            reset_tables()
            measure("import-memory-1m", file=files["memory"], rows=args.memory_rows, expect_updates=0)
        if {"export-plain-writer", "export-clientdb-csv"} & set(wanted):
            reset_tables()
            steps.append(child("seed-export", workdir, count=args.export_rows))
            for _round in range(args.repeat):
                for name in ("export-plain-writer", "export-clientdb-csv"):
                    if name in wanted:
                        measure(name, rows=args.export_rows)
        if args.profile:
            reset_tables()
            profile_rows = min(10_000, args.rows)
            profile_csv = os.path.join(workdir, f"customers-{profile_rows}.csv")
            write_csv(profile_csv, profile_rows)
            steps.append(child("seed-existing", workdir, count=profile_rows))
            measure("profile-import", file=profile_csv, rows=profile_rows, expect_updates=(profile_rows + 1) // 2)
            reset_tables()
            steps.append(child("seed-existing", workdir, count=profile_rows))
            measure("profile-api", rows=profile_rows, expect_updates=(profile_rows + 1) // 2)
            reset_tables()
            steps.append(child("seed-export", workdir, count=profile_rows))
            measure("profile-export", rows=profile_rows)
        reset_tables()
        results = {name: aggregate(repeats) for name, repeats in runs.items()}
        if args.profile_only:
            log("profiles written to benchmarks/profile-import.txt, profile-api.txt and profile-export.txt")
            return 1 if any("error" in r for r in results.values()) else 0

        checks = verdicts(results)
        every_run = [run for repeats in runs.values() for run in repeats] + steps
        shas = sorted({r["code_sha"] for r in every_run if "code_sha" in r})
        code["code_sha"] = shas[0] if len(shas) == 1 else shas
        code["changed_during_run"] = len(shas) > 1 or any(r.get("code_changed_during_step") for r in every_run)
        print_summary(results, checks)
        if code["changed_during_run"]:
            log("WARNING: wagtail_clientdb changed during the run; the figures mix code versions (use --code HEAD)")
        ratios = {
            "import_csv_vs_plain_bulk": ratio(results.get("import-clientdb-csv"), results.get("import-plain-bulk")),
            "import_xlsx_vs_plain_bulk": ratio(results.get("import-clientdb-xlsx"), results.get("import-plain-bulk")),
            "import_csv_vs_default_resource": ratio(results.get("import-clientdb-csv"), results.get("import-default-resource")),
            "import_xlsx_vs_default_resource": ratio(results.get("import-clientdb-xlsx"), results.get("import-default-resource")),
            "export_vs_plain_writer": ratio(results.get("export-clientdb-csv"), results.get("export-plain-writer")),
            "import_api_vs_csv": ratio(results.get("import-clientdb-api"), results.get("import-clientdb-csv")),
        }
        get = results.get
        per_round = {
            "import_csv_vs_plain_bulk": round_ratios(get("import-clientdb-csv"), get("import-plain-bulk")),
            "import_xlsx_vs_plain_bulk": round_ratios(get("import-clientdb-xlsx"), get("import-plain-bulk")),
            "import_csv_vs_default_resource": round_ratios(get("import-clientdb-csv"), get("import-default-resource")),
            "import_xlsx_vs_default_resource": round_ratios(get("import-clientdb-xlsx"), get("import-default-resource")),
            "export_vs_plain_writer": round_ratios(get("export-clientdb-csv"), get("export-plain-writer")),
            "import_api_vs_csv": round_ratios(get("import-clientdb-api"), get("import-clientdb-csv")),
        }
        report = {
            "generated_by": "benchmarks/run.py (generated file; do not edit)",
            "finished_at": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
            "command": " ".join([os.path.relpath(sys.executable, REPO_ROOT), "benchmarks/run.py", *(argv if argv is not None else sys.argv[1:])]),
            "total_seconds": round(time.perf_counter() - started, 1),
            "sizes": {
                "rows": args.rows,
                "existing_customers": args.rows,
                "default_rows": args.default_rows,
                "memory_rows": args.memory_rows,
                "export_rows": args.export_rows,
                "quick": args.quick,
                "repeat": args.repeat,
            },
            "input_files_mb": file_sizes,
            "code": code,
            **facts,
            "results": results,
            "ratios": ratios,
            "ratios_per_round": per_round,
            "targets": checks,
            "seeding": steps,
        }
        with open(args.results, "w") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
        log(f"results written to {os.path.relpath(args.results, REPO_ROOT)}; total {report['total_seconds']:.0f} s")
        return 1 if any("error" in r for r in results.values()) or any("error" in s for s in steps) else 0
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
        if args.keep_files:
            log(f"input files kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
