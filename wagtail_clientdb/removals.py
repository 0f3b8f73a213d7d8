"""Customers and appointments gone from a branch's view, kept for a sync.

A client that keeps a copy of the customers (a newsletter tool, a till) learns of new and
changed ones from the API's ``updated_since``; one that was deleted, merged into another or
is no longer shared with the client's branch is not in that list any more, and without this
the copy would keep a person the business has deleted. Each such change writes a
:class:`~wagtail_clientdb.models.CustomerRemoval` in the same transaction, read back by
:func:`removed_from_view` for the branch that lost sight of the customer. Entries hold no
personal data and are kept ``REMOVALS_KEPT_DAYS``; a client away longer reads everything again.
Appointments deleted or moved to another branch are kept the same way
(:class:`~wagtail_clientdb.models.AppointmentRemoval`, written by the model's signals, so that
every way of deleting one — the admin's delete view and bulk action, code — is counted).
"""

import datetime

from django.db.models import Q
from django.utils import timezone

from . import bulk, conf
from .models import AppointmentRemoval, AppointmentRemovalReason, Branch, Customer, CustomerRemoval, RemovalReason


def seen_by(customer_ids):
    """``{customer id: (shared with all branches, ids of the branches that see it)}`` as stored."""
    ids = list(customer_ids)
    seen = {
        pk: (everywhere, {home} if home else set())
        for pk, everywhere, home in Customer.objects.filter(bulk.any_of("id", ids)).values_list(
            "pk", "shared_with_all_branches", "home_branch_id"
        )
    }
    for customer_id, branch_id in Customer.branches.through.objects.filter(bulk.any_of("customer_id", ids)).values_list(
        "customer_id", "branch_id"
    ):
        seen[customer_id][1].add(branch_id)
    return seen


def _branches_in_scope(customer_ids):
    """``{customer id: ids of the branches whose scope takes it in}``, "all branches" spelt out."""
    every = None
    in_scope = {}
    for pk, (everywhere, branch_ids) in seen_by(customer_ids).items():
        if everywhere:
            every = set(Branch.objects.values_list("pk", flat=True)) if every is None else every
            branch_ids = every
        in_scope[pk] = set(branch_ids)
    return in_scope


def _record_lost_sight(lost, reason):
    """``lost``: customer id → ids of the branches that no longer see it; an entry for each."""
    now = timezone.now()
    CustomerRemoval.objects.bulk_create(
        (
            CustomerRemoval(customer_number=pk, reason=reason, branch_id=branch_id, removed_at=now)
            for pk, branch_ids in lost.items()
            for branch_id in sorted(branch_ids)
        ),
        batch_size=bulk.BATCH_SIZE,
    )


def record_queued_for_deletion(blocking, blocked_before):
    """Customers whose deletion is open are seen only by the branches with an upcoming
    appointment of theirs (:func:`wagtail_clientdb.scope.visible_in_branches_q`). ``blocking``:
    customer id → ids of those branches now; ``blocked_before``: the same before, for requests
    that were blocked already (others were seen by their whole scope). An entry for each branch
    that no longer sees a customer; a cancelled request brings it back as a change
    (:func:`wagtail_clientdb.deletion.cancel`)."""
    in_scope = _branches_in_scope(list(blocking))
    _record_lost_sight(
        {
            pk: (in_scope[pk] & blocked_before[pk] if pk in blocked_before else in_scope[pk]) - blocking[pk]
            for pk in blocking
        },
        RemovalReason.DELETION_QUEUED,
    )


def record_deleted(customer_ids, *, merged_into=None):
    """Before ``customer_ids`` are deleted (their scope is read from their rows): the company's
    entry and one per branch that saw each of them."""
    reason = RemovalReason.DELETED if merged_into is None else RemovalReason.MERGED
    now = timezone.now()
    entries = []
    for pk, (everywhere, branch_ids) in seen_by(customer_ids).items():
        common = {"customer_number": pk, "reason": reason, "merged_into": merged_into, "removed_at": now}
        entries.append(CustomerRemoval(shared_with_all_branches=everywhere, **common))
        if not everywhere:
            entries.extend(CustomerRemoval(branch_id=branch_id, **common) for branch_id in sorted(branch_ids))
    CustomerRemoval.objects.bulk_create(entries, batch_size=bulk.BATCH_SIZE)


def record_unshared(before, after):
    """Sharing changed from ``before`` to ``after`` (each as :func:`seen_by` gives it, for the
    same customers): an entry for each branch that no longer sees a customer."""
    _record_lost_sight(
        {
            pk: was_seen_by - after[pk][1]
            for pk, (was_everywhere, was_seen_by) in before.items()
            # "All branches" is never narrowed; widened to it, every branch sees the customer.
            if not was_everywhere and not after[pk][0]
        },
        RemovalReason.UNSHARED,
    )


def removed_from_view(branch, since=None):
    """What left the view of ``branch`` (``None``: the company's, deletions and merges) since
    ``since``, oldest first."""
    if branch is None:
        removals = CustomerRemoval.objects.filter(branch=None)
    else:
        removals = CustomerRemoval.objects.filter(Q(branch=branch) | Q(branch=None, shared_with_all_branches=True))
    if since is not None:
        removals = removals.filter(removed_at__gte=since)
    return removals.order_by("removed_at", "customer_number", "pk")


def record_appointment_deleted(appointment):
    AppointmentRemoval.objects.create(
        appointment_number=appointment.pk, branch_id=appointment.branch_id, reason=AppointmentRemovalReason.DELETED
    )


def record_appointment_moved(appointment, from_branch_id):
    """``appointment`` now belongs to another branch than ``from_branch_id``, whose list lost it."""
    AppointmentRemoval.objects.create(appointment_number=appointment.pk, branch_id=from_branch_id, reason=AppointmentRemovalReason.MOVED)


def appointments_removed_from_view(branch, since=None):
    """What left the appointments of ``branch`` since ``since``, oldest first; for the company
    (``branch`` ``None``), the deleted ones (a moved one is still the company's)."""
    if branch is None:
        removals = AppointmentRemoval.objects.filter(reason=AppointmentRemovalReason.DELETED)
    else:
        removals = AppointmentRemoval.objects.filter(branch=branch)
    if since is not None:
        removals = removals.filter(removed_at__gte=since)
    return removals.order_by("removed_at", "appointment_number", "pk")


def forget_expired(now=None):
    """Delete the entries (of customers and appointments) older than ``REMOVALS_KEPT_DAYS``;
    returns how many."""
    before = (now or timezone.now()) - datetime.timedelta(days=conf.get("REMOVALS_KEPT_DAYS"))
    deleted, _counts = CustomerRemoval.objects.filter(removed_at__lt=before).delete()
    deleted_too, _counts = AppointmentRemoval.objects.filter(removed_at__lt=before).delete()
    return deleted + deleted_too
