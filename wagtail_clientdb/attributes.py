"""Custom attributes: which definitions apply where, how forms carry their values, and
the rules for changing or deleting a definition that values already use.

Types and validation of single values live in :mod:`wagtail_clientdb.attribute_types`.
"""

import contextvars
import operator
from contextlib import contextmanager
from functools import reduce

from django.core.exceptions import ValidationError
from django.db import connections, transaction
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from . import attribute_types, overrides
from .models import Appointment, AttributeDefinition, AttributeTarget, Customer, CustomerOverride

#: Form fields of attributes are named ``attr__<key>``.
FIELD_PREFIX = "attr__"


#: target → active definitions, while :func:`definitions_read_once` holds.
_read_once = contextvars.ContextVar("wagtail_clientdb_active_definitions", default=None)


def active_definitions(target):
    """The active definitions in their order (the same order wherever they are listed: an
    export's attribute columns and an import's reading of their headings agree)."""
    read = _read_once.get()
    if read is not None and target in read:
        return list(read[target])
    found = list(AttributeDefinition.objects.filter(applies_to=target, is_active=True).order_by("sort_order", "label", "pk"))
    if read is not None:
        read[target] = found
    return found


@contextmanager
def definitions_read_once():
    """Within the block, the definitions are read once per target: the rules of several dynamic
    groups, each a listing of its own, cost one query and not one per group."""
    if _read_once.get() is not None:
        yield
        return
    token = _read_once.set({})
    try:
        yield
    finally:
        _read_once.reset(token)


def with_value(customers, branch, key, values):
    """The customers of ``customers`` whose value of the attribute ``key``, as ``branch`` sees
    it (``None``: the company), is one of ``values`` (stored values).

    Not compared on the values merged per row, which no index answers (counting 10,000 of a
    choice's customers for a branch read 170,000 of them), but by
    :func:`~wagtail_clientdb.overrides.as_branch_sees_q`, the record's values through their
    index (migration 0028, PostgreSQL)."""
    if connections[customers.db].vendor == "postgresql":
        # The index leaves out customers without attributes: the query says so too.
        on_record = ~Q(attributes={}) & reduce(operator.or_, (Q(attributes__contains={key: value}) for value in values))
    else:
        on_record = Q(**{f"attributes__{key}__in": values})
    return customers.filter(
        overrides.as_branch_sees_q(branch, f"attributes__{key}", on_record, lambda value: value in values)
    )


def holders(definition):
    """Querysets of every row that may hold a value of ``definition``."""
    if definition.applies_to == AttributeTarget.BOOKING:
        return [Appointment.objects.all()]
    return [Customer.objects.all(), CustomerOverride.objects.all()]


def rows_with_value(definition, key=None):
    key = key or definition.key
    return [queryset.filter(attributes__has_key=key) for queryset in holders(definition)]


def usage_count(definition, key=None):
    """How many customers (or appointments) hold a value; a branch's local value counts once."""
    querysets = rows_with_value(definition, key)
    if definition.applies_to == AttributeTarget.BOOKING:
        return querysets[0].count()
    _customers, local = querysets
    key = key or definition.key
    return Customer.objects.filter(Q(attributes__has_key=key) | Q(pk__in=local.values("customer_id"))).count()


def add_form_fields(form, definitions, stored, *, required=None):
    """Add a typed field per definition to ``form``, with the stored values as initial values."""
    for definition in definitions:
        name = FIELD_PREFIX + definition.key
        field = attribute_types.form_field(definition, required=required(definition) if required else None)
        field.initial = attribute_types.initial_value(definition, (stored or {}).get(definition.key))
        form.fields[name] = field


def values_from_form(form, definitions):
    """``{key: stored value}`` of the attribute fields the form was sent with (``None``: cleared).

    Fields missing from the submitted data are left out, so a partial submission never
    wipes values it did not carry.
    """
    values = {}
    for definition in definitions:
        name = FIELD_PREFIX + definition.key
        if name in form.fields and form.add_prefix(name) in form.data:
            values[definition.key] = attribute_types.to_json(definition, form.cleaned_data.get(name))
    return values


def undefined(target, keys):
    """The ones of ``keys`` that no active attribute of ``target`` has: a client's mistake,
    refused (:data:`UNDEFINED`), never silently dropped."""
    return set(keys) - {definition.key for definition in active_definitions(target)}


#: The refusal of a value for an attribute no one defined.
UNDEFINED = _("No such attribute.")


def parse_given(target, given):
    """Attribute values as a client gives them (key → value; the API) → ``(values, errors)``:
    the values to store by key (``None`` removes one), and the messages by ``attributes.<key>``."""
    definitions = {d.key: d for d in active_definitions(target)}
    values, errors = {}, {}
    for key, value in given.items():
        if key not in definitions:
            errors[f"attributes.{key}"] = [str(UNDEFINED)]
            continue
        try:
            values[key] = attribute_types.parse_text(definitions[key], value)
        except ValidationError as error:
            errors[f"attributes.{key}"] = error.messages
    return values, errors


def merged(stored, values):
    """Stored attribute values with ``values`` applied; ``None`` removes a value."""
    result = dict(stored or {})
    for key, value in values.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


# --- Changing and deleting definitions --------------------------------------------------------------


def plan_type_change(definition, new_definition):
    """Convert every stored value of ``definition`` to ``new_definition``'s type.

    Returns ``[(row, new value), …]``; raises ValidationError naming how many values do not
    convert, so that nothing changes unless every value does.
    """
    key = definition.key
    plan, failures = [], 0
    for queryset in rows_with_value(definition):
        for row in queryset.only("pk", "attributes").iterator():
            old = row.attributes.get(key)
            try:
                new = attribute_types.parse_text(new_definition, _as_text(old))
            except ValidationError:
                failures += 1
                continue
            plan.append((row, new))
    if failures:
        raise ValidationError(
            ngettext(
                "%(count)d stored value cannot be converted to the new type; the type was not changed.",
                "%(count)d stored values cannot be converted to the new type; the type was not changed.",
                failures,
            ),
            params={"count": failures},
            code="type_in_use",
        )
    return plan


def _as_text(stored):
    if isinstance(stored, bool):
        return "true" if stored else "false"
    return "" if stored is None else str(stored)


def _set_value(row, key, value):
    # update(), not save(): only the attributes change, with no other save-time work.
    type(row).objects.filter(pk=row.pk).update(attributes=merged(row.attributes, {key: value}))


def apply_plan(key, plan):
    for row, value in plan:
        _set_value(row, key, value)


def check_removed_choices(definition, new_choices):
    """Refuse to remove an option that stored values still use."""
    removed = [option for option in definition.choices or [] if option not in new_choices]
    in_use = {}
    for option in removed:
        count = sum(qs.filter(**{f"attributes__{definition.key}": option}).count() for qs in holders(definition))
        if count:
            in_use[option] = count
    if in_use:
        raise ValidationError(
            _("These options are still in use and cannot be removed: %(options)s."),
            params={"options": ", ".join(f"“{option}” ({count})" for option, count in in_use.items())},
            code="choice_in_use",
        )


@transaction.atomic
def remove_values(definition):
    """Remove every stored value of ``definition`` (before the definition is deleted)."""
    for queryset in rows_with_value(definition):
        for row in queryset.only("pk", "attributes").iterator():
            _set_value(row, definition.key, None)
