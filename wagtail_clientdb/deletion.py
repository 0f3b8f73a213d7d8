"""The "Customers to delete" queue: the one irreversible act of the product.

A customer is never deleted while it has an upcoming appointment (booked, starting in
the future) in any branch. Requesting deletion hides the customer at once from every
branch without such an appointment; the branches that have one keep it until the last
blocking appointment is cancelled or has taken place, and then the customer is deleted.

The check and the delete are one transaction holding the customer's row lock; booking
takes the same lock and refuses customers whose deletion is pending
(:func:`lock_customer_for_booking`), so a booking and a deletion can never both win.
"""

import datetime
import logging
from collections import defaultdict

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import CharField, Value
from django.db.models.functions import Concat
from django.utils import timezone
from django.utils.translation import gettext as _
from wagtail.log_actions import log

from . import audit, bulk, removals, scope, times
from .models import Appointment, ClientDBLogEntry, Customer, DeletionReason, DeletionRequest, DeletionStatus

logger = logging.getLogger(__name__)

OPEN = [DeletionStatus.PENDING, DeletionStatus.BLOCKED]

REQUESTED = "wagtail_clientdb.deletion_requested"


class BookingRefused(ValidationError):
    pass


def open_request(customer):
    return DeletionRequest.objects.filter(customer=customer, status__in=OPEN).first()


def request_deletion(viewer, customer, *, log_action=REQUESTED):
    """Queue ``customer`` for deletion and process the request at once.

    Returns the request (``status`` tells whether the customer is gone or blocked).
    Raises PermissionDenied when the viewer may not delete this customer. The request is
    logged as ``log_action`` (the API's says "via API").
    """
    if not scope.can_delete(viewer, customer):
        raise PermissionDenied
    try:
        with transaction.atomic():
            request = DeletionRequest.objects.create(
                customer=customer,
                customer_number=customer.pk,
                requested_by=viewer.user,
                requested_in_branch=viewer.branch,
            )
            log(customer, log_action, user=viewer.user)
    except IntegrityError:
        request = open_request(customer)
    return process(request)


def process(request, now=None):
    """Try an open request again: delete the customer, or record what blocks it per branch."""
    now = now or timezone.now()
    with transaction.atomic():
        request = DeletionRequest.objects.select_for_update().get(pk=request.pk)
        if request.status not in OPEN or request.customer_id is None:
            return request
        customer = Customer.objects.select_for_update().filter(pk=request.customer_id).first()
        if customer is None:
            return request
        blocking = list(
            Appointment.objects.upcoming(now).filter(customer=customer).select_related("branch", "service").order_by("start")
        )
        request.last_attempt_at = now
        if blocking:
            blocked_before = {}
            if request.status == DeletionStatus.BLOCKED:
                blocked_before[customer.pk] = set(request.blocking_branches.values_list("pk", flat=True))
            removals.record_queued_for_deletion({customer.pk: {appointment.branch_id for appointment in blocking}}, blocked_before)
            if request.status != DeletionStatus.BLOCKED:
                log(customer, "wagtail_clientdb.deletion_blocked", user=None, data=_blocked_data(blocking))
            request.status = DeletionStatus.BLOCKED
            request.errors = [blocking_error(appointment) for appointment in blocking]
            request.save(update_fields=["status", "errors", "last_attempt_at"])
            request.blocking_branches.set({appointment.branch for appointment in blocking})
            return request
        _delete_customer(customer)
        request.status = DeletionStatus.DONE
        request.completed_at = now
        request.errors = []
        request.save(update_fields=["status", "errors", "last_attempt_at", "completed_at"])
        request.blocking_branches.clear()
        request.customer = None  # gone with the customer (SET_NULL); the entry names only the number
        log(request, "wagtail_clientdb.deletion_completed", user=None, data={"customer": request.customer_number})
    logger.info("Customer %s deleted (deletion request %s)", request.customer_number, request.pk)
    return request


def _blocked_data(appointments):
    return {"branches": sorted({appointment.branch.name for appointment in appointments})}


def blocking_error(appointment):
    """What blocks a deletion, kept as facts: the words are chosen when it is shown
    (:func:`describe_blocking`), in the language of whoever reads it."""
    return {
        "branch": appointment.branch_id,
        "branch_name": appointment.branch.name,
        "appointment": appointment.pk,
        "start": appointment.start.isoformat(),
        # The branch's own clock: how the branch knows the appointment.
        "local_start": times.iso(appointment.start, appointment.branch),
        "service": appointment.service.name,
    }


