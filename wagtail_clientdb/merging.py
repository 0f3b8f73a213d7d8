"""Merging customers who are the same person into one, and undoing a merge.

The rules (docs/concepts.md, "Merging customers"):

* Two or more customers become one, the **survivor** (the record whose ID continues). For
  each field the user chooses whose value survives (:data:`CHOSEN_FIELDS`, and each attribute
  key); notes are put together; marketing consent follows the most recent explicit decision
  of any of them; groups and tags are united.
* Appointments, consent history, closed deletion requests and the online booking block move
  to the survivor; the booking counts are recounted. A customer queued for deletion is not
  merged: the request is cancelled or completed first.
* Scope becomes the union: "all branches" wins; customers local to one branch stay local to
  it; anything else becomes a global customer shared with every branch that saw one of them.
  When the survivor is global, what each branch saw differently becomes that branch's local
  values: the local values of global customers, and the values of a customer that was local
  to the branch (a value equal to the survivor's is no local value).
* Branch staff merge only customers local to their branch; managers merge any customers.
* The merged-away customers are deleted; a :class:`~wagtail_clientdb.models.CustomerMerge`
  keeps them as they were. Undoing (within ``MERGE_UNDO_DAYS``) re-creates them with their
  own IDs, values, appointments and local values, and puts back on the survivor what the
  merge changed — unless something changed since that makes it impossible:
  :func:`undo_blockers` names each such change.

Views and the API call :func:`merge`, :func:`undo` and their helpers; none re-implements them.
"""

import datetime
from dataclasses import dataclass, field

from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import DateTimeField
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from wagtail.log_actions import log

from . import audit, booking_counts, conf, overrides, removals, scope, times
from . import tags as tag_names
from .models import (
    Appointment,
    Branch,
    ClientDBLogEntry,
    ConsentEvent,
    Customer,
    CustomerGroup,
    CustomerMerge,
    CustomerOverride,
    DeletionRequest,
    DeletionStatus,
    OnlineBookingBlock,
)

#: Fields whose surviving value the user chooses. ``phone_raw`` carries ``phone`` with it.
CHOSEN_FIELDS = ("first_name", "last_name", "email", "phone_raw", "birthday", "external_id")
#: The survivor's values a merge sets (and an undo puts back).
RECORD_FIELDS = (*CHOSEN_FIELDS, "phone", "notes", "marketing_consent")
#: At most this many customers are merged at once.
MAX_CUSTOMERS = 10

OPEN_DELETION = [DeletionStatus.PENDING, DeletionStatus.BLOCKED]
NOTES_SEPARATOR = "\n\n"


class MergeRefused(ValidationError):
    """The merge cannot be done as asked; nothing was changed."""


class UndoRefused(ValidationError):
    """The merge cannot be undone; ``messages`` names every change that blocks it."""


# --- Who may merge ------------------------------------------------------------------------------------


def may_merge(viewer, customer):
    """Whether ``viewer`` may merge ``customer`` (one it sees): managers any customer, branch
    staff the customers local to their current branch."""
    if viewer.is_manager:
        return True
    return viewer.branch is not None and customer.home_branch_id == viewer.branch.pk


def may_undo(viewer, merge):
    """Managers undo any merge; branch staff the merges of customers that were all local to
    their current branch, while the survivor still is."""
    if viewer.is_manager:
        return True
    branch = viewer.branch
    if branch is None or merge.local_branch_id != branch.pk:
        return False
    return merge.survivor is None or merge.survivor.home_branch_id == branch.pk


def mergeable_customers(viewer, ids):
    """The customers of ``ids`` that ``viewer`` sees, in the order given, without repeats;
    ``None`` when an id is malformed or names a customer the viewer does not see."""
    try:
        wanted = list(dict.fromkeys(int(pk) for pk in ids))
    except (TypeError, ValueError):
        return None
    found = {c.pk: c for c in scope.visible_customers(viewer).filter(pk__in=wanted).select_related("home_branch")}
    if len(found) != len(wanted):
        return None
    return [found[pk] for pk in wanted]


def check_mergeable(viewer, customers):
    """Raise :class:`MergeRefused` when these customers cannot be merged by ``viewer``."""
    if len(customers) < 2:
        raise MergeRefused(_("Choose two or more customers to merge."), code="too_few")
    if len(customers) > MAX_CUSTOMERS:
        raise MergeRefused(
            _("Merge at most %(count)s customers at once.") % {"count": MAX_CUSTOMERS}, code="too_many"
        )
    refused = [customer for customer in customers if not may_merge(viewer, customer)]
    if refused:
        raise MergeRefused(
            _("You can merge only customers local to your branch. Not local to it: %(names)s.")
            % {"names": _names(refused)},
            code="not_allowed",
        )
    queued = DeletionRequest.objects.filter(customer__in=customers, status__in=OPEN_DELETION).select_related("customer")
    names = [request.customer for request in queued]
    if names:
        raise MergeRefused(
            _(
                "Queued for deletion: %(names)s. A customer queued for deletion is not merged: "
                "cancel its deletion request first, or let it complete."
            )
            % {"names": _names(names)},
            code="queued_for_deletion",
        )


def _names(customers):
    return ", ".join(f"“{customer}”" for customer in customers)


# --- What the user chooses ------------------------------------------------------------------------------


