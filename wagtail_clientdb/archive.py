"""Archived customers: out of the daily lists, not erased.

Archiving is a state of the one company record (``Customer.archived_at``): the listing, the
API's list and the exports leave archived customers out unless asked for them
(:data:`ArchivedChoice`), everything else — reading one, its history, deleting it through
the queue — goes on as before. So only who changes the record directly may archive or
restore (:func:`wagtail_clientdb.scope.edit_mode`): the head office, and a branch its own
local customers; a branch never archives a customer the head office shares with it for
every other branch too.

A customer who books again comes back by itself (:func:`restore_by_booking`, called by
:func:`wagtail_clientdb.booking.save_appointment`). Every change is in the customer's history.
"""

from django.core.exceptions import PermissionDenied
from django.db import models, transaction
from django.db.models import F
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.log_actions import get_active_log_context

from . import audit, bulk, scope
from .models import Customer

ARCHIVE_ACTION = "wagtail_clientdb.archive"
RESTORE_ACTION = "wagtail_clientdb.restore"


class ArchivedChoice(models.TextChoices):
    """Which customers a list shows: the query string's ``archived=…``."""

    NO = "no", _("Not archived")
    YES = "yes", _("Archived only")
    ANY = "any", _("Archived and not archived")


#: What a list shows when not asked otherwise.
DEFAULT_CHOICE = ArchivedChoice.NO


def in_list(queryset, choice=DEFAULT_CHOICE):
    """``queryset`` narrowed to the customers ``choice`` shows (``None``: the default)."""
    choice = choice or DEFAULT_CHOICE
    if choice == ArchivedChoice.NO:
        return queryset.filter(archived_at__isnull=True)
    if choice == ArchivedChoice.YES:
        return queryset.filter(archived_at__isnull=False)
    return queryset


def may_archive(viewer, customer):
    """Archiving changes the company record: direct editors only."""
    return scope.edit_mode(viewer, customer) == scope.EditMode.DIRECT


def archive(viewer, customers, *, now=None):
    """Archive ``customers`` (those not archived yet); returns how many were archived.

    Raises PermissionDenied, changing nothing, when the viewer may not archive one of them.
    """
    now = now or timezone.now()
    return _change(viewer, customers, ARCHIVE_ACTION, archived_at=now, archived_by=viewer.user, now=now)


def restore(viewer, customers, *, now=None):
    """Bring archived ``customers`` back into the lists; returns how many were restored."""
    return _change(viewer, customers, RESTORE_ACTION, archived_at=None, archived_by=None, now=now or timezone.now())


def _change(viewer, customers, action, *, archived_at, archived_by, now):
    customers = list({customer.pk: customer for customer in customers}.values())
    if not all(may_archive(viewer, customer) for customer in customers):
        raise PermissionDenied
    ids = sorted(customer.pk for customer in customers)
    with transaction.atomic():
        # Those whose state changes, read under their row locks: a customer archived twice
        # at the same time is archived (and logged) once.
        changing = (
            Customer.objects.select_for_update()
            .filter(bulk.any_of("id", ids), archived_at__isnull=archived_at is not None)
            .order_by("pk")
        )
        changed = set(changing.values_list("pk", flat=True))
        if not changed:
            return 0
        Customer.objects.filter(bulk.any_of("id", sorted(changed))).update(
            archived_at=archived_at, archived_by=archived_by, version=F("version") + 1, updated_at=now
        )
        audit.log_rows(
            Customer, action, [(customer.pk, str(customer), {}) for customer in customers if customer.pk in changed],
            user=viewer.user, branch=audit.acting_branch(viewer.user), timestamp=now, content_changed=True,
        )
    for customer in customers:
        if customer.pk in changed:
            customer.archived_at, customer.archived_by = archived_at, archived_by
    return len(changed)


def restore_by_booking(appointment, *, now=None):
    """Bring the customer of a new booking back into the lists, if it was archived: it is
    coming again. Call inside the booking's transaction, after the appointment is saved."""
    now = now or timezone.now()
    restored = Customer.objects.filter(pk=appointment.customer_id, archived_at__isnull=False).update(
        archived_at=None, archived_by=None, version=F("version") + 1, updated_at=now
    )
    if restored:
        customer = Customer.objects.get(pk=appointment.customer_id)
        audit.log_rows(
            Customer, RESTORE_ACTION, [(customer.pk, str(customer), {"booking": appointment.pk})],
            user=get_active_log_context().user, timestamp=now, content_changed=True,
        )
    return bool(restored)

