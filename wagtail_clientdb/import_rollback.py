"""Rolling back a confirmed import (a file or an API bulk call): its :class:`ImportBatch`.

A rollback, in one transaction:

* **deletes the customers the import created**, through the deletion rules
  (:func:`wagtail_clientdb.deletion.request_deletions`): one with an upcoming appointment is
  not deleted but stays in the "Customers to delete" queue, blocked, with the appointments
  that block it, until they are over. A created customer that was changed since the import
  (its version moved on, or a branch gave it local values) is kept and reported: deleting it
  would throw away what someone entered since.
* **puts back the values the import changed** on the customers it updated — fields,
  attributes, tags, groups, sharing, consent (recorded through :func:`consent.record_consent`)
  and, for a branch's import, the branch's local values — unless one of those values was
  changed since: then the customer is left as it is and reported with the fields that
  changed. Changes since of other fields overwrite nothing and do not stand in the way (as
  for a stale edit form, :mod:`wagtail_clientdb.versions`). A customer's version equal to its
  version after the import proves that nothing changed.
* acts as the viewer it is done by, through :mod:`wagtail_clientdb.scope`: the user who
  ran the import (branch staff within the import's branch, while they still work there) or a
  branch manager. What the viewer may not delete or change is reported, not done.

A batch is rolled back once. What happened is kept on the batch (:attr:`rollback_report`,
customer ids and reasons, worded when shown: no names of deleted customers) and written to
the history of each customer concerned (registered log actions).
"""

import datetime
import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from wagtail.permissions import policy_registry

from . import audit, bulk, conf, deletion, removals, scope, tags, times
from .consent import record_consent
from .models import (
    Appointment,
    AttributeDefinition,
    Branch,
    ConsentChannel,
    Customer,
    CustomerGroup,
    CustomerOverride,
    DeletionReason,
    DeletionStatus,
    ImportBatch,
    TaggedCustomer,
)
from .overrides import restore_local_values

logger = logging.getLogger(__name__)

CHUNK = 1000

#: Log actions (registered in ``wagtail_hooks``).
RESTORED_ACTION = "wagtail_clientdb.import_rollback_restore"
DELETION_ACTION = "wagtail_clientdb.import_rollback_delete"

#: Why a customer was not deleted or not restored (stored; worded by :func:`reason_text`).
CHANGED_SINCE = "changed_since"
NOT_ALLOWED = "not_allowed"
GONE = "gone"
#: Notes on a customer restored except for something that cannot be put back.
ALL_BRANCHES_FINAL = "all_branches_final"
GROUPS_GONE = "groups_gone"
BRANCHES_GONE = "branches_gone"

#: The values of the customer's own row that are put back as they were.
SHARING = ("home_branch", "shared_with_all_branches", "branches")
LINKS = ("tags", "groups", "branches")


class RollbackRefused(Exception):
    """The batch cannot be rolled back (any more); the message says why."""


# --- Who may roll back which batch ----------------------------------------------------------------------


def visible_batches(viewer, queryset=None):
    """Batches a viewer may see and roll back: all of them for branch managers; for branch
    staff their own, of the branches they work in now."""
    queryset = ImportBatch.objects.all() if queryset is None else queryset
    if viewer.is_manager:
        return queryset
    if viewer.sees_nothing:
        return queryset.none()
    return queryset.filter(created_by=viewer.user, branch__in=viewer.branches)


def viewer_for(batch, user):
    """The viewer a rollback of ``batch`` acts as, or ``None`` when ``user`` may not roll it back."""
    if scope.is_branch_manager(user):
        return scope.Viewer(user, True)
    if batch.created_by_id != getattr(user, "pk", None) or batch.branch_id is None:
        return None
    if not scope.member_branches(user).filter(pk=batch.branch_id).exists():
        return None
    return scope.Viewer(user, False, (batch.branch,))


def refusal(batch, viewer=None, *, queued_ok=False):
    """Why ``batch`` cannot be rolled back now (a message), or ``None``. ``queued_ok``: the
    background task of a rollback that was queued asks."""
    if batch.rolled_back_at is not None:
        return _("This import was already rolled back (%(time)s).") % {"time": times.moment(batch.rolled_back_at, viewer)}
    if batch.records_deleted_at is not None:
        return _("This import can no longer be rolled back: the record of what it changed was deleted after %(days)s days.") % {
            "days": conf.get("IMPORT_ROLLBACK_DAYS")
        }
    if batch.rollback_queued_at is not None and not queued_ok:
        return _("This import is being rolled back (since %(time)s).") % {"time": times.moment(batch.rollback_queued_at, viewer)}
    return None


