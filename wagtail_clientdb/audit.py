"""The audit trail: who did what to a customer, when, in which branch and through which door.

Every entry is a Wagtail log entry (:class:`~wagtail_clientdb.models.ClientDBLogEntry`), read
in the customer's history, in Wagtail's site history and in the app's history report (which
filters by branch), all scoped by the branch rules (:mod:`.models.log_entry`). Wagtail's views
log creating and deleting what they create; this module records what the app's own code
changes — edits with the fields they changed (on the record, or as a branch's local values),
sharing, consent, deletion requests, imports and exports — and sends the public signals of
:mod:`.signals` for the same changes, so that the admin, the import, the API and the booking
page record a change one way. Entries keep facts (field names, ids, counts); the words are
chosen when an entry is shown, in the reader's language (:mod:`.log_formatters`).
"""

import contextlib
import contextvars
import functools
import types

from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.utils import timezone
from wagtail.log_actions import get_active_log_context, log

from . import bulk, overrides, scope, signals
from .models import ClientDBLogEntry, Customer, TaggedCustomer

_acting = contextvars.ContextVar("wagtail_clientdb_acting", default=None)

#: The customer's own fields an edit compares (``phone_raw`` is the phone as typed).
RECORD_FIELDS = ("first_name", "last_name", "email", "phone_raw", "notes", "birthday", "external_id")
ATTRIBUTE_PREFIX = overrides.ATTRIBUTE_PREFIX


@contextlib.contextmanager
def acting_in(branch):
    """Log what happens inside as done in ``branch`` (the admin's current branch, an API call's)."""
    token = _acting.set(types.SimpleNamespace(branch=branch))
    try:
        yield
    finally:
        _acting.reset(token)


def act_in(branch):
    """Inside :func:`acting_in`: log what follows as done in ``branch`` (known only once the
    call has read its parameters). Outside, nothing changes."""
    acting = _acting.get()
    if acting is not None:
        acting.branch = branch


def acting_branch(user):
    """The branch an action is taken in: the one set by :func:`acting_in`, else the user's
    only branch; ``None`` for the head office (and for staff of several branches outside a view)."""
    acting = _acting.get()
    if acting is not None and acting.branch is not None:
        return acting.branch
    if user is None or not getattr(user, "is_authenticated", False):
        return None
    return scope.viewer_for_user(user).branch


def record_of(customer_id):
    """What an edit of the record compares, read from the database."""
    values = Customer.objects.filter(pk=customer_id).values(*RECORD_FIELDS, "attributes").first() or {}
    values["groups"] = sorted(Customer.groups.through.objects.filter(customer_id=customer_id).values_list("customergroup_id", flat=True))
    values["tags"] = sorted(TaggedCustomer.objects.filter(content_object_id=customer_id).values_list("tag__name", flat=True))
    return values


def local_values_of(customer_id, branch):
    """What an edit of a branch's local values compares: the customer as the branch sees it."""
    effective = overrides.effective_customer(Customer.objects.get(pk=customer_id), branch)
    values = {name: effective.value(name) for name in overrides.OVERRIDABLE_FIELDS}
    values["attributes"] = effective.attributes
    return values


def changed_fields(before, after):
    """Names of what differs: fields, ``attributes.<key>``, ``groups``, ``tags``."""
    names = [name for name in (*RECORD_FIELDS, "groups", "tags") if name in before and before.get(name) != after.get(name)]
    old, new = before.get("attributes") or {}, after.get("attributes") or {}
    names += [ATTRIBUTE_PREFIX + key for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]
    return names


@contextlib.contextmanager
def edit_of(customer_id, *, user=None, local_branch=None, action="wagtail_clientdb.edit", source="admin"):
    """Log the edit made inside, with the fields it changed: of the record, or of
    ``local_branch``'s local values (compared as the branch sees the customer)."""
    if local_branch is not None:
        read = functools.partial(local_values_of, branch=local_branch)
    else:
        read = record_of
    with transaction.atomic():
        before = read(customer_id)
        yield
        fields = changed_fields(before, read(customer_id))
        customer_edited(
            Customer.objects.get(pk=customer_id), fields, user=user, local_branch=local_branch, action=action, source=source
        )


def customer_edited(customer, fields, *, user=None, local_branch=None, action="wagtail_clientdb.edit", source="admin", **data):
    """Log and announce an edit of ``fields`` (from :func:`changed_fields`): of the record, or of
    ``local_branch``'s local values. Nothing is logged when nothing changed."""
    if not fields:
        return
    data = {"fields": list(fields), **data}
    if local_branch is not None:
        data.update(local_branch=local_branch.pk, local_branch_name=local_branch.name)
    log(customer, action, user=user, data=data, content_changed=True)
    signals.send_after_commit(
        signals.customer_changed, [customer.pk], changed_fields=list(fields), branch=local_branch, source=source
    )


def customers_edited(customers, fields, *, source="admin"):
    """Log and announce the same change of ``fields`` on many customers (a bulk action)."""
    log_many(
        customers,
        "wagtail_clientdb.edit",
        branch=acting_branch(get_active_log_context().user),
        data=lambda customer: {"fields": list(fields)},
        content_changed=True,
    )
    signals.send_after_commit(
        signals.customer_changed, [customer.pk for customer in customers], changed_fields=list(fields), branch=None, source=source
    )


def announce_change(customer_ids, fields, *, source, branch=None):
    """Only the signal: the change is logged its own way (a merge, an import rolled back)."""
    signals.send_after_commit(signals.customer_changed, customer_ids, changed_fields=list(fields), branch=branch, source=source)


