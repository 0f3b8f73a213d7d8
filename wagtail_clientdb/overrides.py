"""Local values of global customers: what a branch sees and how its edits are kept.

A branch allowed to edit global customers stores its changes in one
:class:`~wagtail_clientdb.models.CustomerOverride` row per customer and branch; the
global record and every other branch stay as they are. The *effective* value a branch
sees is its local value where it has one, the global value otherwise.
"""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, FilteredRelation, Func, JSONField, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from . import bulk
from .contact import normalise_email, normalise_text, parse_phone
from .models import ClientDBSettings, Customer, CustomerOverride
from .models.customer import name_of

#: Fields a branch may hold local values for. ``phone_raw`` carries ``phone`` with it.
OVERRIDABLE_FIELDS = ("first_name", "last_name", "email", "phone_raw", "notes", "birthday")

#: Fields annotated as ``eff_<field>`` on listings.
EFFECTIVE_FIELDS = (*OVERRIDABLE_FIELDS, "phone")

#: Local attribute values are named ``attributes.<key>`` among the local fields.
ATTRIBUTE_PREFIX = "attributes."

#: Up to how many customers with matching local values :func:`own_or_local_values_match`
#: names by id; more are found by a subquery, with the customers whose own values match.
MAX_NAMED_LOCAL_MATCHES = 5000


class JSONObjectMerge(Func):
    """The keys of the second JSON object laid over the first (SQLite and PostgreSQL)."""

    output_field = JSONField()
    arity = 2

    def as_sqlite(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, function="json_patch", **extra)

    def as_postgresql(self, compiler, connection, **extra):
        return self.as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=" || ", **extra)


def with_effective_values(queryset, branch):
    """Annotate ``eff_<field>`` for each of :data:`EFFECTIVE_FIELDS`, ``eff_attributes``, and
    ``eff_updated_at`` (the later of the record's change and the branch's local values'), as
    ``branch`` sees them.

    One join and no extra query; ``branch=None`` (the company-wide view) gives the global
    values. Filters and searches on the annotations see what the branch sees.
    """
    if branch is None:
        return queryset.annotate(
            **{f"eff_{name}": F(name) for name in EFFECTIVE_FIELDS}, eff_attributes=F("attributes"), eff_updated_at=F("updated_at")
        )
    queryset = queryset.annotate(
        branch_override=FilteredRelation("overrides", condition=Q(overrides__branch=branch))
    )
    return queryset.annotate(
        **{f"eff_{name}": Coalesce(f"branch_override__{name}", name) for name in EFFECTIVE_FIELDS},
        eff_attributes=JSONObjectMerge(
            "attributes", Coalesce("branch_override__attributes", Value({}, output_field=JSONField()))
        ),
        # SQLite's greatest of a NULL is NULL: a customer without local values is the record's.
        eff_updated_at=Greatest("updated_at", Coalesce("branch_override__updated_at", "updated_at")),
    )


def own_or_local_values_match(q):
    """Customers whose own values match ``q`` (on fields a customer and its local values share),
    or whose local values in some branch do: a superset of those whose values, as any branch
    sees them, match — the *candidates* a search narrows to through indexes before it checks
    what the branch sees on those rows only.

    The own values through their indexes, and the few customers with matching local values
    named by id (read first), in one condition the indexes answer together: the matches are
    read once, in the table's order. As ``id IN (own matches UNION local matches)``, a common
    name's 72,000 matches were read twice, and then each one again by its id (0.6 s)."""
    local = CustomerOverride.objects.filter(q).order_by().values("customer_id")
    ids = list(local.values_list("customer_id", flat=True)[: MAX_NAMED_LOCAL_MATCHES + 1])
    if len(ids) > MAX_NAMED_LOCAL_MATCHES:
        return Q(pk__in=Customer.objects.filter(q).order_by().values("pk").union(local))
    return q | Q(bulk.any_of("pk", sorted(set(ids)))) if ids else q


def as_branch_sees_q(branch, field, on_record, matches, *, limit=None):
    """Customers whose value of ``field`` (a column, or ``attributes__<key>``), as ``branch``
    sees it (``None``: the company), meets ``on_record`` — a condition on the record's column
    that an index answers and that holds for local values too — or, for a local value read
    back, ``matches(value)``.

    A branch sees its local value where it keeps one, else the record's. Not compared on the
    two merged per row (``COALESCE``, ``||``), which no index answers: the record's values
    through their index, less the few customers with a local value in the branch, plus those
    of them whose local value matches; past ``limit`` (:data:`MAX_NAMED_LOCAL_MATCHES`) such
    customers, by subqueries."""
    if branch is None:
        return on_record
    limit = MAX_NAMED_LOCAL_MATCHES if limit is None else limit
    local = CustomerOverride.objects.filter(branch=branch, **{f"{field}__isnull": False})
    rows = list(local.values_list("customer_id", field)[: limit + 1])
    if len(rows) > limit:
        return (on_record & ~Q(pk__in=local.values("customer_id"))) | Q(pk__in=local.filter(on_record).values("customer_id"))
    condition = on_record & ~Q(pk__in=[pk for pk, _value in rows]) if rows else on_record
    matching = [pk for pk, value in rows if matches(value)]
    return condition | Q(pk__in=matching) if matching else condition