def runs_in_background(batch):
    """Rollbacks of large imports run as a background task (``ROLLBACK_BACKGROUND_CUSTOMERS``)."""
    return batch.created + batch.updated > conf.get("ROLLBACK_BACKGROUND_CUSTOMERS")


def queue_roll_back(batch, user, *, channel=ConsentChannel.ADMIN):
    """Have :func:`roll_back` run by a background task (django-tasks); refused as it would be."""
    from .tasks import run_import_rollback

    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update(of=("self",)).get(pk=batch.pk)
        if viewer_for(batch, user) is None:
            raise PermissionDenied
        refused = refusal(batch)
        if refused:
            raise RollbackRefused(refused)
        batch.rollback_queued_at, batch.rollback_error = timezone.now(), ""
        batch.save(update_fields=["rollback_queued_at", "rollback_error"])
        task = run_import_rollback.using(queue_name=conf.get("TASK_QUEUE"))
        transaction.on_commit(lambda: task.enqueue(batch.pk, user.pk, channel))
    return batch


def run_queued(batch_id, user_id, channel):
    """The background task's work: the rollback, or the reason it did not happen kept on the batch."""
    from django.contrib.auth import get_user_model

    batch = ImportBatch.objects.get(pk=batch_id)
    user = get_user_model().objects.filter(pk=user_id).first()
    error = ""
    try:
        if user is None:
            raise PermissionDenied
        batch = roll_back(batch, user, channel=channel, queued=True)
    except RollbackRefused as refused:
        error = str(refused)
    except PermissionDenied:
        error = _("You may not roll back this import.")
    except Exception:
        logger.exception("Rolling back import batch %s failed", batch_id)
        error = _("The rollback failed unexpectedly; nothing was changed.")
    ImportBatch.objects.filter(pk=batch_id).update(rollback_queued_at=None, rollback_error=error)
    return error or "done"


# --- What the batch changed ----------------------------------------------------------------------------------


@dataclass
class Change:
    """What the import changed on one customer (its record, or the batch branch's local values)."""

    pk: int
    #: The version after the import: of the customer, or of the local values (0: none).
    version: int
    #: field → [before, after]
    changes: dict


@dataclass
class Record:
    created: list = field(default_factory=list)
    updated: dict = field(default_factory=dict)
    local: dict = field(default_factory=dict)


def read_record(batch):
    """The batch's parts merged: a customer changed by two chunks keeps the value from before
    the first change and its version after the last."""
    record = Record()
    seen_created = set()
    for part in batch.parts.order_by("pk"):
        for pk in json.loads(part.created):
            if pk not in seen_created:
                seen_created.add(pk)
                record.created.append(pk)
        for target, entries in ((record.updated, part.updated), (record.local, part.local)):
            for pk, version, noted in json.loads(entries):
                known = target.get(pk)
                if known is None:
                    known = target[pk] = Change(pk, version, {})
                known.version = version
                for name, before, after in noted:
                    if name in known.changes:
                        known.changes[name][1] = after
                    else:
                        known.changes[name] = [before, after]
    return record


# --- Looking at the customers now ---------------------------------------------------------------------------


@dataclass
class Assessment:
    """What a rollback does (or would do) to each customer of the batch."""

    #: Created customers to delete (locked when rolling back).
    to_delete: list = field(default_factory=list)
    #: Created customers kept: [{"customer": pk, "reason": …}]
    kept: list = field(default_factory=list)
    #: Created customers deleted since (nothing to do).
    gone: int = 0
    #: (customer, Change, notes) to put back.
    to_restore: list = field(default_factory=list)
    #: (customer, Change) of the batch branch's local values to put back.
    to_restore_local: list = field(default_factory=list)
    #: [{"customer": pk, "reason": …, "fields": [...]}]
    not_restored: list = field(default_factory=list)


