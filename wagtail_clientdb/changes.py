"""Creating and changing a customer from data (the API): the same rules as the admin's forms.

Values arrive as plain data (``{"email": …, "groups": ["VIP"], "attributes": {…}}``) and are
checked here: contact data as :mod:`wagtail_clientdb.contact` stores it, attributes by their
types, groups by name, branches by slug; what the viewer may not set (the scope, the external
ID and the source for branch users) is refused, not ignored. A change is stored as
:func:`wagtail_clientdb.scope.edit_mode` says: on the record, or as the branch's local values,
and never based on an older version than the one the caller saw (:mod:`.versions`).
"""

import datetime

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.utils.translation import gettext as _

from . import attributes, audit, groups, overrides, scope, tags, times, versions
from .consent import record_consent
from .contact import PHONE_INVALID_MESSAGE, normalise_email, normalise_text, parse_phone
from .models import AttributeTarget, Branch, ClientDBSettings, Customer, CustomerGroup

TEXT_LIMITS = {"first_name": 150, "last_name": 150, "notes": 10_000, "external_id": 255}
EMAIL_LIMIT = Customer._meta.get_field("email").max_length
PHONE_LIMIT = Customer._meta.get_field("phone_raw").max_length
#: Only the head office decides these.
MANAGER_ONLY = ("external_id", "shared_with_all_branches", "branches")


class Refused(ValidationError):
    """Values that cannot be taken: ``message_dict`` names each field and why."""


class StaleVersion(Exception):
    """The customer changed since the version the caller based the change on."""


def version_tag(customer, branch):
    """The version of what ``branch`` sees of ``customer`` (record and local values), for ETag."""
    return "{}.{}".format(*versions.current_versions(customer, branch))


def clean_values(viewer, data):
    """Check ``data`` (field → value as given); returns the values to store or raises :class:`Refused`."""
    errors, values = {}, {}
    region = ClientDBSettings.load().default_phone_region

    def refuse(field, message):
        errors.setdefault(field, []).append(str(message))

    for field in MANAGER_ONLY:
        if field in data and not viewer.is_manager:
            refuse(field, _("Only the head office can set this."))
    for field, limit in TEXT_LIMITS.items():
        if field in data and field not in errors:
            text = normalise_text((data[field] or "").strip() if field != "notes" else data[field] or "")
            if len(text) > limit:
                refuse(field, _("At most %(limit)s characters.") % {"limit": limit})
            elif "\x00" in text:
                refuse(field, _("Contains a NUL character."))
            else:
                values[field] = text
    if "email" in data:
        email = normalise_email(data["email"] or "")
        try:
            if len(email) > EMAIL_LIMIT:
                refuse("email", _("At most %(limit)s characters.") % {"limit": EMAIL_LIMIT})
            else:
                if email:
                    validate_email(email)
                values["email"] = email
        except ValidationError as error:
            refuse("email", " ".join(error.messages))
    if "phone" in data:
        parsed = parse_phone(data["phone"] or "", region)
        if len(parsed.raw or "") > PHONE_LIMIT:
            refuse("phone", _("At most %(limit)s characters.") % {"limit": PHONE_LIMIT})
        elif parsed.is_valid:
            values["phone_raw"] = parsed.raw
        else:
            refuse("phone", PHONE_INVALID_MESSAGE % {"region": region})
    if "birthday" in data:
        birthday = data["birthday"]
        if birthday is not None and not datetime.date(1900, 1, 1) <= birthday <= datetime.date.today():
            refuse("birthday", _("%(value)s is not a plausible birthday.") % {"value": times.day(birthday)})
        else:
            values["birthday"] = birthday
    if "marketing_consent" in data and data["marketing_consent"] is not None:
        values["marketing_consent"] = bool(data["marketing_consent"])
    if data.get("attributes") is not None:
        values["attributes"] = _attribute_values(data["attributes"], refuse)
    if data.get("groups") is not None:
        values["groups"] = _by_name(CustomerGroup.objects.all(), data["groups"], "groups", _("Unknown group: %(names)s."), refuse)
    if data.get("tags") is not None:
        try:
            values["tags"] = tags.clean_names(data["tags"])
        except ValidationError as error:
            refuse("tags", " ".join(error.messages))
    if data.get("branches") is not None and "branches" not in errors:
        found = {branch.slug: branch for branch in Branch.objects.filter(slug__in=data["branches"])}
        unknown = [slug for slug in data["branches"] if slug not in found]
        if unknown:
            refuse("branches", _("Unknown branch: %(names)s.") % {"names": ", ".join(unknown)})
        values["branches"] = list(found.values())
    if data.get("shared_with_all_branches") is not None and "shared_with_all_branches" not in errors:
        values["shared_with_all_branches"] = bool(data["shared_with_all_branches"])
    if errors:
        raise Refused(errors)
    return values


