"""Previewing and importing a whole file: chunks, counts, progress and the refused-rows report.

A preview is a dry run that writes nothing. A confirmed import runs in one transaction:
all rows or none by default; with "import the valid rows", the valid ones are saved and
the refused ones listed. Every row ends up counted exactly once: rows in the file =
new + updated + unchanged + refused.
"""

import contextlib
import csv
import gc
import io
import itertools
import logging
import tempfile
import threading

import tablib
from django.core.files import File
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop
from wagtail.log_actions import log

from .. import conf, export, page_queries, scope, stored_text
from ..models import Branch, ClientDBSettings, CustomerSource, JobStatus, SavedImportMapping
from . import checking, columns
from .batches import BatchRecorder
from .reading import FileProblem, open_spreadsheet
from .resource import LINE, CustomerImportResource, ImportSettings

CHUNK_ROWS = 2000
FIRST_CHUNK_ROWS = 250
SAMPLES_PER_KIND = 5
MAX_LISTED_INVALID_ROWS = 500
MAX_LISTED_POSSIBLE_DUPLICATES = 500
PREVIEW_ROWS = 25


def open_job_file(job):
    if not job.file:
        raise FileProblem(
            _("The uploaded file was deleted after %(days)s days. Upload it again.") % {"days": conf.get("FILE_RETENTION_DAYS")}
        )
    job.file.open("rb")
    try:
        return open_spreadsheet(job.file.file, encoding=job.encoding, delimiter=job.delimiter)
    except FileProblem:
        job.file.close()
        raise


def inspect_upload(job):
    """Recognise the file and its columns; returns the first rows for the mapping step."""
    sheet = open_job_file(job)
    try:
        numbered = list(itertools.islice(sheet.rows(), PREVIEW_ROWS))
    finally:
        job.file.close()
    first_rows = [row for _number, row in numbered]
    if not first_rows and sheet.other_sheets:
        raise FileProblem(
            _("The sheet “%(sheet)s” is empty. Only the workbook's first sheet is read, not %(others)s: move the sheet with the customers to the front, or save it as a file of its own.")
            % {"sheet": sheet.sheet_name, "others": ", ".join(sheet.other_sheets)}
        )
    if not first_rows:
        raise FileProblem(_("The file is empty."))
    layout = columns.detect_layout(first_rows)
    saved = SavedImportMapping.objects.filter(headers_key=columns.headers_key(layout.headers)).first()
    if layout.header_row is not None and saved and len(saved.targets) == len(layout.targets):
        layout.targets = saved.targets
    job.format, job.encoding, job.delimiter = sheet.format, sheet.encoding, sheet.delimiter
    # Excel names a sheet in 31 characters at most; another program may write longer names.
    job.sheet_name, job.other_sheets = sheet.sheet_name[:255], sheet.other_sheets
    # The header row is stored as the spreadsheet's row number (blank rows above it are skipped).
    header_number = numbered[layout.header_row][0] if layout.header_row is not None else None
    job.header_row, job.headers, job.targets = header_number, layout.column_names(), layout.targets
    job.notes = list(sheet.notes)
    if layout.header_row is None and columns.looks_like_plain_layout(layout, first_rows):
        job.notes.append(
            stored_text.keep(gettext_noop("No header row: read as name, phone, email, notes, marketing consent (columns A–E)."))
        )
    job.save()
    data_rows = first_rows[layout.first_data_row :]
    if layout.header_row is not None and not data_rows:
        raise FileProblem(_("The file has a header row but no customers."))
    return data_rows


def needs_mapping(job, data_rows):
    """Files in the plain layout, or whose every column was recognised, go straight to the preview."""
    if job.header_row is None:
        layout = columns.Layout(None, job.headers, job.targets)
        return not columns.looks_like_plain_layout(layout, data_rows)
    unknown = [h for h, target in zip(job.headers, job.targets) if not target and not columns.is_export_only(h)]
    return bool(unknown) or bool(columns.mapping_problems(job.targets, job.headers))


def remember_mapping(job):
    if job.header_row is not None:
        SavedImportMapping.objects.update_or_create(
            headers_key=columns.headers_key(job.headers), defaults={"targets": job.targets}
        )


def effective_targets(job, viewer):
    """The mapping, minus what the importing user may not set: branch staff never set branches."""
    targets = list(job.targets)
    if not viewer.is_manager:
        targets = [columns.IGNORE if target == columns.BRANCHES else target for target in targets]
    return targets