def _chunks(values):
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _load(pks, lock):
    queryset = Customer.objects.filter(bulk.any_of("id", pks)).order_by("pk")
    if lock:
        queryset = queryset.select_for_update(of=("self",))
    return {customer.pk: customer for customer in queryset}


def _visible(viewer, pks):
    if viewer.is_central:
        return set(pks)
    return set(scope.visible_customers(viewer).filter(bulk.any_of("id", pks)).values_list("pk", flat=True))


def assess(batch, viewer, *, lock=False):
    """Sort the batch's customers by what a rollback does to them, as things are now."""
    from .imports.resource import attach_relations

    record = read_record(batch)
    policy = policy_registry.get_by_type(Customer)
    may_delete = policy.user_has_permission(viewer.user, "delete")
    may_change = policy.user_has_permission(viewer.user, "change")
    result = Assessment()

    # Created customers; one changed again by the same import is expected at that version.
    for pks in _chunks(record.created):
        customers = _load(pks, lock)
        visible = _visible(viewer, pks)
        with_local_values = set(
            CustomerOverride.objects.filter(bulk.any_of("customer_id", pks)).values_list("customer_id", flat=True)
        )
        for pk in pks:
            customer = customers.get(pk)
            expected = record.updated[pk].version if pk in record.updated else 1
            if customer is None:
                result.gone += 1
            elif customer.version != expected or pk in with_local_values:
                result.kept.append({"customer": pk, "reason": CHANGED_SINCE})
            elif not may_delete or pk not in visible or not scope.can_delete(viewer, customer):
                result.kept.append({"customer": pk, "reason": NOT_ALLOWED})
            else:
                result.to_delete.append(customer)
    created = set(record.created)

    # The customers' own records.
    updated = [change for pk, change in record.updated.items() if pk not in created]
    for changes in _chunks(updated):
        pks = [change.pk for change in changes]
        customers = _load(pks, lock)
        attach_relations(list(customers.values()), None)
        visible = _visible(viewer, pks)
        for change in changes:
            customer = customers.get(change.pk)
            if customer is None:
                result.not_restored.append({"customer": change.pk, "reason": GONE})
                continue
            mode = scope.edit_mode(viewer, customer) if change.pk in visible else scope.EditMode.READ_ONLY
            if not may_change or mode != scope.EditMode.DIRECT:
                result.not_restored.append({"customer": change.pk, "reason": NOT_ALLOWED})
                continue
            changed = [] if customer.version == change.version else changed_fields(change.changes, CurrentValues(customer))
            if changed:
                result.not_restored.append({"customer": change.pk, "reason": CHANGED_SINCE, "fields": changed})
                continue
            notes = []
            if customer.shared_with_all_branches and change.changes.get("shared_with_all_branches", [True])[0] is False:
                notes.append(ALL_BRANCHES_FINAL)
            result.to_restore.append((customer, change, notes))

    # The batch branch's local values.
    branch = batch.branch
    for changes in _chunks(record.local.values()):
        pks = [change.pk for change in changes]
        customers = _load(pks, lock)
        held = {o.customer_id: o for o in CustomerOverride.objects.filter(bulk.any_of("customer_id", pks), branch=branch)}
        visible = _visible(viewer, pks)
        for change in changes:
            customer = customers.get(change.pk)
            if customer is None or branch is None:
                result.not_restored.append({"customer": change.pk, "reason": GONE})
                continue
            allowed = viewer.is_manager or (
                change.pk in visible and scope.edit_mode(viewer, customer) == scope.EditMode.OVERRIDE
            )
            if not may_change or not allowed:
                result.not_restored.append({"customer": change.pk, "reason": NOT_ALLOWED})
                continue
            override = held.get(change.pk)
            version = override.version if override is not None else 0
            changed = [] if version == change.version else changed_fields(change.changes, CurrentValues(override))
            if changed:
                result.not_restored.append({"customer": change.pk, "reason": CHANGED_SINCE, "fields": changed})
            else:
                result.to_restore_local.append((customer, change))
    return result


class CurrentValues:
    """The values of a customer (or of a branch's local values; ``None``: none) now, in the
    form the batch records them."""

    def __init__(self, obj):
        self.obj = obj

    def get(self, name, keys=()):
        obj = self.obj
        if name == "attributes":
            held = (obj.attributes or {}) if obj is not None else {}
            return {key: held.get(key) for key in keys}
        if obj is None:
            return None
        if name == "tags":
            return sorted(obj.tag_names)
        if name == "groups":
            return sorted(obj.group_ids)
        if name == "branches":
            return sorted(obj.branch_ids)
        if name == "home_branch":
            return obj.home_branch_id
        return _stored(getattr(obj, name))


