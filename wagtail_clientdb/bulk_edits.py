"""The same change of many customers at once: the bulk actions on a selection or on every
customer of a listing or segment — tags, groups, archive, sharing, deletion requests.

"Select all" may choose a branch's 580,000 customers, so who may change which customer is
asked of the whole choice at once (:func:`split`), and a :class:`Change` is made a chunk of
customers at a time (:func:`chunks`) with a few statements per chunk, not several per
customer. Only the customers a change reaches are touched
(:func:`~wagtail_clientdb.versions.touch`) and logged; one that already carries a tag, or is
already in a group, is left as it is. Customers changed after the confirmation page was
opened are left as they are.

Up to ``BULK_ACTION_BACKGROUND_CUSTOMERS`` customers are changed in the request, in one
transaction; more by a background task (:func:`start_job`, :func:`run_job`), each chunk in
its own transaction: one transaction over a quarter of a million customers would hold their
row locks — and every booking of them — for the better part of a minute.
"""

import logging

from django.db import transaction
from django.http import QueryDict
from django.utils import timezone
from django.utils.translation import gettext as _
from wagtail.log_actions import LogContext

from . import archive, audit, bulk, conf, deletion, listing, scope, versions
from . import tags as tag_names
from .models import (
    Branch,
    BulkActionJob,
    BulkActionStatus,
    Customer,
    CustomerGroup,
    DeletionStatus,
    TaggedCustomer,
)

logger = logging.getLogger(__name__)

#: Customers read and changed at a time.
CHUNK = 2000


def split(action, viewer, customers):
    """The customers of ``customers`` (a queryset) that ``viewer`` may change with ``action``,
    and the others. Sharing is for the head office; everything else changes the one record:
    direct editors only (:func:`~wagtail_clientdb.scope.split_by_direct_edit`)."""
    if action == "share_with_branches":
        return (customers, customers.none()) if scope.can_manage_sharing(viewer) else (customers.none(), customers)
    return scope.split_by_direct_edit(viewer, customers)


def refusal_reason(action, viewer):
    """Why :func:`split` leaves the others out, as the confirmation page tells the user."""
    if action == "share_with_branches":
        return _("Only the head office shares customers with branches.")
    if viewer.branch is None:
        return _("You are not a member of any branch, so you cannot change customers.")
    return _(
        "A branch changes its own customers. Customers shared with other branches are changed by the "
        "head office; your branch keeps its own values of them on each customer's page."
    )


def chunks(ids, *, unchanged_since):
    """The customers with ``ids`` not changed after ``unchanged_since``, a list of up to
    :data:`CHUNK` at a time, in id order; each chunk read when its turn comes."""
    ids = sorted(ids)
    for start in range(0, len(ids), CHUNK):
        yield list(
            Customer.objects.filter(bulk.any_of("id", ids[start : start + CHUNK]), updated_at__lte=unchanged_since).order_by("pk")
        )


class Change:
    """What a bulk action does to each chunk of customers, the same in a request and in a
    background job. ``action``: the bulk action's type; ``options``: what its form chose, as
    JSON (tag names, a group's id, branch ids), which a job keeps."""

    def __init__(self, action, viewer, options):
        self.action, self.viewer = action, viewer
        if action == "add_tags":
            self.tags = tags_named(options["tags"])
        elif action == "remove_tags":
            # Only tags there are can be taken off: none is made for that.
            self.tags = tag_names.find(options["tags"])
        elif action in ("add_to_group", "remove_from_group"):
            self.group = CustomerGroup.objects.get(pk=options["group"])
        elif action == "share_with_branches":
            self.all_branches = bool(options["all_branches"])
            self.branches = list(Branch.objects.filter(pk__in=options["branches"]))

    def __call__(self, customers):
        """Change a chunk; returns ``(done, queued)``: customers tagged, grouped, archived,
        restored, shared or deleted, and those whose deletion waits for their appointments."""
        match self.action:
            case "add_tags":
                add_tags(customers, self.tags)
            case "remove_tags":
                remove_tags(customers, self.tags)
            case "add_to_group":
                add_to_group(customers, self.group)
            case "remove_from_group":
                remove_from_group(customers, self.group)
            case "archive":
                return archive.archive(self.viewer, customers), 0
            case "restore":
                return archive.restore(self.viewer, customers), 0
            case "share_with_branches":
                return scope.share_with_more_branches(customers, all_branches=self.all_branches, branches=self.branches), 0
            case "delete":
                requests = deletion.request_deletions(self.viewer, customers).values()
                deleted = sum(request.status == DeletionStatus.DONE for request in requests)
                return deleted, len(requests) - deleted
            case _:
                raise ValueError(f"not a bulk change: {self.action}")
        return len(customers), 0