def _attribute_values(given, refuse):
    values, errors = attributes.parse_given(AttributeTarget.CUSTOMER, given)
    for field, messages in errors.items():
        refuse(field, " ".join(messages))
    return values


def _by_name(queryset, names, field, message, refuse):
    found = {item.name.casefold(): item for item in queryset}
    unknown = [name for name in names if name.casefold() not in found]
    if unknown:
        refuse(field, message % {"names": ", ".join(unknown)})
    return [found[name.casefold()] for name in names if name.casefold() in found]


@transaction.atomic
def check_new_person(viewer, details):
    """The name, email and phone of a person booked through the API, checked as a new
    customer's are (empty ones are left out); raises :class:`Refused`."""
    _require_identity(clean_values(viewer, {name: value for name, value in details.items() if value}))


def _require_identity(values):
    if not any(values.get(name) for name in ("first_name", "last_name", "email", "phone_raw", "external_id")):
        raise Refused({"first_name": [_("Enter at least a name, an email address or a phone number.")]})


def create_customer(viewer, values, *, source, channel, user):
    """A new customer with ``values`` (from :func:`clean_values`), scoped to its creator."""
    _require_identity(values)
    _check_external_id(values.get("external_id"), None)
    if viewer.is_manager:
        try:
            scope.require_a_branch(all_branches=values.get("shared_with_all_branches"), branches=values.get("branches"))
        except ValidationError as error:
            raise Refused({"branches": error.messages})
    customer = Customer(
        source=source,
        **{name: values[name] for name in ("first_name", "last_name", "email", "phone_raw", "notes", "birthday", "external_id") if name in values},
        attributes={key: value for key, value in values.get("attributes", {}).items() if value is not None},
    )
    scope.apply_new_customer_scope(viewer, customer)
    customer.save()
    _set_relations(customer, values)
    if viewer.is_manager and ("shared_with_all_branches" in values or "branches" in values):
        scope.set_sharing(customer, all_branches=values.get("shared_with_all_branches", False), branches=values.get("branches", ()))
    if values.get("marketing_consent"):
        record_consent(customer, True, channel, user, previous=False)
    audit.customer_created([customer.pk], source=source)
    return customer


#: The given fields a branch may hold local values of, by the names of those values.
LOCAL_VALUE_OF = {"first_name": "first_name", "last_name": "last_name", "email": "email", "phone": "phone_raw", "notes": "notes", "birthday": "birthday"}


def given_as_null(data):
    """What ``data`` (as given) sends as null, by the names of local values (``attributes.<key>``
    for attributes): for a branch's local values of a shared customer, back to the company's
    values (an empty text is a local value of its own, as the admin's form keeps it)."""
    names = {LOCAL_VALUE_OF[name] for name, value in data.items() if value is None and name in LOCAL_VALUE_OF}
    return names | {overrides.ATTRIBUTE_PREFIX + key for key, value in (data.get("attributes") or {}).items() if value is None}