def customer_created(customer_ids, *, source):
    signals.send_after_commit(signals.customer_created, customer_ids, source=source)


def customers_deleted(customer_ids, *, reason, merged_into=None):
    signals.send_after_commit(signals.customer_deleted, customer_ids, reason=reason, merged_into=merged_into)


def sharing_changed(customer, *, all_branches, branches, user=None):
    log(
        customer,
        "wagtail_clientdb.sharing",
        user=user,
        data={"all_branches": bool(all_branches), "branches": sorted(branch.name for branch in branches)},
        content_changed=True,
    )
    signals.send_after_commit(signals.customer_changed, [customer.pk], changed_fields=["sharing"], branch=None, source="admin")


def sharing_changed_many(customers, *, all_branches, branch_names):
    """:func:`sharing_changed` for many customers at once; ``branch_names``: customer id → the
    names of the branches it is shared with now."""
    customers = list(customers)
    log_many(
        customers,
        "wagtail_clientdb.sharing",
        branch=acting_branch(get_active_log_context().user),
        data=lambda customer: {"all_branches": bool(all_branches), "branches": branch_names[customer.pk]},
        content_changed=True,
    )
    signals.send_after_commit(
        signals.customer_changed, [customer.pk for customer in customers], changed_fields=["sharing"], branch=None, source="admin"
    )


def consent_changed(customer, event):
    """A consent given or withdrawn (a :class:`~wagtail_clientdb.models.ConsentEvent`); returns the entry."""
    entry = log(
        customer,
        "wagtail_clientdb.consent_given" if event.given else "wagtail_clientdb.consent_withdrawn",
        user=event.recorded_by,
        data=consent_source(event),
    )
    signals.send_after_commit(
        signals.customer_changed, [customer.pk], changed_fields=["marketing_consent"], branch=None, source=event.channel
    )
    return entry


def consent_source(event):
    return {
        "channel": event.channel,
        "import_job": event.import_job_id,
        "appointment": event.appointment_id,
        "reference": event.reference,
    }


#: What an import notes (:func:`~wagtail_clientdb.imports.batches.note`) → what the audit names.
IMPORT_NAMES = {"phone": "phone_raw", "home_branch": "sharing", "shared_with_all_branches": "sharing", "branches": "sharing"}


def imported(customers, *, new, job, branch):
    """Log the customers an import created or changed (one entry each, written together),
    with the fields it changed, and announce them. ``job``: the file import; ``None`` for the
    API's bulk import, whose entries say "via API"."""
    if job is not None:
        source, marker, actions = "import", {"job": job.pk}, ("wagtail_clientdb.import_create", "wagtail_clientdb.import_edit")
    else:
        source, marker, actions = "api", {"bulk": True}, ("wagtail_clientdb.create_via_api", "wagtail_clientdb.edit_via_api")
    if new:
        log_many(customers, actions[0], branch=branch, data=lambda customer: marker)
        customer_created([customer.pk for customer in customers], source=source)
        return
    changed = {customer.pk: import_fields(customer) for customer in customers}
    touched = [customer for customer in customers if changed[customer.pk]]

    def local_branch(customer):
        return branch if "_import_override" in customer.__dict__ else None

    def data(customer):
        entry = {**marker, "fields": changed[customer.pk]}
        if local_branch(customer) is not None:
            entry.update(local_branch=branch.pk, local_branch_name=branch.name)
        return entry

    log_many(touched, actions[1], branch=branch, data=data, content_changed=True)
    for customer in touched:
        signals.send_after_commit(
            signals.customer_changed,
            [customer.pk],
            changed_fields=changed[customer.pk],
            branch=local_branch(customer),
            source=source,
        )


def consents_imported(events, *, branch):
    """Log consents given or withdrawn by an import (one entry each, written together)."""
    sources = {event.customer_id: consent_source(event) for event in events}
    for given in (True, False):
        log_many(
            [event.customer for event in events if event.given == given],
            "wagtail_clientdb.consent_given" if given else "wagtail_clientdb.consent_withdrawn",
            branch=branch,
            data=lambda customer: sources[customer.pk],
        )


def import_fields(customer):
    names = []
    for name, before, _after in customer.__dict__.get("_import_changes", ()):
        if name == "attributes":
            names += [ATTRIBUTE_PREFIX + key for key in before]
        else:
            names.append(IMPORT_NAMES.get(name, name))
    return list(dict.fromkeys(names))


def log_many(instances, action, *, user=None, branch=None, data=lambda instance: {}, label=str, content_changed=False):
    """One entry per instance, written together (an import's thousands of customers)."""
    instances = list(instances)
    if instances:
        rows = [(instance.pk, label(instance), data(instance)) for instance in instances]
        log_rows(type(instances[0]), action, rows, user=user, branch=branch, content_changed=content_changed)


def log_rows(model, action, rows, *, user=None, branch=None, timestamp=None, content_changed=False):
    """Entries of ``model`` objects from ``rows`` of (id, label, data), written together with
    ``COPY`` (the objects may be gone: a deleted customer's entry names only its number)."""
    if not rows:
        return
    context = get_active_log_context()
    user = user or context.user
    bulk.insert_rows(
        ClientDBLogEntry,
        ("object_id", "label", "data"),
        [(str(pk), label, data) for pk, label, data in rows],
        constants={
            "action": action,
            "content_type": ContentType.objects.get_for_model(model, for_concrete_model=False),
            "timestamp": timestamp or timezone.now(),
            "user": user if getattr(user, "is_authenticated", False) else None,
            "uuid": context.uuid,
            "branch": branch,
            "content_changed": content_changed,
            "deleted": False,
        },
    )