class Outcome:
    """Counts, examples and refused rows of a run, collected chunk by chunk."""

    KINDS = {"new": "new", "update": "updated", "skip": "unchanged"}

    def __init__(self, headers, targets, delimiter=","):
        self.counts = {"new": 0, "updated": 0, "unchanged": 0, "invalid": 0}
        #: New rows that may be customers already there (the preview's, see ImportJob.possible_duplicates).
        self.possible_duplicates = {"count": 0, "rows": []}
        #: The :class:`~wagtail_clientdb.models.ImportBatch` of a confirmed import that wrote something.
        self.batch = None
        self.samples = {"new": [], "updated": [], "unchanged": []}
        self.invalid_rows = []
        self.headers = headers
        self.column_of = {target: headers[i] for i, target in enumerate(targets) if target}
        self.naming_columns = [
            [i for i, target in enumerate(targets) if target in kinds]
            for kinds in ((columns.NAME, columns.FIRST_NAME, columns.LAST_NAME), (columns.EMAIL,), (columns.PHONE,))
        ]
        self.report_file = tempfile.TemporaryFile()
        self.report = io.TextIOWrapper(self.report_file, encoding="utf-8-sig", newline="")
        self.report_writer = csv.writer(self.report, delimiter=delimiter)
        line, reason = (str(heading) for heading in columns.REPORT_HEADINGS.values())
        self.report_writer.writerow([line, *[_report_cell(header) for header in headers], reason])

    def add(self, result, chunk):
        lines = {index: line for index, (line, _raw) in enumerate(chunk, 1)}
        raws = dict(chunk)
        for row_result in result.rows:
            kind = self.KINDS.get(row_result.import_type)
            if kind and len(self.samples[kind]) < SAMPLES_PER_KIND:
                self.samples[kind].append(row_result.object_repr)
        for kind, total_key in (("new", "new"), ("updated", "update"), ("unchanged", "skip")):
            self.counts[kind] += result.totals[total_key]
        refused = [(row.number, self._invalid_messages(row)) for row in result.invalid_rows]
        refused += [
            (number, [(None, stored_text.keep(str(error.error))) for error in errors]) for number, errors in result.row_errors()
        ]
        for number, messages in sorted(refused, key=lambda item: item[0]):
            line = lines[number]
            self.counts["invalid"] += 1
            for column, message in messages:
                if len(self.invalid_rows) < MAX_LISTED_INVALID_ROWS:
                    self.invalid_rows.append({"line": line, "who": self.who(raws[line]), "column": column, "message": message})
            reason = "; ".join(f"{column_label(column)}: {stored_text.show(message)}" for column, message in messages)
            self.report_writer.writerow(self._report_row(line, raws[line], reason))

    def _report_row(self, line, raw, reason):
        """The row as the file has it, under the header's columns, then the reason: rows are read
        without their empty trailing cells, and the reason would otherwise land in a column of
        the file (a corrected report, imported again, took it for the customer's notes). Cells
        beyond the header's columns follow the reason."""
        width = len(self.headers)
        cells = [_report_cell(cell) for cell in raw]
        return [line, *cells[:width], *[""] * (width - len(cells)), _report_cell(reason), *cells[width:]]

    def add_possible_duplicates(self, found, chunk):
        """``found``: line → the customers a new row may be (from the resource, per chunk)."""
        raws = dict(chunk)
        listed = self.possible_duplicates
        for line, matches in sorted(found.items()):
            listed["count"] += 1
            if len(listed["rows"]) < MAX_LISTED_POSSIBLE_DUPLICATES:
                listed["rows"].append(
                    {
                        "line": line,
                        "who": self.who(raws[line]),
                        "matches": [{"customer": match.customer.pk, "rules": match.rules} for match in matches],
                    }
                )

    def who(self, raw):
        """Who a refused row is, as the file says: the name, else the email, else the phone."""
        for indexes in self.naming_columns:
            cells = [str(raw[i]).strip() for i in indexes if i < len(raw) and raw[i] not in (None, "")]
            if any(cells):
                return " ".join(cell for cell in cells if cell)
        return ""

    def _invalid_messages(self, invalid_row):
        """(column header or None for the whole row, the message kept to be worded when shown)."""
        error = invalid_row.error
        by_target = error.error_dict if hasattr(error, "error_dict") else {"__all__": error.error_list}
        return [
            (self.column_of.get(target) if target != "__all__" else None, stored_text.keep_error(single))
            for target, errors in by_target.items()
            for listed in errors
            for single in listed.error_list
        ]

    @property
    def total(self):
        return sum(self.counts.values())


def column_label(column):
    """A refused row's column as shown: the file's header, or "(row)" for the whole row."""
    return column if column is not None else _("(row)")