def describe_blocking(error):
    """One blocking appointment in the reader's language and date format."""
    if "local_start" in error:
        # Kept with the branch's offset: shown on the branch's clock.
        start = datetime.datetime.fromisoformat(error["local_start"])
        shown = times.moment(start, start.tzinfo)
    else:  # kept by an earlier version, in UTC
        shown = times.moment(datetime.datetime.fromisoformat(error["start"]))
    return _("%(branch)s: upcoming appointment “%(service)s” on %(start)s") % {
        "branch": error["branch_name"],
        "service": error["service"],
        "start": shown,
    }


def describe_error_lines(request):
    """What blocks a deletion request, one line per blocking appointment."""
    return [describe_blocking(error) for error in request.errors]


def describe_errors(request):
    return "; ".join(describe_error_lines(request))


def _delete_customer(customer):
    # Past appointments stay for the business's records, without the person: notes and
    # booking answers may hold personal data too. The history keeps what happened, not the name.
    # Changed now: a client syncing appointments by updated_since learns the person is gone.
    Appointment.objects.filter(customer=customer).update(customer=None, notes="", attributes={}, updated_at=timezone.now())
    ClientDBLogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Customer), object_id=str(customer.pk)
    ).update(label=_("Customer #%(number)s (deleted)") % {"number": customer.pk})
    # What a merge kept of the customers merged into this one goes with it.
    from .merging import forget_merges_of

    forget_merges_of(customer)
    customer_id = customer.pk
    removals.record_deleted([customer_id])
    customer.delete()
    audit.customers_deleted([customer_id], reason="deletion_request")


def request_deletions(viewer, customers, now=None, *, reason=DeletionReason.REQUESTED, log_action=REQUESTED, only_open=False):
    """:func:`request_deletion` for many customers at once (an import rolled back, customers
    with no appointment for years), with the same rules and one query per step instead of
    one per customer. New requests record ``reason``; open ones keep theirs.

    In one transaction holding the customers' row locks: each customer gets a request (or
    its open one is tried again); one with upcoming appointments stays, blocked, with an
    error per appointment; the others are deleted as :func:`process` deletes them. Customers
    gone meanwhile are left out. Returns ``{customer id: request}``. Raises PermissionDenied
    when the viewer may not delete one of them. New requests are logged as ``log_action``
    (``None``: the caller logs them). ``only_open``: only customers whose request is still open
    (the queue tried again: a request cancelled meanwhile is not made anew).
    """
    now = now or timezone.now()
    if not all(scope.can_delete(viewer, customer) for customer in customers):
        raise PermissionDenied
    ids = sorted({customer.pk for customer in customers})
    requests = {}
    with transaction.atomic():
        locked = list(Customer.objects.select_for_update().filter(bulk.any_of("id", ids)).order_by("pk").values_list("pk", flat=True))
        if not locked:
            return requests
        open_requests = {
            request.customer_id: request
            for request in DeletionRequest.objects.select_for_update().filter(bulk.any_of("customer_id", locked), status__in=OPEN)
        }
        if only_open:
            locked = [pk for pk in locked if pk in open_requests]
        # Who sees each customer now: only the branches blocking an open request, else its scope.
        was_blocked = {pk: request.pk for pk, request in open_requests.items() if request.status == DeletionStatus.BLOCKED}
        blocked_in = defaultdict(set)
        for request_id, branch_id in DeletionRequest.blocking_branches.through.objects.filter(
            bulk.any_of("deletionrequest_id", list(was_blocked.values()))
        ).values_list("deletionrequest_id", "branch_id"):
            blocked_in[request_id].add(branch_id)
        blocking = defaultdict(list)
        upcoming = Appointment.objects.upcoming(now).filter(bulk.any_of("customer_id", locked))
        for appointment in upcoming.select_related("branch", "service").order_by("start"):
            blocking[appointment.customer_id].append(appointment)
        new = []
        for pk in locked:
            request = open_requests.get(pk) or DeletionRequest(
                customer_id=pk, customer_number=pk, requested_by=viewer.user, requested_in_branch=viewer.branch, reason=reason
            )
            request.last_attempt_at = now
            if blocking[pk]:
                request.status, request.errors = DeletionStatus.BLOCKED, [blocking_error(a) for a in blocking[pk]]
            else:
                request.status, request.errors, request.completed_at = DeletionStatus.DONE, [], now
            if request.pk is None:
                new.append(request)
            requests[pk] = request
        DeletionRequest.objects.bulk_create(new, batch_size=bulk.BATCH_SIZE)
        _log_bulk_requests(locked, new, open_requests, blocking, log_action, viewer.user)
        DeletionRequest.objects.bulk_update(
            list(open_requests.values()), ["status", "errors", "last_attempt_at", "completed_at"], batch_size=bulk.BATCH_SIZE
        )
        through = DeletionRequest.blocking_branches.through
        through.objects.filter(bulk.any_of("deletionrequest_id", [r.pk for r in open_requests.values()])).delete()
        through.objects.bulk_create(
            [
                through(deletionrequest_id=requests[pk].pk, branch_id=branch_id)
                for pk, appointments in blocking.items()
                for branch_id in {a.branch_id for a in appointments}
            ],
            batch_size=bulk.BATCH_SIZE,
        )
        removals.record_queued_for_deletion(
            {pk: {a.branch_id for a in blocking[pk]} for pk in locked if blocking[pk]},
            {pk: blocked_in[request_id] for pk, request_id in was_blocked.items()},
        )
        done = [pk for pk in locked if not blocking[pk]]
        if done:
            _delete_customers(done)
            for pk in done:
                requests[pk].customer = None  # gone with the customer; the entry names only the number
            audit.log_many(
                [requests[pk] for pk in done],
                "wagtail_clientdb.deletion_completed",
                data=lambda request: {"customer": request.customer_number},
            )
    logger.info("%s customers deleted, %s blocked (bulk deletion request)", len(done), len(locked) - len(done))
    return requests