@dataclass
class Choices:
    """Whose values survive: ``survivor`` (a pk) keeps its record; ``fields`` maps each of
    :data:`CHOSEN_FIELDS` and ``attributes`` each attribute key to the pk of the customer whose
    value is kept (missing ones take the default: the survivor's value, or the first one given)."""

    survivor: int = None
    fields: dict = field(default_factory=dict)
    attributes: dict = field(default_factory=dict)


def default_survivor(customers):
    """The record that continues unless the user chooses another: one shared with all
    branches, else a global one, else the oldest."""
    return min(
        customers,
        key=lambda c: (not c.shared_with_all_branches, c.home_branch_id is not None, c.created_at, c.pk),
    )


def _empty(value):
    return value in (None, "")


def _default_source(ordered, get):
    """The first customer (survivor first) with a value, else the survivor."""
    return next((customer for customer in ordered if not _empty(get(customer))), ordered[0])


def attribute_keys(customers):
    return sorted({key for customer in customers for key in (customer.attributes or {})})


def complete_choices(customers, choices=None):
    """``choices`` with every gap filled by the defaults; unknown pks are refused."""
    choices = choices or Choices()
    pks = {customer.pk for customer in customers}
    survivor = choices.survivor if choices.survivor is not None else default_survivor(customers).pk
    if survivor not in pks:
        raise MergeRefused(_("The customer to keep must be one of the customers merged."), code="survivor")
    ordered = _survivor_first(customers, survivor)
    fields, attributes = {}, {}
    for name in CHOSEN_FIELDS:
        chosen = choices.fields.get(name)
        if chosen not in pks:
            chosen = _default_source(ordered, lambda c, name=name: getattr(c, name)).pk
        fields[name] = chosen
    for key in attribute_keys(customers):
        chosen = choices.attributes.get(key)
        if chosen not in pks:
            chosen = _default_source(ordered, lambda c, key=key: (c.attributes or {}).get(key)).pk
        attributes[key] = chosen
    return Choices(survivor=survivor, fields=fields, attributes=attributes)


def _survivor_first(customers, survivor_pk):
    return sorted(customers, key=lambda c: c.pk != survivor_pk)


# --- The plan: what the merge will do --------------------------------------------------------------------


@dataclass
class Plan:
    survivor: Customer
    merged: list
    #: The survivor's new values of :data:`RECORD_FIELDS`, and ``attributes``.
    values: dict
    #: ``(customer, when)`` of the consent decision that wins, or ``None`` (no decision: no consent).
    consent_decision: tuple
    groups: list
    tags: list
    home_branch: Branch
    shared_with_all_branches: bool
    branches: list
    #: branch → the survivor's local values there afterwards: ``{field: value, "attributes": {...}}``.
    local_values: dict
    #: customer pk → the appointments that move from it.
    appointments: dict
    #: customer pk → the consent events that move from it.
    consent_events: dict
    #: customer pk → its closed deletion requests (they move with it).
    deletion_requests: dict
    #: ``{"reason", "branches", "everywhere"}`` of the survivor's booking block afterwards, or ``None``.
    booking_block: dict
    #: The branch every merged customer is local to, or ``None``.
    local_branch: Branch

    @property
    def customers(self):
        return [self.survivor, *self.merged]


def make_plan(customers, choices=None):
    """What merging ``customers`` with ``choices`` does (nothing is written)."""
    choices = complete_choices(customers, choices)
    by_pk = {customer.pk: customer for customer in customers}
    ordered = _survivor_first(customers, choices.survivor)
    survivor, merged = ordered[0], ordered[1:]

    values = {}
    for name in CHOSEN_FIELDS:
        source = by_pk[choices.fields[name]]
        values[name] = getattr(source, name)
        if name == "phone_raw":
            values["phone"] = source.phone
    values["notes"] = combined_notes(customer.notes for customer in ordered)
    attributes = {}
    for key, pk in choices.attributes.items():
        value = (by_pk[pk].attributes or {}).get(key)
        if value is not None:
            attributes[key] = value
    values["attributes"] = attributes
    decision = consent_decision(ordered)
    values["marketing_consent"] = bool(decision and decision[2])

    groups = {}
    tags = {}
    for customer in ordered:
        for group in customer.groups.all():
            groups.setdefault(group.pk, group)
        for name in customer.tags.names():
            # By the tag rule (names differing only in case are one tag), the first spelling.
            tags.setdefault(tag_names.fold(name), name)

    homes = {customer.home_branch_id for customer in ordered}
    local_branch = ordered[0].home_branch if len(homes) == 1 and None not in homes else None
    all_branches = any(customer.shared_with_all_branches for customer in ordered)
    branches = {}
    if not all_branches and local_branch is None:
        for customer in ordered:
            if customer.home_branch_id:
                branches.setdefault(customer.home_branch_id, customer.home_branch)
            for branch in customer.branches.all():
                branches.setdefault(branch.pk, branch)

    local_values = {} if local_branch is not None else _local_values(ordered, values)

    blocks = {
        block.customer_id: block
        for block in OnlineBookingBlock.objects.filter(customer__in=ordered).prefetch_related("branches")
    }
    booking_block = None
    if blocks:
        in_order = [blocks[c.pk] for c in ordered if c.pk in blocks]
        everywhere = any(not block.branches.all() for block in in_order)
        booking_block = {
            "reason": combined_notes(block.reason for block in in_order),
            "everywhere": everywhere,
            "branches": [] if everywhere else sorted({b.pk for block in in_order for b in block.branches.all()}),
        }

    merged_pks = [customer.pk for customer in merged]
    appointments = {pk: [] for pk in merged_pks}
    moving = Appointment.objects.filter(customer__in=merged_pks).select_related("branch", "service").order_by("start")
    for appointment in moving:
        appointments[appointment.customer_id].append(appointment)
    events = {pk: [] for pk in merged_pks}
    for event in ConsentEvent.objects.filter(customer__in=merged_pks):
        events[event.customer_id].append(event)
    requests = {pk: [] for pk in merged_pks}
    for request in DeletionRequest.objects.filter(customer__in=merged_pks):
        requests[request.customer_id].append(request)

    return Plan(
        survivor=survivor,
        merged=merged,
        values=values,
        consent_decision=decision[:2] if decision else None,
        groups=sorted(groups.values(), key=lambda g: g.name),
        tags=sorted(tags.values(), key=str.casefold),
        home_branch=local_branch,
        shared_with_all_branches=all_branches,
        branches=sorted(branches.values(), key=lambda b: b.name),
        local_values=local_values,
        appointments=appointments,
        consent_events=events,
        deletion_requests=requests,
        booking_block=booking_block,
        local_branch=local_branch,
    )


