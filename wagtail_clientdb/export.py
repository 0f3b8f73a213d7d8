"""Export of customer lists: exactly the rows and the values a listing shows.

Rows are read from the database in chunks and written as they come (CSV streamed to the
response, XLSX through openpyxl's write-only mode), so memory stays flat however many
customers are exported.
"""

import csv
import datetime
import tempfile
from decimal import Decimal

from django.http import FileResponse, StreamingHttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell

from . import attribute_types
from .contact import format_phone
from .imports import columns as fields
from .models import AttributeDefinition, AttributeTarget
from .spreadsheets import clean_xlsx_text, neutralise_csv

CHUNK_SIZE = 2000
CSV_BOM = "\ufeff"


def describe_branches(customer):
    """The sharing of a customer, as import reads it back: ``*`` for all, else branch slugs."""
    if customer.home_branch_id:
        return customer.home_branch.slug
    if customer.shared_with_all_branches:
        return "*"
    return ", ".join(sorted(branch.slug for branch in customer.branches.all()))


def export_columns():
    """``(heading, value getter)`` for each exported column, attributes last."""
    values = {
        fields.FIRST_NAME: lambda c: c.eff_first_name,
        fields.LAST_NAME: lambda c: c.eff_last_name,
        fields.EMAIL: lambda c: c.eff_email,
        fields.PHONE: lambda c: format_phone(c.eff_phone, c.eff_phone_raw),
        fields.NOTES: lambda c: c.eff_notes,
        fields.BIRTHDAY: lambda c: c.eff_birthday,
        fields.CONSENT: lambda c: 1 if c.marketing_consent else 0,
        fields.GROUPS: lambda c: ", ".join(group.name for group in c.groups.all()),
        fields.TAGS: lambda c: ", ".join(sorted(tag.name for tag in c.tags.all())),
        fields.BRANCHES: describe_branches,
        "bookings": lambda c: c.bookings_count,
        "source": lambda c: c.source,
        fields.EXTERNAL_ID: lambda c: c.external_id,
        "created": lambda c: timezone.localtime(c.created_at).replace(microsecond=0, tzinfo=None),
    }
    headed = [(str(heading), values[target]) for target, heading in fields.EXPORT_HEADINGS.items()]
    definitions = AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER, is_active=True)
    for definition in definitions.order_by("sort_order", "label"):
        headed.append(
            (
                definition.key,
                lambda c, d=definition: attribute_types.to_python(d, (c.eff_attributes or {}).get(d.key)),
            )
        )
    return headed


def iter_rows(queryset, columns):
    yield [heading for heading, _getter in columns]
    for customer in queryset.iterator(chunk_size=CHUNK_SIZE):
        yield [getter(customer) for _heading, getter in columns]


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