def shown_possible_duplicates(job, viewer):
    """The preview's new rows that may be customers already there, with those customers as
    ``viewer`` sees them now (any that it no longer sees are left out)."""
    from .. import overrides
    from ..models import Customer, DuplicateRule

    rows = (job.possible_duplicates or {}).get("rows", [])
    wanted = {match["customer"] for row in rows for match in row["matches"]}
    if not wanted:
        return []
    visible = scope.visible_customers(viewer, Customer.objects.filter(pk__in=wanted))
    seen = {customer.pk: customer for customer in overrides.with_effective_values(visible, viewer.branch)}
    shown = []
    for row in rows:
        matches = [
            {"customer": seen[match["customer"]], "why": "; ".join(str(DuplicateRule(rule).label) for rule in match["rules"])}
            for match in row["matches"]
            if match["customer"] in seen
        ]
        if matches:
            shown.append({"line": row["line"], "who": row["who"], "matches": matches})
    return shown


def shown_refused_row(row):
    """A stored refused row in the reader's language."""
    return {**row, "column": column_label(row["column"]), "message": stored_text.show(row["message"])}


def _report_cell(value):
    from ..spreadsheets import neutralise_csv

    return neutralise_csv("" if value is None else str(value))


def data_rows(job):
    """``(line, raw row)`` of every data row; lines are the spreadsheet's row numbers."""
    sheet = open_job_file(job)
    try:
        for number, row in sheet.rows():
            if job.header_row is None or number > job.header_row:
                yield number, row
    finally:
        job.file.close()


def run(job, *, dry_run, on_progress=None):
    """Preview (``dry_run``) or import a job's file. Returns the Outcome; updates the job."""
    viewer = scope.viewer_for_job(job.created_by, job.branch)
    if viewer.sees_nothing:
        raise FileProblem(_("You are not a member of any branch, so you cannot import customers."))
    targets = effective_targets(job, viewer)
    settings = ImportSettings(
        viewer,
        all_branches=job.all_branches,
        share_branches=Branch.objects.filter(pk__in=job.share_branch_ids),
        phone_region=ClientDBSettings.load().default_phone_region,
        previewed_at=None if dry_run else job.previewed_at,
        report_duplicates=dry_run,
    )
    if not dry_run:
        # What the import changes is kept as a batch that can be rolled back.
        settings.recorder = BatchRecorder(source=CustomerSource.IMPORT, user=job.created_by, branch=viewer.branch, job=job)
    resource = CustomerImportResource(settings, lock_rows=not dry_run)
    # The refused rows go back as the upload came: a CSV's own separator, else the language's.
    outcome = Outcome(job.headers, targets, delimiter=job.delimiter or export.default_delimiter())
    outcome.started_at = resource.now

    def collect(result, chunk):
        outcome.add(result, chunk)
        outcome.add_possible_duplicates(resource.take_possible_duplicates(), chunk)
        if on_progress:
            on_progress(outcome.total)
        return outcome.counts["invalid"]

    # A preview writes nothing; an import is one transaction, all rows or none.
    with (
        gc_frozen(),
        contextlib.closing(data_chunks(job)) as chunks,
        contextlib.nullcontext() if dry_run else transaction.atomic(),
    ):
        refuse_all = import_chunks(
            resource,
            checking.checked_chunks(chunks, targets, resource.row_context),
            dry_run=dry_run,
            all_or_nothing=not job.import_valid_rows,
            collect=collect,
        )
        outcome.batch = None if dry_run or refuse_all else settings.recorder.finish()
    if resource.unreadable_phones:
        outcome.notes = [
            stored_text.keep_counted(
                gettext_noop("%(count)s phone number could not be read; it is kept as typed and marked."),
                gettext_noop("%(count)s phone numbers could not be read; they are kept as typed and marked."),
                resource.unreadable_phones,
            )
        ]
    else:
        outcome.notes = []
    outcome.refused_everything = bool(refuse_all and not dry_run)
    return outcome


def import_chunks(resource, checked_chunks, *, dry_run, all_or_nothing, collect):
    """Import ``(chunk, {line: CheckedRow})`` chunk by chunk (files and API records alike).

    ``collect(result, chunk)`` records each chunk's result and returns how many rows were
    refused so far; after the first refused row of an all-or-nothing import the rest is only
    checked, and the transaction (the caller's) is marked for rollback. Returns whether
    everything was refused.
    """
    refuse_all = False
    # A chunk's queries are lookups by index, like a page's: with an empty link table's
    # statistics (a first import into it), the planner costed them high enough to compile.
    with page_queries.page_settings():
        for chunk, checked in checked_chunks:
            resource.checked = checked
            dataset = tablib.Dataset(*([line] for line, _raw in chunk), headers=[LINE])
            result = resource.import_data(dataset, dry_run=dry_run or refuse_all, use_transactions=False, raise_errors=False)
            if result.has_errors() and result.base_errors:
                raise FileProblem(_("The import failed: %(error)s") % {"error": result.base_errors[0].error})
            refused_so_far = collect(result, chunk)
            refuse_all = refuse_all or bool(refused_so_far and all_or_nothing)
            # What the chunk left behind in reference cycles (see gc_frozen), once it is let go.
            del result, dataset
            gc.collect(0)
    if refuse_all and not dry_run:
        transaction.set_rollback(True)
    return refuse_all