def combined_notes(texts):
    """Texts one after the other, each once, empty ones left out (one text stays as it is)."""
    seen, kept = set(), []
    for text in texts:
        stripped = (text or "").strip()
        if stripped and stripped not in seen:
            seen.add(stripped)
            kept.append(text)
    if len(kept) == 1:
        return kept[0]
    return NOTES_SEPARATOR.join(text.strip() for text in kept)


def consent_decision(customers):
    """``(customer, when, given)`` of the most recent explicit consent decision among
    ``customers``: the latest event of their consent history; a consent given without a
    history (recorded before histories were kept) counts from the customer's creation.
    ``None`` when nobody decided anything."""
    decisions = []
    latest = {}
    for event in ConsentEvent.objects.filter(customer__in=customers).order_by("recorded_at", "pk"):
        latest[event.customer_id] = event
    for customer in customers:
        event = latest.get(customer.pk)
        if event is not None:
            decisions.append((event.recorded_at, event.pk, customer, event.given))
        elif customer.marketing_consent:
            decisions.append((customer.created_at, 0, customer, True))
    if not decisions:
        return None
    when, _pk, customer, given = max(decisions, key=lambda d: (d[0], d[1]))
    return customer, when, given


def _local_values(ordered, values):
    """branch → the survivor's local values there after the merge (see the module's rules)."""
    contributions = {}  # branch → [(kind, fields, attributes, notes)] in the order of ``ordered``
    branches = {}
    global_pks = [c.pk for c in ordered if c.home_branch_id is None]
    rows = {}
    for override in CustomerOverride.objects.filter(customer__in=global_pks).select_related("branch"):
        rows[override.customer_id, override.branch_id] = override
        branches[override.branch_id] = override.branch
    for customer in ordered:
        if customer.home_branch_id is not None:
            branches[customer.home_branch_id] = customer.home_branch
    for customer in ordered:
        if customer.home_branch_id is None:
            for (owner, branch_id), override in rows.items():
                if owner != customer.pk:
                    continue
                fields = {name: getattr(override, name) for name in overrides.OVERRIDABLE_FIELDS if name != "notes"}
                fields = {name: value for name, value in fields.items() if value is not None}
                if "phone_raw" in fields:
                    fields["phone"] = override.phone
                contributions.setdefault(branch_id, []).append(
                    ("override", fields, override.attributes or {}, override.notes)
                )
        else:
            fields = {
                name: getattr(customer, name)
                for name in overrides.OVERRIDABLE_FIELDS
                if name != "notes" and not _empty(getattr(customer, name))
            }
            if "phone_raw" in fields:
                fields["phone"] = customer.phone
            contributions.setdefault(customer.home_branch_id, []).append(
                ("local", fields, customer.attributes or {}, customer.notes)
            )
    result = {}
    for branch_id, parts in contributions.items():
        fields, attributes = {}, {}
        for _kind, given, given_attributes, _notes in parts:
            if "phone_raw" in given and "phone_raw" not in fields:
                fields["phone_raw"], fields["phone"] = given["phone_raw"], given.get("phone", "")
            for name, value in given.items():
                if name not in ("phone_raw", "phone"):
                    fields.setdefault(name, value)
            for key, value in given_attributes.items():
                attributes.setdefault(key, value)
        # Local notes only where a branch kept notes of its own on a global customer; a local
        # customer's notes are part of the survivor's notes anyway.
        if any(kind == "override" and notes is not None for kind, _f, _a, notes in parts):
            fields["notes"] = combined_notes(notes for _kind, _f, _a, notes in parts if notes is not None)
        if "phone_raw" in fields:
            raw, e164 = fields["phone_raw"], fields["phone"]
            if raw == values["phone_raw"] or (e164 and e164 == values["phone"]):
                del fields["phone_raw"], fields["phone"]
        for name in [n for n in fields if n not in ("phone_raw", "phone")]:
            if fields[name] == values[name]:
                del fields[name]
        attributes = {k: v for k, v in attributes.items() if values["attributes"].get(k) != v}
        if fields or attributes:
            result[branches[branch_id]] = {**fields, "attributes": attributes}
    return result


# --- Merging ----------------------------------------------------------------------------------------------