@dataclass
class EffectiveCustomer:
    """A customer as one branch sees it."""

    customer: object
    override: object = None

    def value(self, name):
        local = getattr(self.override, name, None) if self.override else None
        return getattr(self.customer, name) if local is None else local

    @property
    def attributes(self):
        local = self.override.attributes if self.override else {}
        return {**(self.customer.attributes or {}), **local}

    @property
    def local_fields(self):
        """Names of the fields (and ``attributes.<key>``) this branch holds local values for."""
        if not self.override:
            return []
        names = [name for name in OVERRIDABLE_FIELDS if getattr(self.override, name) is not None]
        names += [ATTRIBUTE_PREFIX + key for key in self.override.attributes]
        return names

    @property
    def updated_at(self):
        """When what the branch sees last changed: the record, or the branch's local values."""
        if self.override is None:
            return self.customer.updated_at
        return max(self.customer.updated_at, self.override.updated_at)

    def __getattr__(self, name):
        if name in EFFECTIVE_FIELDS:
            return self.value(name)
        return getattr(self.customer, name)

    def __str__(self):
        return name_of(self)


def effective_customer(customer, branch):
    override = None
    if branch is not None and customer.is_global:
        override = CustomerOverride.objects.filter(customer=customer, branch=branch).first()
    return EffectiveCustomer(customer, override)


def name_known_in(customer, branch):
    """The customer's name as ``branch`` knows them (its local names); ``None``: the record's."""
    return name_of(effective_customer(customer, branch))


def customers_as_their_branches_see_them(appointments):
    """Set ``seen_customer`` on each of ``appointments`` (their customers loaded): its customer
    as the appointment's branch sees it, with that branch's local values, or ``None`` for a
    deleted customer. One query for all of them."""
    appointments = list(appointments)
    customer_ids = {a.customer_id for a in appointments if a.customer_id is not None}
    local_values = {}
    if customer_ids:
        branch_ids = {a.branch_id for a in appointments}
        found = CustomerOverride.objects.filter(bulk.any_of("customer_id", sorted(customer_ids)), branch_id__in=branch_ids)
        local_values = {(override.customer_id, override.branch_id): override for override in found}
    for appointment in appointments:
        customer = appointment.customer
        override = local_values.get((appointment.customer_id, appointment.branch_id))
        appointment.seen_customer = None if customer is None else EffectiveCustomer(customer, override)
    return appointments


def _normalised(name, value):
    if name == "email":
        return normalise_email(value)
    if isinstance(value, str):
        value = normalise_text(value)
        return value.strip() if name != "notes" else value
    return value


@transaction.atomic
def save_local_values(customer, branch, values, *, attributes=None, user=None):
    """Keep ``values`` (field → value) as ``branch``'s local values of a global customer.

    A value equal to the global one is no local value: it is cleared, so the branch
    follows later central changes of that field again. The global values are read from
    the database, not from ``customer``, which a bound form may have changed in memory.
    Returns the saved local values (``None`` when none are left).
    """
    customer = type(customer).objects.select_for_update().get(pk=customer.pk)
    phone_region = ClientDBSettings.load().default_phone_region
    override, _created = CustomerOverride.objects.select_for_update().get_or_create(
        customer=customer, branch=branch
    )
    for name, value in values.items():
        if name not in OVERRIDABLE_FIELDS:
            raise ValueError(f"{name} cannot hold a local value")
        value = _normalised(name, value)
        if name == "phone_raw":
            parsed = parse_phone(value, phone_region)
            same = value == customer.phone_raw or (parsed.e164 and parsed.e164 == customer.phone)
            override.phone_raw, override.phone = (None, None) if same else (parsed.raw, parsed.e164)
        else:
            setattr(override, name, None if value == getattr(customer, name) else value)
    for key, value in (attributes or {}).items():
        if value == (customer.attributes or {}).get(key):
            override.attributes.pop(key, None)
        else:
            override.attributes[key] = value
    return _save_or_drop(override, user)


@transaction.atomic
def reset_to_global(customer, branch, names, *, user=None):
    """Drop the branch's local values of ``names`` (fields or ``attributes.<key>``)."""
    override = CustomerOverride.objects.select_for_update().filter(customer=customer, branch=branch).first()
    if override is None:
        return
    for name in names:
        if name.startswith(ATTRIBUTE_PREFIX):
            override.attributes.pop(name[len(ATTRIBUTE_PREFIX) :], None)
        elif name in OVERRIDABLE_FIELDS:
            setattr(override, name, None)
            if name == "phone_raw":
                override.phone = None
    _save_or_drop(override, user)


def _save_or_drop(override, user):
    """Save the branch's local values (callers hold the row lock), or drop them when none are left.

    Returns the saved local values, or ``None``.
    """
    if EffectiveCustomer(override.customer, override).local_fields:
        override.updated_by = user
        if override.pk is not None:
            override.version += 1
        override.save()
        return override
    if override.pk is not None:
        override.delete()
        # What the branch sees changed, and no local values are left to say when: the record
        # says it (its version stays: the record's own values did not change).
        Customer.objects.filter(pk=override.customer_id).update(updated_at=timezone.now())
    return None


@transaction.atomic
def restore_local_values(customer, branch, fields, *, attributes=None, user=None):
    """Put back local values as they were (an import rolled back): ``fields`` maps a field
    (``phone`` with ``phone_raw``) to its local value then, ``None`` for none; ``attributes``
    maps a key to its local value then, ``None`` for none. Returns the local values, or ``None``.
    """
    override = CustomerOverride.objects.select_for_update().filter(customer=customer, branch=branch).first()
    if override is None:
        override = CustomerOverride(customer=customer, branch=branch)
    for name, value in fields.items():
        if name not in (*OVERRIDABLE_FIELDS, "phone"):
            raise ValueError(f"{name} cannot hold a local value")
        setattr(override, name, value)
    for key, value in (attributes or {}).items():
        if value is None:
            override.attributes.pop(key, None)
        else:
            override.attributes[key] = value
    return _save_or_drop(override, user)
