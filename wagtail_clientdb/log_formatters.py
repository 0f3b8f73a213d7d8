"""How the app's log entries read in the histories, in the reader's language.

Entries keep facts (:mod:`.audit`): field names, ids, counts, channels. The words are chosen
here when an entry is shown.
"""

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, ngettext
from wagtail.log_actions import LogFormatter

from .models import AppointmentStatus, AttributeDefinition, ConsentChannel, Customer

ATTRIBUTE_PREFIX = "attributes."


def field_label(name):
    if name.startswith(ATTRIBUTE_PREFIX):
        key = name[len(ATTRIBUTE_PREFIX) :]
        return AttributeDefinition.objects.filter(key=key).values_list("label", flat=True).first() or key
    if name == "groups":
        return _("groups")
    if name == "tags":
        return _("tags")
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except Exception:  # noqa: BLE001 - a field removed since the entry was written
        return name


def field_list(names):
    return ", ".join(field_label(name) for name in names or [])


def numbers(ids):
    return ", ".join(f"#{pk}" for pk in ids or [])


class EditFormatter(LogFormatter):
    label = gettext_lazy("Edit customer")

    def format_message(self, log_entry):
        data = log_entry.data
        if data.get("local_branch_name"):
            return _("Changed the local values of %(branch)s: %(fields)s") % {
                "branch": data["local_branch_name"],
                "fields": field_list(data.get("fields")),
            }
        return _("Changed: %(fields)s") % {"fields": field_list(data.get("fields"))}


class EditViaAPIFormatter(LogFormatter):
    label = gettext_lazy("Edit via API")

    def format_message(self, log_entry):
        fields = log_entry.data.get("fields")
        if not fields:
            return _("Changed via API")
        if log_entry.data.get("local_branch_name"):
            return _("Changed the local values of %(branch)s via API: %(fields)s") % {
                "branch": log_entry.data["local_branch_name"],
                "fields": field_list(fields),
            }
        return _("Changed via API: %(fields)s") % {"fields": field_list(fields)}


def _import_name(data):
    if data.get("job"):
        return _("import #%(number)s") % {"number": data["job"]}
    return _("the API's bulk import")


class ImportCreateFormatter(LogFormatter):
    label = gettext_lazy("Create by import")

    def format_message(self, log_entry):
        return _("Created by %(import)s") % {"import": _import_name(log_entry.data)}


class ImportEditFormatter(LogFormatter):
    label = gettext_lazy("Change by import")

    def format_message(self, log_entry):
        data = log_entry.data
        values = {"import": _import_name(data), "fields": field_list(data.get("fields"))}
        if data.get("local_branch_name"):
            values["branch"] = data["local_branch_name"]
            return _("Local values of %(branch)s changed by %(import)s: %(fields)s") % values
        return _("Changed by %(import)s: %(fields)s") % values


class ImportFormatter(LogFormatter):
    label = gettext_lazy("Import customers")

    def format_message(self, log_entry):
        data = log_entry.data
        counts = data.get("counts", {})
        values = {
            "file": data.get("file", ""),
            "new": counts.get("new", 0),
            "updated": counts.get("updated", 0),
            "unchanged": counts.get("unchanged", 0),
            "refused": counts.get("invalid", 0),
        }
        if data.get("refused_everything"):
            return _("Import of “%(file)s” refused: %(refused)s rows could not be imported, nothing was saved") % values
        return _("Imported “%(file)s”: %(new)s new, %(updated)s updated, %(unchanged)s unchanged, %(refused)s refused") % values


class ExportFormatter(LogFormatter):
    label = gettext_lazy("Export customers")

    def format_message(self, log_entry):
        data = log_entry.data
        return _("Exported %(rows)s customers as %(format)s; filters: %(filters)s") % {
            "rows": data.get("rows", 0),
            "format": data.get("format", "").upper(),
            "filters": data.get("filters") or _("none"),
        }


class SharingFormatter(LogFormatter):
    label = gettext_lazy("Change sharing")

    def format_message(self, log_entry):
        if log_entry.data.get("all_branches"):
            return _("Shared with all branches")
        if log_entry.data.get("branches"):
            return _("Shared with: %(branches)s") % {"branches": ", ".join(log_entry.data["branches"])}
        return _("Not shared with other branches")


def consent_source(data):
    """Where a consent came from: the channel, and the import, booking or API call."""
    channel = str(ConsentChannel(data["channel"]).label) if data.get("channel") in ConsentChannel.values else ""
    if data.get("import_job"):
        return _("%(channel)s, import #%(number)s") % {"channel": channel, "number": data["import_job"]}
    if data.get("appointment"):
        return _("%(channel)s, appointment #%(number)s") % {"channel": channel, "number": data["appointment"]}
    if data.get("reference"):
        return f"{channel}, {data['reference']}"
    return channel


class ConsentGivenFormatter(LogFormatter):
    label = gettext_lazy("Give marketing consent")

    def format_message(self, log_entry):
        return _("Marketing consent given (%(source)s)") % {"source": consent_source(log_entry.data)}


class ConsentWithdrawnFormatter(LogFormatter):
    label = gettext_lazy("Withdraw marketing consent")

    def format_message(self, log_entry):
        return _("Marketing consent withdrawn (%(source)s)") % {"source": consent_source(log_entry.data)}


class AppointmentStatusFormatter(LogFormatter):
    label = gettext_lazy("Change status")

    def format_message(self, log_entry):
        status = log_entry.data.get("status")
        shown = AppointmentStatus(status).label if status in AppointmentStatus.values else status
        return _("Status changed to %(status)s") % {"status": shown}