def merge(viewer, ids, choices=None, *, expected_versions=None, user=None):
    """Merge the customers of ``ids`` (as ``viewer``, who must see them all) into one.

    ``expected_versions`` (pk → version) are the versions the user saw: a customer changed
    since is not merged (:class:`MergeRefused`, naming it). Returns the
    :class:`~wagtail_clientdb.models.CustomerMerge`.
    """
    user = user if user is not None else viewer.user
    with transaction.atomic():
        customers = mergeable_customers(viewer, ids)
        if customers is None:
            raise MergeRefused(_("One of these customers does not exist (any more)."), code="missing")
        # Locked in the order of their keys, so that two merges never wait for each other in a circle.
        locked = {
            c.pk: c
            for c in Customer.objects.select_for_update().filter(pk__in=[c.pk for c in customers]).order_by("pk")
        }
        customers = [locked[c.pk] for c in customers if c.pk in locked]
        check_mergeable(viewer, customers)
        if expected_versions is not None:
            changed = [c for c in customers if expected_versions.get(c.pk) != c.version]
            if changed:
                raise MergeRefused(
                    _("Changed since you opened this page: %(names)s. Check the values again.")
                    % {"names": _names(changed)},
                    code="stale",
                )
        plan = make_plan(customers, choices)
        return _execute(plan, user)


def _execute(plan, user):
    survivor, merged = plan.survivor, plan.merged
    merged_pks = [customer.pk for customer in merged]
    now = timezone.now()
    snapshot = {
        "names": {str(c.pk): str(c) for c in plan.customers},
        "survivor": {
            "before": survivor_state(survivor),
            "overrides_before": _override_rows(survivor),
            "block_before": _block_row(survivor),
            "appointments_before": list(survivor.appointments.values_list("pk", flat=True)),
        },
        "merged": [_merged_state(customer, plan) for customer in merged],
    }

    for customer in merged:
        log(customer, "wagtail_clientdb.merged_into", user=user, data={"survivor": survivor.pk})

    # Changed now (their customer, and so their version), as every change of an appointment.
    Appointment.objects.filter(customer__in=merged_pks).update(customer=survivor, updated_at=now)
    ConsentEvent.objects.filter(customer__in=merged_pks).update(customer=survivor)
    DeletionRequest.objects.filter(customer__in=merged_pks).update(customer=survivor)
    _merge_blocks(plan)

    survivor_seen_by = removals.seen_by([survivor.pk])
    removals.record_deleted(merged_pks, merged_into=survivor.pk)
    Customer.objects.filter(pk__in=merged_pks).delete()

    for name in RECORD_FIELDS:
        setattr(survivor, name, plan.values[name])
    survivor.attributes = plan.values["attributes"]
    survivor.home_branch = plan.home_branch
    survivor.shared_with_all_branches = plan.shared_with_all_branches
    survivor.save()
    survivor.branches.set(plan.branches)
    removals.record_unshared(survivor_seen_by, removals.seen_by([survivor.pk]))
    survivor.groups.add(*plan.groups)
    if plan.tags:
        survivor.tags.add(*plan.tags)
    _write_local_values(survivor, plan.local_values, user)
    booking_counts.recount([survivor.pk])

    survivor.refresh_from_db()
    snapshot["survivor"].update(
        after=survivor_state(survivor),
        overrides_after=_override_rows(survivor),
        block_after=_block_row(survivor),
    )
    record = CustomerMerge.objects.create(
        survivor=survivor,
        survivor_number=survivor.pk,
        merged_numbers=merged_pks,
        local_branch=plan.local_branch,
        snapshot=_plain(snapshot),
        merged_at=now,
        merged_by=user if user is not None and user.is_authenticated else None,
    )
    log(survivor, "wagtail_clientdb.merge", user=user, data={"merged": merged_pks, "merge": record.pk})
    audit.customers_deleted(merged_pks, reason="merged", merged_into=survivor.pk)
    audit.announce_change([survivor.pk], ["merge"], source="merge")
    return record


def survivor_state(customer):
    """What a merge may change of a customer, as stored now."""
    return {
        **{name: getattr(customer, name) for name in RECORD_FIELDS},
        "attributes": dict(customer.attributes or {}),
        "home_branch": customer.home_branch_id,
        "shared_with_all_branches": customer.shared_with_all_branches,
        "branches": sorted(customer.branches.values_list("pk", flat=True)),
        "groups": sorted(customer.groups.values_list("pk", flat=True)),
        "tags": sorted(customer.tags.names()),
    }


def _row(instance):
    return {f.attname: getattr(instance, f.attname) for f in instance._meta.concrete_fields}


def _override_rows(customer):
    return {str(o.branch_id): _row(o) for o in CustomerOverride.objects.filter(customer=customer).order_by("pk")}


def _block_row(customer):
    block = OnlineBookingBlock.objects.filter(customer=customer).first()
    if block is None:
        return None
    return {**_row(block), "branches": sorted(block.branches.values_list("pk", flat=True))}


def _merged_state(customer, plan):
    return {
        "fields": _row(customer),
        "groups": sorted(customer.groups.values_list("pk", flat=True)),
        "branches": sorted(customer.branches.values_list("pk", flat=True)),
        "tags": sorted(customer.tags.names()),
        "overrides": [_row(o) for o in CustomerOverride.objects.filter(customer=customer).order_by("pk")],
        "appointments": [_appointment_facts(a) for a in plan.appointments[customer.pk]],
        "consent_events": [event.pk for event in plan.consent_events[customer.pk]],
        "deletion_requests": [request.pk for request in plan.deletion_requests[customer.pk]],
        "block": _block_row(customer),
        # Who else had its email and phone: a customer who gets them later blocks the undo.
        "email_holders": _holders("email", customer, plan),
        "phone_holders": _holders("phone", customer, plan),
    }


