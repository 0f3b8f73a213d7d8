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

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import attribute_types
from .imports import columns as fields
from .models import AttributeDefinition, AttributeTarget, Customer, TaggedCustomer
from .spreadsheets import clean_xlsx_text, neutralise_csv

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


def describe_branches(row):
    """The sharing of a customer, as import reads it back: ``*`` for all, else branch slugs."""
    if row["home_branch__slug"]:
        return row["home_branch__slug"]
    if row["shared_with_all_branches"]:
        return "*"
    return ", ".join(sorted(row["branch_slugs"]))


def export_columns():
    """``(heading, value getter)`` for each exported column, attributes last.

    Phones are written in E.164 (``+491701234567``): unambiguous, readable, and read back
    by any import; a number that could not be read is written as it was typed.
    """
    tz = timezone.get_current_timezone()
    values = {
        fields.FIRST_NAME: lambda r: r["eff_first_name"],
        fields.LAST_NAME: lambda r: r["eff_last_name"],
        fields.EMAIL: lambda r: r["eff_email"],
        fields.PHONE: lambda r: r["eff_phone"] or r["eff_phone_raw"],
        fields.NOTES: lambda r: r["eff_notes"],
        fields.BIRTHDAY: lambda r: r["eff_birthday"],
        fields.CONSENT: lambda r: 1 if r["marketing_consent"] else 0,
        fields.GROUPS: lambda r: ", ".join(sorted(r["group_names"])),
        fields.TAGS: lambda r: ", ".join(sorted(r["tag_names"])),
        fields.BRANCHES: describe_branches,
        "bookings": lambda r: r["bookings_count"],
        "source": lambda r: r["source"],
        fields.EXTERNAL_ID: lambda r: r["external_id"],
        "created": lambda r: r["created_at"].astimezone(tz).replace(microsecond=0, tzinfo=None),
    }
    headed = [(str(heading), values[target]) for target, heading in fields.EXPORT_HEADINGS.items()]
    definitions = AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER, is_active=True)
    for definition in definitions.order_by("sort_order", "label"):
        headed.append(
            (
                definition.key,
                lambda r, d=definition: attribute_types.to_python(d, (r["eff_attributes"] or {}).get(d.key)),
            )
        )
    return headed


def iter_records(queryset):
    """The customers of a listing queryset as dicts, with their group names, tag names and
    branch slugs, read in chunks: one query for the rows and one per relation and chunk."""
    rows = queryset.prefetch_related(None).values_list(*ROW_FIELDS).iterator(chunk_size=CHUNK_SIZE)
    while chunk := list(itertools.islice(rows, CHUNK_SIZE)):
        records = {values[0]: dict(zip(ROW_FIELDS, values), group_names=[], tag_names=[], branch_slugs=[]) for values in chunk}
        pks = list(records)
        links = (
            ("group_names", Customer.groups.through.objects.filter(customer_id__in=pks).values_list("customer_id", "customergroup__name")),
            ("tag_names", TaggedCustomer.objects.filter(content_object_id__in=pks).values_list("content_object_id", "tag__name")),
            ("branch_slugs", Customer.branches.through.objects.filter(customer_id__in=pks).values_list("customer_id", "branch__slug")),
        )
        for key, pairs in links:
            for pk, name in pairs:
                records[pk][key].append(name)
        yield from records.values()


def iter_rows(queryset, columns):
    yield [heading for heading, _getter in columns]
    getters = [getter for _heading, getter in columns]
    for record in iter_records(queryset):
        yield [getter(record) for getter in getters]


def _csv_cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat(sep=" ") if isinstance(value, datetime.datetime) else value.isoformat()
    if isinstance(value, (int, Decimal, float)):
        return str(value)
    return neutralise_csv(str(value))


class _Echo:
    def write(self, value):
        return value


def stream_csv(queryset, columns=None):
    """CSV text, chunk by chunk: UTF-8 with a BOM, so that Excel reads umlauts right."""
    writer = csv.writer(_Echo())
    yield CSV_BOM
    for row in iter_rows(queryset, columns or export_columns()):
        yield writer.writerow([_csv_cell(value) for value in row])


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