@transaction.atomic
def update_customer(viewer, customer, values, *, expected_versions, shown_branch, channel, user, back_to_company=()):
    """Apply ``values`` as ``viewer`` may: on the record, or as the branch's local values;
    ``back_to_company`` (:func:`given_as_null`): local values the branch gives up.

    Raises :class:`StaleVersion` when what the caller read — the customer as ``shown_branch``
    sees it, record and local values — is none of ``expected_versions`` (from
    :func:`version_tag`), PermissionDenied for a read-only customer, :class:`Refused` for
    values this viewer may not change.
    """
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    branch = viewer.branch
    if version_tag(customer, shown_branch) not in expected_versions:
        raise StaleVersion
    mode = scope.edit_mode(viewer, customer)
    if mode == scope.EditMode.READ_ONLY:
        raise PermissionDenied(_("This customer is shared by the head office and is read-only in your branch."))
    local_branch = branch if mode == scope.EditMode.OVERRIDE else None
    with audit.edit_of(customer.pk, user=user, local_branch=local_branch, action="wagtail_clientdb.edit_via_api", source="api"):
        _apply(customer, values, mode, branch, channel=channel, user=user, back_to_company=set(back_to_company))
    return customer


def _apply(customer, values, mode, branch, *, channel, user, back_to_company=frozenset()):
    if mode == scope.EditMode.OVERRIDE:
        shared = [name for name in values if name not in (*overrides.OVERRIDABLE_FIELDS, "attributes")]
        if shared:
            raise Refused({name: [_("Only the head office can change this for a shared customer.")] for name in shared})
        overrides.save_local_values(
            customer,
            branch,
            {name: value for name, value in values.items() if name != "attributes" and name not in back_to_company},
            attributes={
                key: value
                for key, value in (values.get("attributes") or {}).items()
                if overrides.ATTRIBUTE_PREFIX + key not in back_to_company
            },
            user=user,
        )
        if back_to_company:
            overrides.reset_to_global(customer, branch, back_to_company, user=user)
        return
    if _changes_nothing(customer, values):
        # A repeated change moves neither the version nor updated_at: another client's next
        # change is not refused as stale, and no sync reads the customer again.
        return
    if "external_id" in values:
        _check_external_id(values["external_id"], customer)
    for name in RECORD_FIELDS:
        if name in values:
            setattr(customer, name, values[name])
    if "attributes" in values:
        customer.attributes = attributes.merged(customer.attributes, values["attributes"])
    customer.save()
    _set_relations(customer, values)
    if "shared_with_all_branches" in values or "branches" in values:
        all_branches = values.get("shared_with_all_branches", customer.shared_with_all_branches)
        try:
            scope.set_sharing(customer, all_branches=all_branches, branches=values.get("branches", customer.branches.all()))
        except ValidationError as error:
            field = "shared_with_all_branches" if error.code == "all_branches_final" else "branches"
            raise Refused({field: error.messages})
    if "marketing_consent" in values:
        record_consent(customer, values["marketing_consent"], channel, user)


RECORD_FIELDS = ("first_name", "last_name", "email", "phone_raw", "notes", "birthday", "external_id")


def _changes_nothing(customer, values):
    """Whether ``values`` (from :func:`clean_values`) hold what ``customer`` holds already."""
    if any(getattr(customer, name) != values[name] for name in RECORD_FIELDS if name in values):
        return False
    if "attributes" in values and attributes.merged(customer.attributes, values["attributes"]) != (customer.attributes or {}):
        return False
    if "marketing_consent" in values and values["marketing_consent"] != customer.marketing_consent:
        return False
    if "groups" in values and set(groups.settable(values["groups"])) != set(customer.groups.all()):
        return False
    if "tags" in values and not tags.same(values["tags"], customer.tags.names()):
        return False
    if "shared_with_all_branches" in values or "branches" in values:
        all_branches = values.get("shared_with_all_branches", customer.shared_with_all_branches)
        if all_branches != customer.shared_with_all_branches:
            return False
        branches = set(values.get("branches", customer.branches.all()))
        if not all_branches and (branches != set(customer.branches.all()) if customer.home_branch_id is None else branches):
            return False
    return True


def _check_external_id(external_id, customer):
    if external_id and Customer.objects.filter(external_id=external_id).exclude(pk=getattr(customer, "pk", None)).exists():
        raise Refused({"external_id": [_("Another customer already has this external ID.")]})


def _set_relations(customer, values):
    if "groups" in values:
        customer.groups.set(groups.settable(values["groups"]))
    if "tags" in values:
        customer.tags.set(values["tags"])