def _holders(name, customer, plan):
    value = getattr(customer, name)
    if not value:
        return []
    involved = [c.pk for c in plan.customers]
    return sorted(Customer.objects.filter(**{name: value}).exclude(pk__in=involved).values_list("pk", flat=True))


def _appointment_facts(appointment):
    """Enough to name an appointment in a message after it was deleted."""
    return {
        "id": appointment.pk,
        "branch": appointment.branch_id,
        "branch_name": appointment.branch.name,
        "service": appointment.service.name,
        "local_start": times.iso(appointment.start, appointment.branch),
    }


def _merge_blocks(plan):
    """The survivor carries every online booking block of the merged customers."""
    wanted = plan.booking_block
    if wanted is None:
        return
    survivor = plan.survivor
    block = OnlineBookingBlock.objects.filter(customer=survivor).first()
    if block is None:
        block = OnlineBookingBlock.objects.filter(customer__in=plan.merged).order_by("created_at", "pk").first()
        OnlineBookingBlock.objects.filter(pk=block.pk).update(customer=survivor)
    OnlineBookingBlock.objects.filter(pk=block.pk).update(reason=wanted["reason"])
    block.branches.set(wanted["branches"])


def _write_local_values(survivor, local_values, user):
    """Make the survivor's local values exactly ``local_values`` (branch → values)."""
    existing = {o.branch_id: o for o in CustomerOverride.objects.select_for_update().filter(customer=survivor)}
    wanted = {branch.pk: values for branch, values in local_values.items()}
    for branch_id, override in existing.items():
        if branch_id not in wanted:
            override.delete()
    for branch_id, values in wanted.items():
        override = existing.get(branch_id) or CustomerOverride(customer=survivor, branch_id=branch_id)
        new = {name: values.get(name) for name in overrides.OVERRIDABLE_FIELDS}
        new["phone"] = values.get("phone") if "phone_raw" in values else None
        new["attributes"] = values.get("attributes") or {}
        if override.pk is not None and all(getattr(override, name) == value for name, value in new.items()):
            continue
        for name, value in new.items():
            setattr(override, name, value)
        override.updated_by = user if user is not None and user.is_authenticated else None
        if override.pk is not None:
            override.version += 1
        override.save()


def _plain(value):
    """Snapshot values as JSON keeps them, exactly (microseconds and all)."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    return value


# --- Undoing ----------------------------------------------------------------------------------------------


def undo_deadline(merge):
    return merge.merged_at + datetime.timedelta(days=conf.get("MERGE_UNDO_DAYS"))


def undo_blockers(merge, viewer=None, now=None):
    """Why ``merge`` cannot be undone now, one message per change that blocks it; empty when
    it can. ``viewer`` decides whether another customer is named or only mentioned."""
    now = now or timezone.now()
    if merge.undone_at is not None:
        return [_("This merge was already undone on %(date)s.") % {"date": times.moment(merge.undone_at, viewer)}]
    if now > undo_deadline(merge) or not merge.snapshot.get("merged"):
        return [
            ngettext(
                "A merge can be undone for %(days)s day; this one was on %(date)s.",
                "A merge can be undone for %(days)s days; this one was on %(date)s.",
                conf.get("MERGE_UNDO_DAYS"),
            )
            % {"days": conf.get("MERGE_UNDO_DAYS"), "date": times.moment(merge.merged_at, viewer)}
        ]
    snapshot = merge.snapshot
    names = snapshot.get("names", {})
    survivor = Customer.objects.filter(pk=merge.survivor_number).first()
    if survivor is None:
        later = _merge_containing(merge)
        name = names.get(str(merge.survivor_number), "")
        if later is not None:
            return [
                _("“%(customer)s” was merged into another customer on %(date)s: undo that merge first.")
                % {"customer": name, "date": times.moment(later.merged_at, viewer)}
            ]
        return [_("“%(customer)s”, the customer this merge kept, was deleted.") % {"customer": name}]

    blockers = []
    later = (
        CustomerMerge.objects.filter(survivor=survivor, undone_at=None, merged_at__gt=merge.merged_at)
        .exclude(pk=merge.pk)
        .order_by("merged_at")
        .first()
    )
    if later is not None:
        blockers.append(
            _("“%(customer)s” was merged with other customers again on %(date)s: undo that merge first.")
            % {"customer": survivor, "date": times.moment(later.merged_at, viewer)}
        )
    if DeletionRequest.objects.filter(customer=survivor, status__in=OPEN_DELETION).exists():
        blockers.append(
            _("“%(customer)s” is queued for deletion: cancel the deletion request first.") % {"customer": survivor}
        )
    state = snapshot["survivor"]
    before, after, now_state = state["before"], state["after"], _plain(survivor_state(survivor))
    blockers += _field_blockers(survivor, before, after, now_state, merge)
    if _scope_of(now_state) != _scope_of(after):
        blockers.append(_("The sharing of “%(customer)s” changed after the merge.") % {"customer": survivor})
    blockers += _local_value_blockers(survivor, state, before)
    if _plain(_block_row(survivor)) != state["block_after"]:
        blockers.append(
            _("The online booking block of “%(customer)s” changed after the merge.") % {"customer": survivor}
        )
    blockers += _appointment_blockers(survivor, snapshot, before, viewer)
    blockers += _restore_blockers(survivor, snapshot, before, after, viewer)
    return blockers


def _merge_containing(merge):
    """The later merge that took this merge's survivor away, if any."""
    later_ones = CustomerMerge.objects.filter(undone_at=None, merged_at__gte=merge.merged_at).exclude(pk=merge.pk)
    for later in later_ones.order_by("merged_at", "pk"):
        if merge.survivor_number in later.merged_numbers:
            return later
    return None