class DeletionBlockedFormatter(LogFormatter):
    label = gettext_lazy("Deletion blocked")

    def format_message(self, log_entry):
        return _("Deletion blocked by upcoming appointments in: %(branches)s") % {
            "branches": ", ".join(log_entry.data.get("branches", []))
        }


class DeletionCompletedFormatter(LogFormatter):
    label = gettext_lazy("Deletion completed")

    def format_message(self, log_entry):
        return _("Customer #%(number)s deleted") % {"number": log_entry.data.get("customer")}


class MergeFormatter(LogFormatter):
    label = gettext_lazy("Merge customers")

    def format_message(self, log_entry):
        return _("Merged with customers %(numbers)s") % {"numbers": numbers(log_entry.data.get("merged"))}


class MergedIntoFormatter(LogFormatter):
    label = gettext_lazy("Merge into another customer")

    def format_message(self, log_entry):
        return _("Merged into customer #%(number)s") % {"number": log_entry.data.get("survivor")}


class MergeUndoneFormatter(LogFormatter):
    label = gettext_lazy("Undo merge")

    def format_message(self, log_entry):
        return _("Merge undone: customers %(numbers)s restored") % {"numbers": numbers(log_entry.data.get("restored"))}


class RestoreFormatter(LogFormatter):
    label = gettext_lazy("Restore from the archive")

    def format_message(self, log_entry):
        if log_entry.data.get("booking"):
            return _("Restored from the archive by a booking")
        return _("Restored from the archive")


class RetentionDeletionFormatter(LogFormatter):
    label = gettext_lazy("Delete after years without an appointment")

    def format_message(self, log_entry):
        years = log_entry.data.get("years")
        return ngettext(
            "Deletion requested: no appointment for %(years)s year",
            "Deletion requested: no appointment for %(years)s years",
            years,
        ) % {"years": years}


#: action → formatter class
FORMATTERS = {
    "wagtail_clientdb.status": AppointmentStatusFormatter,
    "wagtail_clientdb.edit": EditFormatter,
    "wagtail_clientdb.edit_via_api": EditViaAPIFormatter,
    "wagtail_clientdb.import_create": ImportCreateFormatter,
    "wagtail_clientdb.import_edit": ImportEditFormatter,
    "wagtail_clientdb.import": ImportFormatter,
    "wagtail_clientdb.export": ExportFormatter,
    "wagtail_clientdb.sharing": SharingFormatter,
    "wagtail_clientdb.consent_given": ConsentGivenFormatter,
    "wagtail_clientdb.consent_withdrawn": ConsentWithdrawnFormatter,
    "wagtail_clientdb.deletion_blocked": DeletionBlockedFormatter,
    "wagtail_clientdb.deletion_completed": DeletionCompletedFormatter,
    "wagtail_clientdb.merge": MergeFormatter,
    "wagtail_clientdb.merged_into": MergedIntoFormatter,
    "wagtail_clientdb.merge_undone": MergeUndoneFormatter,
    "wagtail_clientdb.restore": RestoreFormatter,
    "wagtail_clientdb.retention_deletion": RetentionDeletionFormatter,
}

#: action → (label, message) of the actions whose message needs no facts.
SIMPLE_ACTIONS = {
    "wagtail_clientdb.create_via_api": (gettext_lazy("Create via API"), gettext_lazy("Created via API")),
    "wagtail_clientdb.create_by_booking": (gettext_lazy("Create by booking"), gettext_lazy("Created when booked")),
    "wagtail_clientdb.delete_via_api": (gettext_lazy("Delete via API"), gettext_lazy("Deletion requested via API")),
    "wagtail_clientdb.deletion_requested": (gettext_lazy("Request deletion"), gettext_lazy("Deletion requested")),
    "wagtail_clientdb.deletion_cancelled": (gettext_lazy("Cancel deletion request"), gettext_lazy("Deletion request cancelled")),
    "wagtail_clientdb.booking_block": (gettext_lazy("Block from online booking"), gettext_lazy("Blocked from online booking")),
    "wagtail_clientdb.booking_block_changed": (gettext_lazy("Change online booking block"), gettext_lazy("Online booking block changed")),
    "wagtail_clientdb.booking_unblock": (gettext_lazy("Lift online booking block"), gettext_lazy("Online booking allowed again")),
    "wagtail_clientdb.archive": (gettext_lazy("Archive"), gettext_lazy("Archived")),
    "wagtail_clientdb.personal_data_export": (gettext_lazy("Download personal data"), gettext_lazy("Personal data downloaded")),
    "wagtail_clientdb.merge_restored": (gettext_lazy("Restore by undoing a merge"), gettext_lazy("Restored by undoing a merge")),
    "wagtail_clientdb.not_a_duplicate": (
        gettext_lazy("Mark as not a duplicate"),
        gettext_lazy("Marked as not a duplicate of another customer"),
    ),
    "wagtail_clientdb.import_rollback_restore": (
        gettext_lazy("Roll back an import: restore"),
        gettext_lazy("Values from before an import restored"),
    ),
    "wagtail_clientdb.import_rollback_delete": (
        gettext_lazy("Roll back an import: delete"),
        gettext_lazy("Deletion requested: import rolled back"),
    ),
}


def register(actions):
    for action, formatter in FORMATTERS.items():
        actions.register_action(action)(formatter)
    for action, (label, message) in SIMPLE_ACTIONS.items():
        actions.register_action(action, label, message)
