"""Everything held about a person, for their request to see or take it (GDPR art. 15 and 20).

:func:`collect` gathers it from every branch — the record, each branch's local values,
attributes by their labels, groups, tags, appointments with their booking answers, the consent
history, a block from online booking, deletion requests and the audit entries about the
customer — as plain data that :func:`as_json` writes for the person to take elsewhere and the
admin page shows for reading or printing. Only managers ask for it (they see the whole
company); every download is recorded in the customer's history.
"""

import datetime
import json

from django.contrib.contenttypes.models import ContentType
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from wagtail.admin.utils import get_user_display_name
from wagtail.log_actions import log

from . import attribute_types, attributes, groups, scope, times
from .models import AttributeTarget, ClientDBLogEntry, Customer, OnlineBookingBlock

RECORD_FIELDS = (
    "first_name", "last_name", "email", "phone_raw", "phone", "birthday", "notes", "external_id",
    "marketing_consent", "source", "created_at", "updated_at",
)
LOCAL_FIELDS = ("first_name", "last_name", "email", "phone_raw", "phone", "birthday", "notes")


def _label(model, name):
    return capfirst(str(model._meta.get_field(name).verbose_name))


def _attributes(target, stored):
    """Attribute values by their labels, as the admin shows them; keys of deleted definitions kept."""
    definitions = {definition.key: definition for definition in attributes.active_definitions(target)}
    shown = {}
    for key, value in (stored or {}).items():
        definition = definitions.get(key)
        shown[str(definition.label) if definition else key] = (
            attribute_types.display(definition, value) if definition else value
        )
    return shown


def _user(user):
    return get_user_display_name(user) if user else None


def collect(customer):
    """What is held about ``customer``, in every branch (a dict of plain values)."""
    customer = Customer.objects.select_related("home_branch").get(pk=customer.pk)
    if customer.shared_with_all_branches:
        sharing = {"all_branches": True, "branches": []}
    elif customer.home_branch_id:
        sharing = {"all_branches": False, "local_to": customer.home_branch.name, "branches": []}
    else:
        sharing = {"all_branches": False, "branches": sorted(b.name for b in customer.branches.all())}
    block = OnlineBookingBlock.objects.filter(customer=customer).first()
    entries = ClientDBLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).select_related("user").order_by("timestamp", "pk")
    return {
        "customer_number": customer.pk,
        "exported_at": datetime.datetime.now(datetime.UTC),
        "record": {
            **{_label(Customer, name): getattr(customer, name) for name in RECORD_FIELDS},
            _label(Customer, "source"): customer.get_source_display(),
        },
        "sharing": sharing,
        "attributes": _attributes(AttributeTarget.CUSTOMER, customer.attributes),
        # Dynamic groups too, as the head office sees them.
        "groups": groups.names_of(scope.Viewer(None, True), customer),
        "tags": sorted(tag.name for tag in customer.tags.all()),
        "local_values": [
            {
                "branch": override.branch.name,
                **{
                    _label(type(override), name): getattr(override, name)
                    for name in LOCAL_FIELDS
                    if getattr(override, name) not in (None, "")
                },
                "attributes": _attributes(AttributeTarget.CUSTOMER, override.attributes),
            }
            for override in customer.overrides.select_related("branch").order_by("branch__name")
        ],
        "appointments": [
            {
                "branch": appointment.branch.name,
                # On the branch's clock, with its offset: the times the person knows.
                "start": timezone.localtime(appointment.start, appointment.branch.zoneinfo),
                "end": timezone.localtime(appointment.end, appointment.branch.zoneinfo),
                "service": str(appointment.service) if appointment.service_id else None,
                "status": appointment.get_status_display(),
                "source": appointment.get_source_display(),
                "staff": _user(appointment.staff),
                "notes": appointment.notes,
                "booking_answers": _attributes(AttributeTarget.BOOKING, appointment.attributes),
            }
            for appointment in customer.appointments.select_related("branch", "service", "staff").order_by("start", "pk")
        ],
        "consent_history": [
            {
                "given": event.given,
                "channel": event.get_channel_display(),
                "recorded_at": event.recorded_at,
                "recorded_by": _user(event.recorded_by),
            }
            for event in customer.consent_events.select_related("recorded_by").order_by("recorded_at", "pk")
        ],
        "online_booking_block": (
            {"reason": block.reason, "since": block.created_at, "branches": sorted(b.name for b in block.branches.all())}
            if block else None
        ),
        "deletion_requests": [
            {"status": request.get_status_display(), "requested_at": request.requested_at}
            for request in customer.deletion_requests.order_by("requested_at", "pk")
        ],
        "history": [
            {"at": entry.timestamp, "action": str(entry.message), "by": _user(entry.user)}
            for entry in entries
        ],
    }


def readable(value):
    """``value`` (from :func:`collect`) as the admin page shows it: yes/no, dates and times in the
    reader's language, a date and time on the clock it carries (a branch's for appointments)."""
    if isinstance(value, dict):
        return {key: readable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [readable(item) for item in value]
    if isinstance(value, bool):
        return _("yes") if value else _("no")
    if isinstance(value, datetime.datetime):
        return times.moment(value, value.tzinfo if value.tzinfo is not datetime.UTC else None)
    if isinstance(value, datetime.date):
        return times.day(value)
    return value


def as_json(data):
    return json.dumps(data, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2)


def record_download(customer, user, kind):
    """The download is in the customer's history: who took the person's data, and when."""
    log(customer, "wagtail_clientdb.personal_data_export", user=user, data={"format": kind})
