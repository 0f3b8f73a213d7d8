"""Export of customer lists: exactly the rows and the values a listing shows.

Rows are read from the database in chunks and written as they come (CSV streamed to the
response, XLSX through openpyxl's write-only mode), so memory stays flat however many
customers are exported.
"""

import csv
import datetime
import itertools
import tempfile
from decimal import Decimal

from django.db.models import TextField, Value
from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import attribute_types, bulk
from .imports import columns as fields
from .models import AttributeDefinition, AttributeTarget, Customer, TaggedCustomer
from .spreadsheets import SUSPECT_START, clean_xlsx_text, needs_neutralising

CHUNK_SIZE = 2000
CSV_BOM = "\ufeff"


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


_AT = {name: index for index, name in enumerate(ROW_FIELDS)}


def _field(name):
    index = _AT[name]
    return lambda record: record[0][index]


def _text(getter):
    """Mark a getter whose values are always text: CSV writes them without type checks."""
    getter.is_text = True
    return getter


def describe_branches(record):
    """The sharing of a customer, as import reads it back: ``*`` for all, else branch slugs."""
    row, _groups, _tags, slugs = record
    if row[_AT["home_branch__slug"]]:
        return row[_AT["home_branch__slug"]]
    if row[_AT["shared_with_all_branches"]]:
        return "*"
    return ", ".join(sorted(slugs))


def export_columns():
    """``(heading, value getter)`` for each exported column, attributes last.

    A getter takes a record of :func:`iter_records`. Phones are written in E.164
    (``+491701234567``): unambiguous, readable, and read back by any import; a number that
    could not be read is written as it was typed.
    """
    tz = timezone.get_current_timezone()
    phone, phone_raw, created, attributes, consent = (
        _AT[name] for name in ("eff_phone", "eff_phone_raw", "created_at", "eff_attributes", "marketing_consent")
    )
    values = {
        fields.FIRST_NAME: _text(_field("eff_first_name")),
        fields.LAST_NAME: _text(_field("eff_last_name")),
        fields.EMAIL: _text(_field("eff_email")),
        fields.PHONE: _text(lambda r: r[0][phone] or r[0][phone_raw]),
        fields.NOTES: _text(_field("eff_notes")),
        fields.BIRTHDAY: _field("eff_birthday"),
        fields.CONSENT: lambda r: 1 if r[0][consent] else 0,
        fields.GROUPS: _text(lambda r: ", ".join(sorted(r[1]))),
        fields.TAGS: _text(lambda r: ", ".join(sorted(r[2]))),
        fields.BRANCHES: _text(describe_branches),
        "bookings": _field("bookings_count"),
        "source": _text(_field("source")),
        fields.EXTERNAL_ID: _text(_field("external_id")),
        "created": lambda r: r[0][created].astimezone(tz).replace(microsecond=0, tzinfo=None),
    }
    headed = [(str(heading), values[target]) for target, heading in fields.EXPORT_HEADINGS.items()]
    definitions = AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER, is_active=True)
    for definition in definitions.order_by("sort_order", "label"):
        headed.append(
            (definition.key, lambda r, d=definition: attribute_types.to_python(d, (r[0][attributes] or {}).get(d.key)))
        )
    return headed


def iter_records(queryset, *, with_attributes=True):
    """The customers of a listing queryset as records ``(values of ROW_FIELDS, group names, tag
    names, branch slugs)``, read in chunks: one query for the rows, one per relation and chunk.
    Without attribute columns, the attribute values are not even read."""
    selected = [
        Value(None, output_field=TextField()) if name == "eff_attributes" and not with_attributes else name
        for name in ROW_FIELDS
    ]
    rows = queryset.prefetch_related(None).values_list(*selected).iterator(chunk_size=CHUNK_SIZE)
    while chunk := list(itertools.islice(rows, CHUNK_SIZE)):
        pks = [values[0] for values in chunk]
        groups, tags, slugs = (
            _names_by_customer(Customer.groups.through, "customer_id", "customergroup__name", pks),
            _names_by_customer(TaggedCustomer, "content_object_id", "tag__name", pks),
            _names_by_customer(Customer.branches.through, "customer_id", "branch__slug", pks),
        )
        for values in chunk:
            pk = values[0]
            yield values, groups.get(pk, ()), tags.get(pk, ()), slugs.get(pk, ())


def _names_by_customer(model, owner, name, pks):
    names = {}
    for pk, value in model.objects.filter(bulk.in_ids(owner, pks)).values_list(owner, name):
        names.setdefault(pk, []).append(value)
    return names


def _has_attribute_columns(columns):
    return len(columns) > len(fields.EXPORT_HEADINGS)


def iter_rows(queryset, columns):
    yield [heading for heading, _getter in columns]
    getters = [getter for _heading, getter in columns]
    for record in iter_records(queryset, with_attributes=_has_attribute_columns(columns)):
        yield [getter(record) for getter in getters]


def _csv_cell(value):
    kind = type(value)
    if kind is str:
        return "'" + value if needs_neutralising(value) else value
    if value is None:
        return ""
    if kind is bool:
        return "1" if value else "0"
    if kind is datetime.datetime:
        return value.isoformat(sep=" ")
    if kind is datetime.date:
        return value.isoformat()
    if kind in (int, Decimal, float):
        return str(value)
    return _csv_cell(str(value))


class _Echo:
    def write(self, value):
        return value


def _csv_formatter(getter):
    if getattr(getter, "is_text", False):

        def text_cell(record):
            value = getter(record)
            # The first-character test spares the call for nearly every cell.
            if value and value[0] in SUSPECT_START and needs_neutralising(value):
                return "'" + value
            return value

        return text_cell
    return lambda record: _csv_cell(getter(record))


def stream_csv(queryset, columns=None):
    """CSV text, chunk by chunk: UTF-8 with a BOM, so that Excel reads umlauts right."""
    columns = columns or export_columns()
    writer = csv.writer(_Echo())
    yield CSV_BOM
    yield writer.writerow([heading for heading, _getter in columns])
    formatters = [_csv_formatter(getter) for _heading, getter in columns]
    for record in iter_records(queryset, with_attributes=_has_attribute_columns(columns)):
        yield writer.writerow([format_cell(record) for format_cell in formatters])


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
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Customers"))
    for row in iter_rows(queryset, columns or export_columns()):
        sheet.append([_xlsx_cell(sheet, value) for value in row])
    workbook.save(output)


def csv_response(queryset, filename):
    # The headings are made now, in the admin user's language; the rows stream later.
    response = StreamingHttpResponse(stream_csv(queryset, export_columns()), content_type="text/csv; charset=utf-8")
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


def write_file(queryset, export_format, output):
    """Write an export to a binary file object (background exports, the export command)."""
    if export_format == "xlsx":
        write_xlsx(queryset, output)
        return
    for chunk in stream_csv(queryset):
        output.write(chunk.encode("utf-8"))