def data_chunks(job):
    """The data rows in chunks (:func:`in_chunks`)."""
    rows = data_rows(job)
    try:
        yield from in_chunks(rows)
    finally:
        rows.close()


def in_chunks(rows):
    """``rows`` in lists that grow from ``FIRST_CHUNK_ROWS`` to ``CHUNK_ROWS`` rows.

    Nothing is saved before the first chunk is checked, and it is checked in this process
    (:mod:`.checking`): a small first chunk lets the helper process take over after a
    fraction of a second, which counts for every API call. Each chunk is at most twice the
    one before, which the helper checks in less time than this process takes to save it.
    """
    rows = iter(rows)
    size = min(FIRST_CHUNK_ROWS, CHUNK_ROWS)
    while chunk := list(itertools.islice(rows, size)):
        yield chunk
        size = min(size * 2, CHUNK_ROWS)


@contextlib.contextmanager
def gc_frozen():
    """Keep the objects that exist before the import out of garbage collection while it runs,
    and collect once per chunk instead of whenever allocations pass a threshold.

    An import allocates millions of short-lived objects, and each full collection walked
    every object of Django, Wagtail and the app again: about a fifth of an import's time.
    With only the objects made since then walked (``gc.freeze``), the collections that the
    allocations set off still took about 2 s of a 100,000-row import (5,000 young, 450 middle
    and 40 full collections, each walking the chunk's live rows). Automatic collection is off
    while the import runs; after each chunk, once its rows are let go,
    :func:`import_chunks` collects the youngest generation, which then holds little more
    than the chunk's reference cycles: 0.7 s. Memory stays bounded by a chunk. Nested (the
    API's bulk call runs its import in one), collection stays off until the outermost ends.
    """
    gc.freeze()
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
        gc.unfreeze()


def finish(job, outcome, *, dry_run):
    job.counts = outcome.counts
    job.samples = outcome.samples
    job.invalid_rows = outcome.invalid_rows
    job.possible_duplicates = outcome.possible_duplicates
    job.rows_total = job.rows_done = outcome.total
    job.notes = [note for note in job.notes if note not in outcome.notes] + outcome.notes
    if dry_run:
        job.status = JobStatus.PREVIEWED
        job.previewed_at = outcome.started_at
    else:
        job.status = JobStatus.REFUSED if outcome.refused_everything else JobStatus.IMPORTED
        job.finished_at = timezone.now()
        counts = {"file": job.original_name, "counts": outcome.counts, "refused_everything": outcome.refused_everything}
        log(job, "wagtail_clientdb.import", user=job.created_by, branch=job.branch, data=counts)
    outcome.report.flush()
    outcome.report.detach()
    if job.report:
        # A report of an earlier run (the preview) is replaced, not left behind.
        job.report.delete(save=False)
    if outcome.counts["invalid"]:
        outcome.report_file.seek(0)
        job.report.save("refused-rows.csv", File(outcome.report_file), save=False)
    outcome.report_file.close()
    job.save()


logger = logging.getLogger(__name__)


def save_progress(job_id, rows_done):
    """Record progress where the admin's progress bar can read it.

    During an import the job's own connection is inside the import transaction, whose
    writes nobody sees before the end; on PostgreSQL the progress is written through a
    connection of its own. (SQLite allows one writer only: there, the bar moves at the end.)
    """
    from ..models import ImportJob

    def write():
        ImportJob.objects.filter(pk=job_id).update(rows_done=rows_done)

    if not connection.in_atomic_block:
        write()
    elif connection.vendor == "postgresql":
        worker = threading.Thread(target=_in_own_connection, args=(write,))
        worker.start()
        worker.join()


def _in_own_connection(function):
    try:
        function()
    finally:
        connections.close_all()


def execute(job, *, dry_run):
    """Run a preview or an import of ``job`` and record its outcome on the job."""
    job.status = JobStatus.PREVIEWING if dry_run else JobStatus.IMPORTING
    job.rows_done = 0
    job.error = ""
    job.save(update_fields=["status", "rows_done", "error"])
    try:
        outcome = run(job, dry_run=dry_run, on_progress=lambda rows: save_progress(job.pk, rows))
    except FileProblem as problem:
        job.status, job.error = JobStatus.FAILED, str(problem)
        job.save(update_fields=["status", "error"])
        return job
    except Exception:
        logger.exception("Customer import %s failed", job.pk)
        job.status, job.error = JobStatus.FAILED, _("The import failed unexpectedly; nothing was imported.")
        job.save(update_fields=["status", "error"])
        return job
    finish(job, outcome, dry_run=dry_run)
    return job
