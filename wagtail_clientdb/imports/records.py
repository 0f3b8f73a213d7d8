"""Customer records given as data (the API's bulk import) through the file import's pipeline.

The same checks of every value (:mod:`.rows`), the same identity rule, scope rules, duplicate
detection and bulk writes (:mod:`.resource`), the same all-or-nothing transaction: a record is
a row whose cells come from JSON instead of a spreadsheet. Sending the same records twice
changes nothing the second time. New records that may be customers already there are named
as the file import's preview names new rows.
"""

from dataclasses import dataclass

from django.db import transaction

from ..models import ClientDBSettings, ConsentChannel, CustomerSource
from . import checking, columns
from .batches import BatchRecorder
from .resource import CustomerImportResource, ImportSettings
from .runner import gc_frozen, import_chunks, in_chunks

#: Record field → import column target (the fields a bulk record may carry).
FIELD_TARGETS = {
    "external_id": columns.EXTERNAL_ID,
    "first_name": columns.FIRST_NAME,
    "last_name": columns.LAST_NAME,
    "email": columns.EMAIL,
    "phone": columns.PHONE,
    "notes": columns.NOTES,
    "birthday": columns.BIRTHDAY,
    "marketing_consent": columns.CONSENT,
    "groups": columns.GROUPS,
    "tags": columns.TAGS,
    "branches": columns.BRANCHES,
}
RESULTS = {"new": "created", "update": "updated", "skip": "unchanged"}


@dataclass(slots=True)
class RecordResult:
    index: int
    result: str
    id: int | None = None
    #: Field → messages of a refused record.
    errors: dict | None = None
    #: A created customer's :class:`~wagtail_clientdb.matching.PossibleDuplicate` list.
    possible_duplicates: tuple | list = ()


def _field_of(target):
    if target.startswith(columns.ATTRIBUTE):
        return "attributes." + target[len(columns.ATTRIBUTE) :]
    return next((name for name, known in FIELD_TARGETS.items() if known == target), target)


def import_records(viewer, records, *, partial=False):
    """Import ``records`` (dicts of :data:`FIELD_TARGETS` fields and ``attributes``) as ``viewer``.

    Returns ``(saved, [RecordResult], batch)``; with ``partial`` the valid records are saved and
    the others reported, else a refused record saves nothing at all. ``batch``: the
    :class:`~wagtail_clientdb.models.ImportBatch` that can roll the call back (``None`` when
    nothing was written).
    """
    # Only the fields some record carries are columns: a field a record leaves out (or
    # sends as null) is an empty cell, which changes nothing.
    carried = set().union(*records)
    names = [name for name in FIELD_TARGETS if name in carried]
    keys = sorted({key for record in records for key in (record.get("attributes") or {})})
    targets = [*(FIELD_TARGETS[name] for name in names), *(columns.ATTRIBUTE + key for key in keys)]

    def cells(record):
        # map() over the dicts' own get: 10,000 records a call, each read once.
        given = list(map(record.get, names))
        if keys:
            given += map((record.get("attributes") or {}).get, keys)
        return given

    rows = [(index, cells(record)) for index, record in enumerate(records, 1)]
    # New customers of the head office are shared with all branches unless a record names
    # some; a branch's are its own, as in its file import. Existing ones keep their sharing.
    settings = ImportSettings(
        viewer,
        all_branches=viewer.is_manager,
        phone_region=ClientDBSettings.load().default_phone_region,
        source=CustomerSource.API,
        consent_channel=ConsentChannel.API,
        # No preview shows them, so the answer names them.
        report_duplicates=True,
    )
    settings.recorder = BatchRecorder(source=CustomerSource.API, user=viewer.user, branch=viewer.branch)
    settings.consent_reference = "POST /api/v3/clientdb/customers/bulk/"
    resource = CustomerImportResource(settings, lock_rows=True, remember_instances=True)
    results = {}
    refused_records = 0

    def collect(result, chunk):
        nonlocal refused_records
        # The chunk's customers are written by now: their ids are kept, the customers let go
        # (10,000 of them kept to the end were walked again by every chunk's collection).
        pop = resource.instance_by_line.pop
        for (index, _cells), row_result in zip(chunk, result.rows):
            instance = pop(index, None)
            outcome = RESULTS.get(row_result.import_type, "error")
            refused_records += outcome == "error"
            results[index] = RecordResult(index, outcome, None if instance is None else instance.id)
        for row in result.invalid_rows:
            index = chunk[row.number - 1][0]
            results[index].errors = {_field_of(target): list(map(str, errors)) for target, errors in row.error_dict.items()}
        for number, errors in result.row_errors():
            results[chunk[number - 1][0]].errors = {"__all__": [str(error.error) for error in errors]}
        for index, matches in resource.take_possible_duplicates().items():
            results[index].possible_duplicates = matches
        return refused_records

    with gc_frozen(), transaction.atomic():
        refused = import_chunks(
            resource,
            checking.checked_chunks(in_chunks(rows), targets, resource.row_context),
            dry_run=False,
            all_or_nothing=not partial,
            collect=collect,
        )
        batch = None if refused else settings.recorder.finish()
    for record in results.values():
        # Nothing of a refused record, or of a call that saved nothing, was written.
        if refused or record.result == "error":
            record.id, record.possible_duplicates = None, ()
    return not refused, [results[index] for index in range(1, len(records) + 1)], batch
