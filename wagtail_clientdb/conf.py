"""Deploy-time settings of the app: ``WAGTAIL_CLIENTDB = {...}`` in the Django settings.

Company-wide switches that site owners change live in the Wagtail setting
:class:`~wagtail_clientdb.models.ClientDBSettings` instead.
"""

from django.conf import settings

DEFAULTS = {
    # Imports: files larger than this are refused before they are read.
    "IMPORT_MAX_FILE_SIZE": 200 * 1024 * 1024,
    "IMPORT_MAX_ROWS": 1_000_000,
    "IMPORT_MAX_COLUMNS": 100,
    # A spreadsheet (a zip archive) is refused when it unpacks to more than this, or has more members.
    "IMPORT_MAX_UNCOMPRESSED_SIZE": 1024 * 1024 * 1024,
    "IMPORT_MAX_ZIP_MEMBERS": 1000,
    # A CSV line (a physical line: a quoted cell may span several) longer than this is refused.
    "IMPORT_MAX_LINE_BYTES": 64 * 1024,
    # What reading a spreadsheet may take in memory, estimated from the workbook before it is read:
    # XLSX over it is streamed (slower), or refused when even that would not fit; XLS over it is refused.
    "IMPORT_MAX_READER_MEMORY": 224 * 1024 * 1024,
    # Larger files are previewed and imported by a background task (256 KB: about 2,500 CSV rows).
    "IMPORT_BACKGROUND_BYTES": 256 * 1024,
    # Exports of more customers are written by a background task and offered for download.
    "EXPORT_BACKGROUND_ROWS": 20_000,
    # Bulk actions on more customers (every customer of a listing or segment) run as a background
    # task, a chunk at a time (about 150 µs a customer: 10,000 take 1.5–2 s in the request).
    "BULK_ACTION_BACKGROUND_CUSTOMERS": 10_000,
    # Bulk actions on "select all" in the app's other listings (appointments, services, groups,
    # segments, the deletion queue, possible duplicates…), which change one object at a time
    # (an appointment's status: about 8 ms), take at most this many; a larger choice is refused
    # and the listing asked to be narrowed.
    "BULK_ACTION_MAX_OBJECTS": 500,
    # The customer listing names its page's dynamic groups for this long (ms) after the first
    # three (each runs its segment's rule: 4–8 ms); the browser asks for the others.
    "LISTING_GROUP_NAMES_MS": 20,
    # Listings of more customers show PostgreSQL's estimate of their number ("about 680,000").
    "LISTING_EXACT_COUNT_LIMIT": 10_000,
    # A search (the listing's, the chooser's) with more matches says "more than 1,000": counting a
    # branch's 10,001 matches of a name fragment took a third of the page at a million customers,
    # to tell a front desk what it does not read; it types more of the name.
    "LISTING_SEARCH_EXACT_COUNT_LIMIT": 1_000,
    # PostgreSQL settings for the queries of the app's admin pages, in their transaction only
    # (wagtail_clientdb.page_queries): no JIT, no parallel workers, random reads priced as cached.
    "POSTGRESQL_PAGE_SETTINGS": {"jit": "off", "max_parallel_workers_per_gather": 0, "random_page_cost": 1.1},
    # The Segments and Customer groups lists count every segment or group they show: exactly up
    # to this many customers each.
    "SEGMENT_LIST_EXACT_COUNT_LIMIT": 1_000,
    # The Segments list counts segments for this long (ms); the browser asks for the others' counts.
    "SEGMENT_LIST_COUNTING_MS": 100,
    # The booking page offers a start time every this many minutes.
    "BOOKING_SLOT_MINUTES": 15,
    # Bookings one IP address may send per hour to the booking pages; more are politely refused.
    "BOOKING_RATE_LIMIT": 10,
    # Requests one API token may make (django-ninja's rate notation: "600/m", "10000/h").
    "API_RATE_LIMIT": "600/m",
    # The largest body of a bulk import call, in bytes: 10,000 records are 2–5 MB of JSON, more
    # than Django reads into memory for any other request (DATA_UPLOAD_MAX_MEMORY_SIZE, 2.5 MB).
    "API_BULK_MAX_BYTES": 20 * 1024 * 1024,
    # Customers deleted, merged or no longer shared with a branch are listed to API clients
    # (customers/removed/) for this many days; a client that syncs less often reads all again.
    "REMOVALS_KEPT_DAYS": 90,
    # Possible duplicates: how similar two names must be (pg_trgm's trigram similarity, 0–1) to
    # count as "similar" beside the same birthday or the same end of the phone number.
    "DUPLICATE_NAME_SIMILARITY": 0.5,
    # The django-tasks queue the app's tasks go to.
    "TASK_QUEUE": "default",
    # Uploaded lists, refused-rows reports and exports: the folder they are kept in when
    # STORAGES has no "wagtail_clientdb" storage (default: "clientdb-private" beside MEDIA_ROOT),
    # and how many days they are kept.
    "PRIVATE_ROOT": None,
    "FILE_RETENTION_DAYS": 7,
    # A merge of customers can be undone for this many days.
    "MERGE_UNDO_DAYS": 30,
    # What a confirmed import changed (the previous values of the customers it updated) is kept
    # this many days, so that it can be rolled back; then the record is deleted.
    "IMPORT_ROLLBACK_DAYS": 30,
    # Rollbacks of imports that created and changed more customers than this run as a background task.
    "ROLLBACK_BACKGROUND_CUSTOMERS": 2500,
}


def get(name):
    return getattr(settings, "WAGTAIL_CLIENTDB", {}).get(name, DEFAULTS[name])