def _label(name):
    if name == "marketing_consent":
        return _("marketing consent")
    return Customer._meta.get_field(name).verbose_name


def _field_blockers(survivor, before, after, now_state, merge):
    blockers = []
    for name in RECORD_FIELDS:
        if name == "phone":
            continue
        set_by_merge = before[name] != after[name] or (name == "phone_raw" and before["phone"] != after["phone"])
        changed = now_state[name] != after[name] or (name == "phone_raw" and now_state["phone"] != after["phone"])
        if name == "marketing_consent" and set_by_merge:
            later_events = ConsentEvent.objects.filter(customer=survivor, recorded_at__gt=merge.merged_at)
            changed = changed or later_events.exists()
        if set_by_merge and changed:
            blockers.append(
                _("The %(field)s of “%(customer)s” changed after the merge.")
                % {"field": _label(name), "customer": survivor}
            )
    labels = _attribute_labels()
    for key in sorted(set(before["attributes"]) | set(after["attributes"])):
        if before["attributes"].get(key) != after["attributes"].get(key) and now_state["attributes"].get(key) != after[
            "attributes"
        ].get(key):
            blockers.append(
                _("The attribute “%(attribute)s” of “%(customer)s” changed after the merge.")
                % {"attribute": labels.get(key, key), "customer": survivor}
            )
    return blockers


def _attribute_labels():
    from .models import AttributeDefinition, AttributeTarget

    return dict(AttributeDefinition.objects.filter(applies_to=AttributeTarget.CUSTOMER).values_list("key", "label"))


def _scope_of(state):
    return (state["home_branch"], state["shared_with_all_branches"], sorted(state["branches"]))


def _visible_branch_ids(state):
    """The branches that see a customer with this scope (``None``: every branch)."""
    if state["shared_with_all_branches"]:
        return None
    if state["home_branch"]:
        return {state["home_branch"]}
    return set(state["branches"])


def _comparable_override(row):
    if row is None:
        return None
    return {name: row.get(name) for name in (*overrides.OVERRIDABLE_FIELDS, "phone", "attributes")}


def _local_value_blockers(survivor, state, before):
    blockers = []
    now_rows = _plain(_override_rows(survivor))
    before_rows, after_rows = state["overrides_before"], state["overrides_after"]
    restored_sees = _visible_branch_ids(before)
    restored_local = before["home_branch"] is not None
    branch_names = dict(Branch.objects.values_list("pk", "name"))
    for branch_id in sorted(set(after_rows) | set(now_rows), key=int):
        if _comparable_override(now_rows.get(branch_id)) == _comparable_override(after_rows.get(branch_id)):
            continue
        touched = _comparable_override(before_rows.get(branch_id)) != _comparable_override(after_rows.get(branch_id))
        orphaned = restored_local or (restored_sees is not None and int(branch_id) not in restored_sees)
        if touched or orphaned:
            blockers.append(
                _("The local values of %(branch)s for “%(customer)s” changed after the merge.")
                % {"branch": branch_names.get(int(branch_id), branch_id), "customer": survivor}
            )
    return blockers


def describe_appointment(facts):
    start = datetime.datetime.fromisoformat(facts["local_start"])
    return _("“%(service)s” on %(start)s in %(branch)s") % {
        "service": facts["service"],
        "start": times.moment(start, start.tzinfo),
        "branch": facts["branch_name"],
    }


def _appointment_blockers(survivor, snapshot, before, viewer):
    blockers = []
    moved = [facts for entry in snapshot["merged"] for facts in entry["appointments"]]
    now = dict(Appointment.objects.filter(pk__in=[f["id"] for f in moved]).values_list("pk", "customer_id"))
    for facts in moved:
        if facts["id"] not in now:
            blockers.append(
                _("The appointment %(appointment)s, moved by the merge, was deleted.")
                % {"appointment": describe_appointment(facts)}
            )
        elif now[facts["id"]] != survivor.pk:
            blockers.append(
                _("The appointment %(appointment)s, moved by the merge, was given to another customer.")
                % {"appointment": describe_appointment(facts)}
            )
    known = set(snapshot["survivor"]["appointments_before"]) | set(now)
    sees = _visible_branch_ids(before)
    if sees is not None:
        for appointment in (
            Appointment.objects.filter(customer=survivor)
            .exclude(pk__in=known)
            .exclude(branch__in=sees)
            .select_related("branch", "service")
            .order_by("start")
        ):
            blockers.append(
                _(
                    "The appointment %(appointment)s was booked for “%(customer)s” after the merge; "
                    "after undoing it, %(branch)s would no longer see this customer."
                )
                % {
                    "appointment": describe_appointment(_appointment_facts(appointment)),
                    "customer": survivor,
                    "branch": appointment.branch.name,
                }
            )
    return blockers


def _someone(customer, viewer):
    if viewer is None or scope.is_visible(viewer, customer):
        return f"“{customer}”"
    return _("a customer you cannot see")