def _stored(value):
    return value.isoformat() if isinstance(value, datetime.date) else value


def changed_fields(changes, now):
    """The fields whose value now is not what the import left (``attributes.<key>`` per key)."""
    changed = []
    for name, (_before, after) in changes.items():
        if name == "attributes":
            current = now.get(name, after.keys())
            changed += [f"attributes.{key}" for key, value in after.items() if current.get(key) != value]
        elif name == "tags":
            # Noted as the rows named them; a tag of another case is the same tag.
            if not tags.same(now.get(name) or [], after or []):
                changed.append(name)
        elif name in ("groups", "branches"):
            if sorted(now.get(name) or []) != sorted(after or []):
                changed.append(name)
        elif now.get(name) != after:
            changed.append(name)
    # The E.164 number goes with the number as typed.
    if "phone" in changed and "phone_raw" in changes:
        changed.remove("phone")
        if "phone_raw" not in changed:
            changed.append("phone_raw")
    return changed


# --- Rolling back ---------------------------------------------------------------------------------------------


def preview(batch, user):
    """What rolling ``batch`` back would do now, as a report (:func:`roll_back`'s shape); nothing is written."""
    viewer = viewer_for(batch, user)
    if viewer is None:
        raise PermissionDenied
    result = assess(batch, viewer)
    blocking = defaultdict(list)
    upcoming = Appointment.objects.upcoming().filter(bulk.any_of("customer_id", [c.pk for c in result.to_delete]))
    for appointment in upcoming.select_related("branch", "service").order_by("start"):
        blocking[appointment.customer_id].append(deletion.blocking_error(appointment))
    return _report(
        result,
        deleted=sum(1 for c in result.to_delete if c.pk not in blocking),
        blocked=[{"customer": pk, "errors": errors} for pk, errors in blocking.items()],
        restored=len(result.to_restore) + len(result.to_restore_local),
        partly=[{"customer": customer.pk, "notes": notes} for customer, _change, notes in result.to_restore if notes],
    )


def roll_back(batch, user, *, channel=ConsentChannel.ADMIN, queued=False):
    """Roll ``batch`` back as ``user``, in one transaction; returns the batch with its report.

    Raises PermissionDenied when ``user`` may not, :class:`RollbackRefused` when it was rolled
    back already, is being rolled back (unless ``queued``: the task of :func:`queue_roll_back`)
    or its record is gone.
    """
    with transaction.atomic():
        batch = ImportBatch.objects.select_for_update(of=("self",)).select_related("branch").get(pk=batch.pk)
        viewer = viewer_for(batch, user)
        if viewer is None:
            raise PermissionDenied
        refused = refusal(batch, viewer, queued_ok=queued)
        if refused:
            raise RollbackRefused(refused)
        now = timezone.now()
        result = assess(batch, viewer, lock=True)
        restored = _restore(result, batch, user, channel, now)
        requests = (
            deletion.request_deletions(
                viewer, result.to_delete, now=now, reason=DeletionReason.IMPORT_ROLLBACK, log_action=None
            )
            if result.to_delete
            else {}
        )
        _log_deletions(batch, user, requests, {c.pk: c for c in result.to_delete}, now)
        report = _report(
            result,
            deleted=sum(1 for r in requests.values() if r.status == DeletionStatus.DONE),
            blocked=[{"customer": pk, "errors": r.errors} for pk, r in requests.items() if r.status != DeletionStatus.DONE],
            restored=len(result.to_restore) + len(result.to_restore_local),
            partly=restored,
        )
        batch.rolled_back_at, batch.rolled_back_by, batch.rollback_report = now, user, report
        batch.rollback_queued_at, batch.rollback_error = None, ""
        batch.save(update_fields=["rolled_back_at", "rolled_back_by", "rollback_report", "rollback_queued_at", "rollback_error"])
    logger.info(
        "Import batch %s rolled back by %s: %s deleted, %s blocked, %s restored, %s not restored",
        batch.pk, user.pk, report["deleted"], len(report["blocked"]), report["restored"], len(report["not_restored"]),
    )
    return batch


