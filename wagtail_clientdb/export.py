"""Export of customer lists: exactly the rows and the values a listing shows.

Rows are read from the database in chunks and written as they come (CSV streamed to the
response, XLSX through openpyxl's write-only mode), so memory stays flat however many
customers are exported.
"""

import csv
import datetime
import io
import itertools
import tempfile
from decimal import Decimal

from django.db.models import CharField, TextField, Value
from django.db.models.functions import Cast, TruncSecond
from django.http import FileResponse, StreamingHttpResponse
from django.utils import formats, timezone, translation
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import attribute_types, bulk
from .imports import columns as fields
from .models import AttributeDefinition, AttributeTarget, Customer, TaggedCustomer
from .spreadsheets import SUSPECT_START, clean_xlsx_text, neutralise_csv

CHUNK_SIZE = 2000
CSV_BOM = "\ufeff"

#: The separators a CSV export can use, by the name its URL parameter gives.
CSV_DELIMITERS = {"comma": ",", "semicolon": ";"}


def default_delimiter(language=None):
    """The separator Excel expects in the admin user's language: a semicolon where numbers
    are written with a decimal comma (German, French), otherwise a comma."""
    decimal_separator = formats.get_format("DECIMAL_SEPARATOR", lang=language or translation.get_language())
    return ";" if decimal_separator == "," else ","


def delimiter_named(name):
    """The separator a URL parameter asks for; the language's default when it asks for none."""
    return CSV_DELIMITERS.get(name) or default_delimiter()


#: The listing's columns an export reads: values, not model instances, because building
#: a million model objects costs far more than writing their rows.
ROW_FIELDS = (
    "pk",
    "eff_first_name",
    "eff_last_name",
    "eff_email",
    "eff_phone",
    "eff_phone_raw",
    "eff_notes",
    "eff_birthday",
    "marketing_consent",
    "bookings_count",
    "source",
    "external_id",
    "created_at",
    "eff_attributes",
    "home_branch__slug",
    "shared_with_all_branches",
)
(
    _PK, _FIRST_NAME, _LAST_NAME, _EMAIL, _PHONE, _PHONE_RAW, _NOTES, _BIRTHDAY, _CONSENT,
    _BOOKINGS, _SOURCE, _EXTERNAL_ID, _CREATED, _ATTRIBUTES, _HOME_BRANCH, _ALL_BRANCHES,
) = range(len(ROW_FIELDS))

#: The standard columns, in the order of the cells of :meth:`ExportColumns.row_chunks`.
STANDARD_COLUMNS = (
    fields.FIRST_NAME, fields.LAST_NAME, fields.EMAIL, fields.PHONE, fields.NOTES, fields.BIRTHDAY,
    fields.CONSENT, fields.GROUPS, fields.TAGS, fields.BRANCHES, "bookings", "source", fields.EXTERNAL_ID, "created",
)
#: Standard columns of text that people typed: the ones a spreadsheet could run as formulas.
TEXT_COLUMNS = {
    fields.FIRST_NAME, fields.LAST_NAME, fields.EMAIL, fields.PHONE, fields.NOTES,
    fields.GROUPS, fields.TAGS, fields.BRANCHES, fields.EXTERNAL_ID,
}


class ExportColumns:
    """The columns of one export: the standard ones, then one per active customer attribute.

    Made when the export is asked for, so that the headings are in the language of the
    user who asked, even when the rows are written later.
    """

    def __init__(self):
        self.definitions = list(
            AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER, is_active=True).order_by(
                "sort_order", "label"
            )
        )
        self.headings = [str(fields.EXPORT_HEADINGS[target]) for target in STANDARD_COLUMNS]
        self.headings += [definition.key for definition in self.definitions]
        self.timezone = timezone.get_current_timezone()

    def row_chunks(self, queryset):
        """Lists of rows of cells (Python values), one list per chunk of customers.

        Phones are written in E.164 (``+491701234567``): unambiguous, readable, and read
        back by any import; a number that could not be read is written as it was typed.
        Branches are written as import reads them back: ``*`` for all, else branch slugs.
        The cells are in the order of :data:`STANDARD_COLUMNS`, then the attributes.
        """
        definitions = self.definitions
        for chunk, groups, tags, slugs in _chunks(queryset, self.timezone, with_attributes=bool(definitions)):
            rows = [
                [
                    values[_FIRST_NAME],
                    values[_LAST_NAME],
                    values[_EMAIL],
                    values[_PHONE] or values[_PHONE_RAW],
                    values[_NOTES],
                    values[_BIRTHDAY],
                    1 if values[_CONSENT] else 0,
                    groups.get(values[_PK], ""),
                    tags.get(values[_PK], ""),
                    values[_HOME_BRANCH] or ("*" if values[_ALL_BRANCHES] else slugs.get(values[_PK], "")),
                    values[_BOOKINGS],
                    values[_SOURCE],
                    values[_EXTERNAL_ID],
                    values[_CREATED],
                ]
                for values in chunk
            ]
            if definitions:
                for row, values in zip(rows, chunk):
                    stored = values[_ATTRIBUTES] or {}
                    row += [attribute_types.to_python(d, stored.get(d.key)) for d in definitions]
            yield rows