def tags_named(names):
    """The customer tags of ``names``, made where missing, by the tag rule
    (:func:`wagtail_clientdb.tags.resolve`: "VIP" is the tag "vip" if there is one)."""
    return list(tag_names.resolve(names).values())


def add_tags(customers, tags):
    """Tag ``customers`` with ``tags``; returns the customers that gained one."""
    links = _links(TaggedCustomer, "content_object_id", "tag_id", customers, tags)
    missing = [(customer.pk, tag.pk) for customer in customers for tag in tags if (customer.pk, tag.pk) not in links]
    bulk.insert_links(TaggedCustomer, "content_object", "tag", missing)
    return _edited(customers, {pk for pk, _tag in missing}, "tags")


def remove_tags(customers, tags):
    """Take ``tags`` off ``customers``; returns the customers that lost one."""
    links = _links(TaggedCustomer, "content_object_id", "tag_id", customers, tags)
    if links:
        TaggedCustomer.objects.filter(
            bulk.any_of("content_object_id", [customer.pk for customer in customers]), tag__in=tags
        ).delete()
    return _edited(customers, {pk for pk, _tag in links}, "tags")


def add_to_group(customers, group):
    """Add ``customers`` to a manual ``group``; returns those that were not in it."""
    through = Customer.groups.through
    links = _links(through, "customer_id", "customergroup_id", customers, [group])
    joining = [customer.pk for customer in customers if (customer.pk, group.pk) not in links]
    bulk.insert_links(through, "customer", "customergroup", [(pk, group.pk) for pk in joining])
    return _edited(customers, set(joining), "groups")


def remove_from_group(customers, group):
    """Take ``customers`` out of a manual ``group``; returns those that were in it."""
    through = Customer.groups.through
    links = _links(through, "customer_id", "customergroup_id", customers, [group])
    if links:
        through.objects.filter(bulk.any_of("customer_id", [pk for pk, _group in links]), customergroup=group).delete()
    return _edited(customers, {pk for pk, _group in links}, "groups")


def _links(through, owner, target, customers, targets):
    """The ``(customer id, target id)`` links of ``customers`` to ``targets`` there are."""
    return set(
        through.objects.filter(
            bulk.any_of(owner, [customer.pk for customer in customers]), **{f"{target}__in": [t.pk for t in targets]}
        ).values_list(owner, target)
    )


def _edited(customers, changed_ids, field):
    changed = [customer for customer in customers if customer.pk in changed_ids]
    if changed:
        versions.touch(customer.pk for customer in changed)
        audit.customers_edited(changed, [field])
    return changed


def in_background(customers):
    """Whether a bulk action on ``customers`` (a queryset) is for a background job."""
    return listing.has_more_than(customers, conf.get("BULK_ACTION_BACKGROUND_CUSTOMERS"))


def start_job(user, viewer, action, params, options, opened_at):
    """Queue ``action`` on every customer of the listing of ``params`` for a background task."""
    from .tasks import run_bulk_action

    job = BulkActionJob.objects.create(
        created_by=user, branch=viewer.branch, action=action, query=params.urlencode(), options=options, opened_at=opened_at
    )
    task = run_bulk_action.using(queue_name=conf.get("TASK_QUEUE"))
    transaction.on_commit(lambda: task.enqueue(job.pk))
    return job


def run_job(job):
    """The background task's work: the listing's customers read again with the rules of now
    (a user who left the branch changes nothing), then changed a chunk at a time, the
    progress saved after each."""
    viewer = scope.viewer_for_job(job.created_by, job.branch)
    job.status = BulkActionStatus.RUNNING
    job.save(update_fields=["status"])
    counts = {"done": 0, "queued": 0, "left": 0}
    try:
        with LogContext(user=job.created_by), audit.acting_in(job.branch):
            change = Change(job.action, viewer, job.options)
            permitted, _refused = split(job.action, viewer, listing.customers_as_listed(viewer, QueryDict(job.query)))
            ids = sorted(set(listing.keys(permitted).values_list("pk", flat=True)))
            job.rows_total = len(ids)
            job.save(update_fields=["rows_total"])
            considered = unchanged = 0
            for customers in chunks(ids, unchanged_since=job.opened_at):
                with transaction.atomic():
                    done, queued = change(customers)
                considered, unchanged = min(len(ids), considered + CHUNK), unchanged + len(customers)
                counts = {"done": counts["done"] + done, "queued": counts["queued"] + queued, "left": considered - unchanged}
                BulkActionJob.objects.filter(pk=job.pk).update(rows_done=considered, counts=counts)
    except Exception:
        logger.exception("Bulk action %s on customers failed", job.pk)
        job.status = BulkActionStatus.FAILED
        job.error = _("The action stopped because of an error. The customers changed before it keep the change.")
    else:
        job.status = BulkActionStatus.DONE
    job.refresh_from_db(fields=["rows_done", "counts"])
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "finished_at"])
    return job