def _report(result, *, deleted, blocked, restored, partly):
    """What a rollback does (stored on the batch): counts, and customer ids with reasons."""
    return {
        "deleted": deleted,
        "blocked": blocked,
        "kept": result.kept,
        "gone": result.gone,
        "restored": restored,
        "partly": partly,
        "not_restored": result.not_restored,
    }


def _restore(result, batch, user, channel, now):
    """Put back the recorded values (rows locked by :func:`assess`); returns the customers
    restored except for something (``[{"customer": id, "notes": [...]}]``)."""
    partly = defaultdict(list)
    for customer, _change, notes in result.to_restore:
        partly[customer.pk] += notes
    for rows in _chunks(result.to_restore):
        _restore_records(rows, partly, user, channel, now)
    for customer, change in result.to_restore_local:
        fields = {
            name: CustomerOverride._meta.get_field(name).to_python(before)
            for name, (before, _after) in change.changes.items()
            if name != "attributes"
        }
        attributes = change.changes.get("attributes", [{}])[0]
        restore_local_values(customer, batch.branch, fields, attributes=attributes, user=user)
    _log_restored(batch, user, now, result)
    return [{"customer": pk, "notes": sorted(set(notes))} for pk, notes in partly.items() if notes]


def _log_restored(batch, user, now, result):
    """One history entry per customer whose values were put back."""
    rows = [(customer, change, None) for customer, change, _notes in result.to_restore]
    rows += [(customer, change, batch.branch_id) for customer, change in result.to_restore_local]
    audit.log_rows(
        Customer, RESTORED_ACTION,
        [
            (customer.pk, str(customer), {"batch": batch.pk, "fields": sorted(change.changes), "local_values_of_branch": branch})
            for customer, change, branch in rows
        ],
        user=user, branch=batch.branch, timestamp=now, content_changed=True,
    )
    for customer, change, branch in rows:
        audit.announce_change(
            [customer.pk], sorted(change.changes), source="import_rollback", branch=batch.branch if branch else None
        )


def _log_deletions(batch, user, requests, customers, now):
    """One history entry per created customer whose deletion the rollback requested (a deleted
    customer's entry names only its number, as the deletion queue leaves it)."""
    deleted_label = _("Customer #%(number)s (deleted)")
    audit.log_rows(
        Customer, DELETION_ACTION,
        [
            (
                pk,
                deleted_label % {"number": pk} if request.status == DeletionStatus.DONE else str(customers[pk]),
                {"batch": batch.pk, "deletion": request.status},
            )
            for pk, request in requests.items()
        ],
        user=user, branch=batch.branch, timestamp=now, content_changed=True,
    )


def _restore_records(rows, partly, user, channel, now):
    """One chunk of customers whose own record is put back."""
    from .imports.resource import replace_links

    fields, consents = set(), []
    links = {name: [] for name in LINKS}
    seen_before = removals.seen_by([customer.pk for customer, _change, _notes in rows])
    for customer, change, notes in rows:
        final = ALL_BRANCHES_FINAL in notes
        for name, (before, _after) in change.changes.items():
            if final and name in SHARING:
                continue
            if name in LINKS:
                links[name].append((customer, before))
            elif name == "marketing_consent":
                consents.append((customer, before))
            elif name == "attributes":
                restored = dict(customer.attributes or {})
                for key, value in before.items():
                    if value is None:
                        restored.pop(key, None)
                    else:
                        restored[key] = value
                customer.attributes = restored
                fields.add(name)
            else:
                model_field = Customer._meta.get_field(name)
                setattr(customer, model_field.attname, model_field.to_python(before))
                fields.add(name)
        customer.version += 1
        customer.updated_at = now
    bulk.bulk_update(Customer, [customer for customer, _change, _notes in rows], sorted(fields) + ["version", "updated_at"])
    # Groups and branches deleted since the import cannot be linked again: the customer is noted.
    for name, model, target, gone in (("groups", CustomerGroup, "customergroup", GROUPS_GONE), ("branches", Branch, "branch", BRANCHES_GONE)):
        if not links[name]:
            continue
        existing = set(model.objects.values_list("pk", flat=True))
        for customer, before in links[name]:
            if set(before) - existing:
                partly[customer.pk].append(gone)
        replace_links(
            getattr(Customer, name).through, "customer", target,
            [(customer.pk, [pk for pk in before if pk in existing], True) for customer, before in links[name]],
        )
    if links["tags"]:
        # Tags deleted since are made again; a tag of another case is the same tag.
        found = tags.resolve(name for _customer, before in links["tags"] for name in before)
        replace_links(
            TaggedCustomer, "content_object", "tag",
            [
                (customer.pk, [found[folded].pk for name in before if (folded := tags.fold(name)) in found], True)
                for customer, before in links["tags"]
            ],
        )
    # The sharing put back may be narrower than the import made it.
    removals.record_unshared(seen_before, removals.seen_by(seen_before))
    for customer, given in consents:
        record_consent(customer, bool(given), channel, user, previous=customer.marketing_consent)


