"""Rows that repeat an earlier row's record ID, external ID, email or phone, anywhere in the file.

Every value seen must be remembered until the file's end. A dict holds them while they
are few; a million-row file holds two to three million, which in a dict took about
180 MB, so past ``SPILL_AT`` values they move to an in-memory SQLite table (about a quarter
of that), read and written once per chunk.
"""

import sqlite3

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import columns

KEYS = ((columns.EXTERNAL_ID, "external_id"), (columns.EMAIL, "email"))
#: Keys that two customers, each named by its record ID, may share.
_SHARED_BY_RECORDS = (columns.EMAIL, columns.PHONE)
SPILL_AT = 250_000
#: Values per SQLite statement (older SQLite builds allow 999 parameters).
_BATCH = 900


def digests(values):
    """``(target, digest)`` of each key a row's values hold (a phone number with its extension)."""
    found = [(target, hash((name, values.fields[name]))) for target, name in KEYS if values.fields.get(name)]
    if values.phone_identity:
        found.append((columns.PHONE, hash(("phone", values.phone_identity))))
    if values.record_id:
        found.append((columns.RECORD_ID, hash(("record", values.record_id))))
    return found


def same_as_line(line):
    return ValidationError(_("The same value as line %(line)s of this file."), params={"line": line})


def same_as_record(line):
    """For the API's bulk call, whose records are counted from 0."""
    return ValidationError(_("The same value as record %(index)s of this call."), params={"index": line - 1})


class SeenValues:
    """The first line of every key value seen so far. ``same_as``: the error of a row that
    repeats an earlier one's, given that row's line (:func:`same_as_line`, :func:`same_as_record`)."""

    def __init__(self, same_as=same_as_line):
        self.same_as = same_as
        #: digest → first line: of every value while they are few; once spilled, of the current chunk's.
        self.lines = {}
        self.spilled = None
        self.from_spilled = {}

    def start_chunk(self, checked_rows):
        """Look up, in one go, which of a chunk's values the spilled ones hold."""
        self.from_spilled = {}
        if self.spilled is None:
            return
        wanted = list({digest for row in checked_rows if row.values for _target, digest in digests(row.values)})
        for start in range(0, len(wanted), _BATCH):
            batch = wanted[start : start + _BATCH]
            placeholders = ",".join("?" * len(batch))
            self.from_spilled.update(self.spilled.execute(f"SELECT digest, line FROM seen WHERE digest IN ({placeholders})", batch))

    def repeated(self, line, values):
        """Target → message for each key of the row an earlier row had; remembers the rest.
        A row with a record ID names its customer by it: its email or phone may be another
        listed customer's too (two customers may share one), only its record ID and external
        ID may not; they are remembered all the same, for the rows without a record ID after it."""
        errors = {}
        for target, digest in digests(values):
            first = self.from_spilled.get(digest) or self.lines.setdefault(digest, line)
            if first != line and not (values.record_id and target in _SHARED_BY_RECORDS):
                errors[target] = [self.same_as(first)]
        return errors

    def end_chunk(self):
        if self.spilled is None:
            if len(self.lines) < SPILL_AT:
                return
            self.spilled = sqlite3.connect(":memory:")
            self.spilled.execute("CREATE TABLE seen (digest INTEGER PRIMARY KEY, line INTEGER NOT NULL)")
        self.spilled.executemany("INSERT OR IGNORE INTO seen VALUES (?, ?)", self.lines.items())
        self.lines = {}