def _chunks(queryset, tz, *, with_attributes=True):
    """The customers of a listing queryset in chunks: ``(values of ROW_FIELDS per customer,
    and by customer pk: group names, tag names, branch slugs, each sorted and joined)``.
    One query for the rows, one per relation and chunk. Without attribute columns, the
    attribute values are not even read. The creation time comes as text in ``tz`` to the
    second ("2026-03-01 14:05:09"), made by the database, which is cheaper than making a
    datetime of every row and converting it."""
    replaced = {"created_at": Cast(TruncSecond("created_at", tzinfo=tz), CharField())}
    if not with_attributes:
        replaced["eff_attributes"] = Value(None, output_field=TextField())
    selected = [replaced.get(name, name) for name in ROW_FIELDS]
    rows = queryset.prefetch_related(None).values_list(*selected).iterator(chunk_size=CHUNK_SIZE)
    while chunk := list(itertools.islice(rows, CHUNK_SIZE)):
        pks = [values[_PK] for values in chunk]
        yield (
            chunk,
            _names_by_customer(Customer.groups.through, "customer_id", "customergroup__name", pks),
            _names_by_customer(TaggedCustomer, "content_object_id", "tag__name", pks),
            _names_by_customer(Customer.branches.through, "customer_id", "branch__slug", pks),
        )


def _names_by_customer(model, owner, name, pks):
    names = {}
    for pk, value in model.objects.filter(bulk.any_of(owner, pks)).values_list(owner, name):
        names.setdefault(pk, []).append(value)
    return {pk: ", ".join(sorted(values)) for pk, values in names.items()}


def _csv_cell(value):
    """An attribute value as CSV text (attribute types hold no datetimes)."""
    kind = type(value)
    if kind is str:
        return neutralise_csv(value)
    if value is None:
        return ""
    if kind is bool:
        return "1" if value else "0"
    if kind is datetime.date:
        return value.isoformat()
    if kind in (int, Decimal, float):
        return str(value)
    return _csv_cell(str(value))


def stream_csv(queryset, columns=None, delimiter=","):
    """CSV text, chunk by chunk: UTF-8 with a BOM, so that Excel reads umlauts right.

    Standard cells are written as they are (the csv module writes ``None`` as empty and
    dates in ISO form); only their text is checked for formula triggers, and only where
    the first character is suspect, which spares the check for nearly every cell.
    """
    columns = columns or ExportColumns()
    text_positions = [index for index, target in enumerate(STANDARD_COLUMNS) if target in TEXT_COLUMNS]
    attribute_positions = range(len(STANDARD_COLUMNS), len(columns.headings))
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)
    writer.writerow(columns.headings)
    yield CSV_BOM + buffer.getvalue()
    for rows in columns.row_chunks(queryset):
        for row in rows:
            for index in text_positions:
                text = row[index]
                if text and text[0] in SUSPECT_START:
                    row[index] = neutralise_csv(text)
            for index in attribute_positions:
                row[index] = _csv_cell(row[index])
        buffer.seek(0)
        buffer.truncate()
        writer.writerows(rows)
        yield buffer.getvalue()


def _xlsx_cell(sheet, value):
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value=clean_xlsx_text(value))
        cell.data_type = "s"  # never a formula, whatever the text starts with
        return cell
    if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
        cell = WriteOnlyCell(sheet, value=value)
        cell.number_format = "yyyy-mm-dd"
        return cell
    return WriteOnlyCell(sheet, value=value)


def write_xlsx(queryset, output, columns=None):
    columns = columns or ExportColumns()
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Customers"))
    sheet.append([_xlsx_cell(sheet, heading) for heading in columns.headings])
    created = STANDARD_COLUMNS.index("created")
    for rows in columns.row_chunks(queryset):
        for row in rows:
            row[created] = datetime.datetime.fromisoformat(row[created])
            sheet.append([_xlsx_cell(sheet, value) for value in row])
    workbook.save(output)


def csv_response(queryset, filename, delimiter=","):
    # The headings are made now, in the admin user's language; the rows stream later.
    rows = stream_csv(queryset, ExportColumns(), delimiter)
    response = StreamingHttpResponse(rows, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}.csv"'
    return response


def xlsx_response(queryset, filename):
    output = tempfile.TemporaryFile()
    write_xlsx(queryset, output)
    output.seek(0)
    return FileResponse(
        output,
        as_attachment=True,
        filename=f"{filename}.xlsx",
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )


def write_file(queryset, export_format, output, delimiter=","):
    """Write an export to a binary file object (background exports, the export command)."""
    if export_format == "xlsx":
        write_xlsx(queryset, output)
        return
    for chunk in stream_csv(queryset, delimiter=delimiter):
        output.write(chunk.encode("utf-8"))
