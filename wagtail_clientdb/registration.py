"""Customers who arrive by booking: at the desk (the admin's booking form) or online.

Whoever books is first looked up by the identity rule (:mod:`wagtail_clientdb.matching`);
a person found is booked as they are, and only what the booking form asked of them
changes. Someone new becomes a customer with the scope of whoever registers them, the
consent they gave (with its history), and, when they booked online, the default group
(a dynamic default group needs nothing written: :func:`wagtail_clientdb.groups.join_default_group`).
"""

from dataclasses import dataclass, field

from django.db import transaction
from wagtail.log_actions import log

from . import attributes as attribute_rules
from . import audit, groups, matching, overrides, scope
from .consent import record_consent
from .models import ClientDBSettings, Customer, CustomerSource


@dataclass
class ContactDetails:
    """What a person said about themselves in a booking form."""

    first_name: str = ""
    last_name: str = ""
    email: str = ""
    phone: str = ""
    notes: str = ""
    #: ``True``: consent given; ``False``/``None``: not given now (never withdrawn by a booking).
    consent: bool | None = None
    #: Customer attribute values the form asked for (key → stored value).
    attributes: dict = field(default_factory=dict)


@dataclass
class Registration:
    customer: Customer
    #: Whether an existing customer was found (and by which key: "external_id", "email", "phone").
    matched_by: str = ""
    #: The consent this booking gave, to be linked to the booking once it is made.
    consent: object = None


def _matched_key(customer, keys):
    for key in (matching.EXTERNAL_ID, matching.EMAIL, matching.PHONE):
        if getattr(keys, key) and getattr(keys, key) == getattr(customer, key):
            return key
    return ""


@transaction.atomic
def register(viewer, details, *, source, channel, user=None, share_with=None):
    """The customer ``details`` describe, found or created, as a :class:`Registration`.

    ``viewer`` decides who may be found and the scope of someone new (see
    :func:`scope.apply_new_customer_scope`); ``share_with`` shares a new customer created by a
    manager with that branch; online bookings put a new customer in the default group and make
    it global when the company says so. Raises :class:`matching.NoSafeMatch`.
    """
    region = ClientDBSettings.load().default_phone_region
    keys = matching.IdentityKeys.from_input(email=details.email, phone=details.phone, region=region)
    found = matching.find_customer(viewer, keys, lock=True)
    if found is not None:
        consent = _update_from_booking(viewer, found, details, channel, user)
        return Registration(found, _matched_key(found, keys), consent)
    customer = Customer(
        first_name=details.first_name,
        last_name=details.last_name,
        email=details.email,
        phone_raw=details.phone,
        notes=details.notes,
        source=source,
        attributes={key: value for key, value in details.attributes.items() if value is not None},
    )
    scope.apply_new_customer_scope(viewer, customer)
    online = source == CustomerSource.ONLINE_BOOKING
    if online and ClientDBSettings.load().online_customers_are_global:
        customer.home_branch, customer.shared_with_all_branches = None, True
    customer.save(phone_region=region)
    if customer.is_global and not customer.shared_with_all_branches and share_with is not None:
        customer.branches.add(share_with)
    consent = record_consent(customer, True, channel, user, previous=False) if details.consent else None
    if online:
        groups.join_default_group(customer)
    log(customer, "wagtail_clientdb.create_by_booking", user=user, data={"source": source})
    audit.customer_created([customer.pk], source=source)
    return Registration(customer, consent=consent)


def _update_from_booking(viewer, customer, details, channel, user):
    """A returning booker: the attributes the form asked for and they answered, and a consent
    newly given.

    Nothing else of the record changes (a booking is no place to rename someone). A question
    left unanswered says nothing, like an unticked consent box: it keeps what is stored (it
    arrives as ``None``, which would remove the value). Where the customer is global and
    branches keep local values, the answers are the branch's local values; otherwise the
    record's own. Returns the consent given, if any.
    """
    asked = {key: value for key, value in details.attributes.items() if value is not None}
    if asked:
        if scope.edit_mode(viewer, customer) == scope.EditMode.OVERRIDE:
            overrides.save_local_values(customer, viewer.branch, {}, attributes=asked, user=user)
        else:
            merged = attribute_rules.merged(customer.attributes, asked)
            if merged != customer.attributes:
                customer.attributes = merged
                customer.save(update_fields=["attributes"])
    if details.consent and not customer.marketing_consent:
        return record_consent(customer, True, channel, user, previous=False)
    return None