def _restore_blockers(survivor, snapshot, before, after, viewer):
    """What keeps the merged customers from coming back as they were."""
    blockers = []
    # The survivor gives back what the merge gave it, unless it was changed since (blocked above).
    freed = {name: after[name] for name in ("external_id", "email", "phone") if before[name] != after[name]}
    entries = snapshot["merged"]
    restored_pks = [entry["fields"]["id"] for entry in entries]
    for entry in entries:
        fields = entry["fields"]
        name = snapshot["names"].get(str(fields["id"]), fields["id"])
        if Customer.objects.filter(pk=fields["id"]).exists():
            blockers.append(_("The ID of “%(customer)s” is in use again.") % {"customer": name})
        home = fields["home_branch_id"]
        if home and not Branch.objects.filter(pk=home).exists():
            blockers.append(_("The branch of “%(customer)s” was deleted.") % {"customer": name})
        external_id = fields["external_id"]
        if external_id:
            holder = Customer.objects.filter(external_id=external_id).exclude(pk__in=restored_pks).first()
            if holder is not None and not (holder.pk == survivor.pk and freed.get("external_id") == external_id):
                blockers.append(
                    _("The external ID “%(value)s” of “%(customer)s” now belongs to %(holder)s.")
                    % {"value": external_id, "customer": name, "holder": _someone(holder, viewer)}
                )
        for key, label in (("email", _("email address")), ("phone", _("phone number"))):
            value = fields[key]
            if not value:
                continue
            known = set(entry[f"{key}_holders"]) | {survivor.pk, *restored_pks}
            holder = Customer.objects.filter(**{key: value}).exclude(pk__in=known).order_by("pk").first()
            if holder is not None:
                blockers.append(
                    _("The %(what)s “%(value)s” of “%(customer)s” is now used by %(holder)s as well.")
                    % {"what": label, "value": fields["phone_raw"] if key == "phone" else value,
                       "customer": name, "holder": _someone(holder, viewer)}
                )
    return blockers


def undo(viewer, merge, *, user=None):
    """Undo ``merge`` as ``viewer``: raises PermissionDenied when the viewer may not, and
    :class:`UndoRefused` (naming every blocking change) when it cannot be done; returns the
    re-created customers."""
    user = user if user is not None else viewer.user
    with transaction.atomic():
        merge = CustomerMerge.objects.select_for_update().get(pk=merge.pk)
        if merge.survivor_id is not None:
            merge.survivor = Customer.objects.select_for_update().filter(pk=merge.survivor_id).first()
        if not may_undo(viewer, merge) or (merge.survivor is not None and not scope.is_visible(viewer, merge.survivor)):
            raise PermissionDenied
        blockers = undo_blockers(merge, viewer)
        if blockers:
            raise UndoRefused(blockers, code="blocked")
        survivor = Customer.objects.get(pk=merge.survivor_id)
        restored = _restore(merge, survivor, user)
        merge.undone_at = timezone.now()
        merge.undone_by = user if user is not None and user.is_authenticated else None
        # Nothing more to undo: the snapshot's personal data goes; the names stay for the history.
        merge.snapshot = {"names": merge.snapshot.get("names", {})}
        merge.save(update_fields=["undone_at", "undone_by", "snapshot"])
        log(
            survivor, "wagtail_clientdb.merge_undone", user=user,
            data={"restored": [c.pk for c in restored], "merge": merge.pk},
        )
        for customer in restored:
            log(
                customer, "wagtail_clientdb.merge_restored", user=user,
                data={"survivor": survivor.pk, "merge": merge.pk},
            )
        audit.customer_created([customer.pk for customer in restored], source="merge_undone")
        audit.announce_change([survivor.pk], ["merge_undone"], source="merge")
    return restored


def _restore_instance(model, row, **extra):
    values = {}
    for f in model._meta.concrete_fields:
        if f.attname not in row:
            continue
        value = row[f.attname]
        value = None if value is None else f.to_python(value)
        if value is not None and f.is_relation and f.null and not _exists(f.related_model, value):
            # A user who recorded or changed something was deleted meanwhile.
            value = None
        values[f.attname] = value
    values.update(extra)
    return model(**values)