def _log_bulk_requests(locked, new, open_requests, blocking, log_action, user):
    customers = Customer.objects.in_bulk(locked)
    if log_action:
        audit.log_many([customers[request.customer_id] for request in new], log_action, user=user)
    newly_blocked = [
        pk for pk in locked if blocking[pk] and getattr(open_requests.get(pk), "status", None) != DeletionStatus.BLOCKED
    ]
    audit.log_many(
        [customers[pk] for pk in newly_blocked],
        "wagtail_clientdb.deletion_blocked",
        data=lambda customer: _blocked_data(blocking[customer.pk]),
    )


def _delete_customers(ids):
    """:func:`_delete_customer` for many customers (their rows locked by the caller)."""
    Appointment.objects.filter(bulk.any_of("customer_id", ids)).update(
        customer=None, notes="", attributes={}, updated_at=timezone.now()
    )
    before, _number, after = _("Customer #%(number)s (deleted)").partition("%(number)s")
    ClientDBLogEntry.objects.filter(
        bulk.any_of("object_id", [str(pk) for pk in ids], "text"), content_type=ContentType.objects.get_for_model(Customer)
    ).update(label=Concat(Value(before), "object_id", Value(after), output_field=CharField()))
    removals.record_deleted(ids)
    for start in range(0, len(ids), bulk.BATCH_SIZE):
        Customer.objects.filter(bulk.any_of("id", ids[start : start + bulk.BATCH_SIZE])).delete()
    audit.customers_deleted(ids, reason="deletion_request")


def cancel(request):
    """Withdraw an open request: the customer is visible again everywhere it was."""
    with transaction.atomic():
        request = DeletionRequest.objects.select_for_update().get(pk=request.pk)
        if request.status not in OPEN:
            return request
        request.status = DeletionStatus.CANCELLED
        request.errors = []
        request.save(update_fields=["status", "errors"])
        request.blocking_branches.clear()
        if request.customer is not None:
            # Seen again where it was: a change for the branches' syncs (updated_since).
            Customer.objects.filter(pk=request.customer_id).update(updated_at=timezone.now())
            log(request.customer, "wagtail_clientdb.deletion_cancelled")
    return request


def process_queue(now=None):
    """Try every open request again, as :func:`process` does, a chunk of customers per
    transaction (:func:`request_deletions`); returns how many customers were deleted."""
    now = now or timezone.now()
    company = scope.Viewer(None, True)
    deleted, after = 0, 0
    while True:
        ids = list(
            DeletionRequest.objects.filter(status__in=OPEN, customer_id__gt=after)
            .order_by("customer_id")
            .values_list("customer_id", flat=True)[: bulk.BATCH_SIZE]
        )
        if not ids:
            return deleted
        after = ids[-1]
        customers = list(Customer.objects.filter(bulk.any_of("id", ids)))
        requests = request_deletions(company, customers, now=now, log_action=None, only_open=True)
        deleted += sum(request.status == DeletionStatus.DONE for request in requests.values())


def process_for_customer(customer_id):
    request = DeletionRequest.objects.filter(customer_id=customer_id, status__in=OPEN).first()
    if request is not None:
        process(request)


def lock_customer_for_booking(customer_id):
    """Lock a customer's row for a new or moved booking (call inside a transaction).

    Refuses a customer that is gone or queued for deletion.
    """
    customer = Customer.objects.select_for_update().filter(pk=customer_id).first()
    if customer is None:
        raise BookingRefused(_("This customer no longer exists."), code="customer_deleted")
    if DeletionRequest.objects.filter(customer=customer, status__in=OPEN).exists():
        raise BookingRefused(
            _("This customer is queued for deletion and cannot be booked. Cancel the deletion request first."),
            code="customer_pending_deletion",
        )
    return customer