# --- Saying what a rollback does ----------------------------------------------------------------------------

#: At most this many customers are named per list on a page (the counts are always complete).
MAX_NAMED = 200

REASONS = {
    ("kept", CHANGED_SINCE): gettext_lazy("changed since the import, so it is kept; delete it from its page if it should go"),
    ("kept", NOT_ALLOWED): gettext_lazy("you may not delete this customer, so it is kept"),
    ("not_restored", NOT_ALLOWED): gettext_lazy("you may not change this customer (any more)"),
    ("not_restored", GONE): gettext_lazy("deleted since the import"),
}
NOTES = {
    ALL_BRANCHES_FINAL: gettext_lazy("its sharing stays “all branches”, which is final"),
    GROUPS_GONE: gettext_lazy("groups deleted since were left out"),
    BRANCHES_GONE: gettext_lazy("branches deleted since were left out"),
}


def field_label(name):
    """A field of the batch's record as people know it."""
    if name.startswith("attributes."):
        key = name.partition(".")[2]
        definition = AttributeDefinition.objects.filter(key=key).first()
        return definition.label if definition else key
    if name in ("phone_raw", "phone"):
        return _("phone")
    try:
        return str(Customer._meta.get_field(name).verbose_name)
    except Exception:
        return name


def reason_text(kind, entry):
    if entry["reason"] == CHANGED_SINCE and kind == "not_restored":
        return _("changed since the import: %(fields)s") % {"fields": ", ".join(field_label(name) for name in entry.get("fields", []))}
    return str(REASONS[(kind, entry["reason"])])


def describe(report, viewer):
    """``report`` (:func:`preview`, or a batch's ``rollback_report``) for people: customers
    named as ``viewer`` sees them (by number otherwise: deleted since, or out of sight), reasons
    and blocking appointments worded in the reader's language."""
    lists = ("blocked", "kept", "partly", "not_restored")
    pks = {entry["customer"] for kind in lists for entry in report.get(kind, [])[:MAX_NAMED]}
    names = {customer.pk: str(customer) for customer in scope.visible_customers(viewer).filter(pk__in=pks)}

    def who(pk):
        return names.get(pk) or _("Customer #%(number)s") % {"number": pk}

    shown = {key: report.get(key, 0) for key in ("deleted", "restored", "gone")}
    shown["blocked"] = [
        {"customer": e["customer"], "name": who(e["customer"]), "errors": [deletion.describe_blocking(x) for x in e["errors"]]}
        for e in report.get("blocked", [])[:MAX_NAMED]
    ]
    shown["kept"] = [
        {"customer": e["customer"], "name": who(e["customer"]), "reason": e["reason"], "message": reason_text("kept", e)}
        for e in report.get("kept", [])[:MAX_NAMED]
    ]
    shown["partly"] = [
        {"customer": e["customer"], "name": who(e["customer"]), "notes": [str(NOTES[note]) for note in e["notes"]]}
        for e in report.get("partly", [])[:MAX_NAMED]
    ]
    shown["not_restored"] = [
        {
            "customer": e["customer"],
            "name": who(e["customer"]),
            "reason": e["reason"],
            "fields": e.get("fields", []),
            "message": reason_text("not_restored", e),
        }
        for e in report.get("not_restored", [])[:MAX_NAMED]
    ]
    shown["counts"] = {kind: len(report.get(kind, [])) for kind in lists}
    return shown