def _restore(merge, survivor, user):
    snapshot = merge.snapshot
    state = snapshot["survivor"]
    before, after = state["before"], state["after"]

    # The survivor first: it gives back an external ID the merged customers need.
    for name in RECORD_FIELDS:
        if before[name] != after[name]:
            setattr(survivor, name, Customer._meta.get_field(name).to_python(before[name]))
    attributes = dict(survivor.attributes or {})
    for key in set(before["attributes"]) | set(after["attributes"]):
        if before["attributes"].get(key) != after["attributes"].get(key):
            if key in before["attributes"]:
                attributes[key] = before["attributes"][key]
            else:
                attributes.pop(key, None)
    survivor.attributes = attributes
    seen_by_merged = removals.seen_by([survivor.pk])
    survivor.home_branch_id = before["home_branch"]
    survivor.shared_with_all_branches = before["shared_with_all_branches"]
    survivor.save()
    survivor.branches.set(before["branches"])
    removals.record_unshared(seen_by_merged, removals.seen_by([survivor.pk]))
    added_groups = set(after["groups"]) - set(before["groups"])
    survivor.groups.remove(*added_groups)
    added_tags = set(after["tags"]) - set(before["tags"])
    if added_tags:
        survivor.tags.remove(*added_tags)

    # The survivor's local values where the merge changed them.
    for branch_id in set(state["overrides_before"]) | set(state["overrides_after"]):
        was, became = state["overrides_before"].get(branch_id), state["overrides_after"].get(branch_id)
        if _comparable_override(was) == _comparable_override(became):
            continue
        CustomerOverride.objects.filter(customer=survivor, branch_id=int(branch_id)).delete()
        if was is not None:
            _recreate(CustomerOverride, was, version=was["version"] + 1)

    OnlineBookingBlock.objects.filter(customer=survivor).delete()
    if state["block_before"] is not None:
        _recreate_block(state["block_before"])

    existing_branches = set(Branch.objects.values_list("pk", flat=True))
    existing_groups = set(CustomerGroup.objects.values_list("pk", flat=True))
    restored = []
    for entry in snapshot["merged"]:
        fields = entry["fields"]
        customer = _recreate(Customer, fields, version=fields["version"] + 1)
        # Back now: a sync by updated_since lists it again (the merge removed it from view).
        customer.updated_at = timezone.now()
        Customer.objects.filter(pk=customer.pk).update(updated_at=customer.updated_at)
        customer.branches.set([pk for pk in entry["branches"] if pk in existing_branches])
        customer.groups.set([pk for pk in entry["groups"] if pk in existing_groups])
        if entry["tags"]:
            customer.tags.add(*entry["tags"])
        for row in entry["overrides"]:
            if row["branch_id"] in existing_branches:
                _recreate(CustomerOverride, row, version=row["version"] + 1)
        moved_back = [a["id"] for a in entry["appointments"]]
        Appointment.objects.filter(pk__in=moved_back, customer=survivor).update(customer=customer, updated_at=timezone.now())
        ConsentEvent.objects.filter(pk__in=entry["consent_events"], customer=survivor).update(customer=customer)
        DeletionRequest.objects.filter(pk__in=entry["deletion_requests"], customer=survivor).update(customer=customer)
        if entry["block"] is not None:
            _recreate_block(entry["block"])
        # Merges into this customer that its own merge left without a survivor have one again.
        CustomerMerge.objects.filter(survivor=None, survivor_number=customer.pk).update(survivor=customer)
        restored.append(customer)
    booking_counts.recount([survivor.pk, *(c.pk for c in restored)])
    return restored


def _exists(model, pk):
    return model._base_manager.filter(pk=pk).exists()


def _recreate(model, row, **extra):
    """A row as it was: the same primary key and values, its own timestamps."""
    instance = _restore_instance(model, row, **extra)
    model.objects.bulk_create([instance])
    stamps = {
        f.attname: f.to_python(row[f.attname])
        for f in model._meta.concrete_fields
        if isinstance(f, DateTimeField) and (f.auto_now or f.auto_now_add) and row.get(f.attname)
    }
    if stamps:
        # bulk_create stamped them with the time of now.
        model._base_manager.filter(pk=instance.pk).update(**stamps)
    return model._base_manager.get(pk=instance.pk)


def _recreate_block(row):
    block = _recreate(OnlineBookingBlock, {k: v for k, v in row.items() if k != "branches"})
    block.branches.set([pk for pk in row["branches"] if Branch.objects.filter(pk=pk).exists()])


# --- Reading merges ---------------------------------------------------------------------------------------


def merges_into(customer):
    """The merges that ``customer`` survived and that are not undone, newest first."""
    merges = CustomerMerge.objects.filter(survivor=customer, undone_at=None).select_related("merged_by")
    return merges.order_by("-merged_at", "-pk")


def merged_names(merge):
    names = merge.snapshot.get("names", {})
    return [names.get(str(pk), str(pk)) for pk in merge.merged_numbers]


def forget_merges_of(customer):
    """A customer is deleted for good (the deletion queue): the merges it survived go, with
    the snapshots of the customers merged into it, and those of the merges before them."""
    doomed = list(CustomerMerge.objects.filter(survivor=customer))
    seen = {merge.pk for merge in doomed}
    while doomed:
        merge = doomed.pop()
        for earlier in CustomerMerge.objects.filter(survivor=None, survivor_number__in=merge.merged_numbers):
            if earlier.pk not in seen:
                seen.add(earlier.pk)
                doomed.append(earlier)
    forgotten = CustomerMerge.objects.filter(pk__in=seen)
    # The history of the customers merged away stays, without their names (as a deleted customer's).
    numbers = {pk for merge in forgotten.filter(undone_at=None) for pk in merge.merged_numbers}
    for number in numbers:
        ClientDBLogEntry.objects.filter(
            content_type=ContentType.objects.get_for_model(Customer), object_id=str(number)
        ).update(label=_("Customer #%(number)s (deleted)") % {"number": number})
    forgotten.delete()


def forget_expired_snapshots(now=None):
    """Merges older than the undo period keep who merged what and when, not the values the
    merged customers had (personal data kept for the undo only). Returns how many."""
    cutoff = (now or timezone.now()) - datetime.timedelta(days=conf.get("MERGE_UNDO_DAYS"))
    expired = CustomerMerge.objects.filter(merged_at__lt=cutoff, undone_at=None).exclude(snapshot__has_key="expired")
    count = 0
    for merge in expired.only("pk", "snapshot"):
        kept = {"names": merge.snapshot.get("names", {}), "expired": True}
        CustomerMerge.objects.filter(pk=merge.pk).update(snapshot=kept)
        count += 1
    return count
