"""Marketing consent is a fact with history: every change is an event with its time, channel,
actor and source document (the import, the booking or the API call), logged in the audit trail.

Only an explicit yes or no changes it: an empty import cell, an API value left out and an
unticked box on a booking form change nothing for an existing customer, and a new customer
starts without consent.
"""

from django.db import transaction

from . import audit, versions
from .models import ClientDBLogEntry, ConsentEvent


def record_consent(customer, given, channel, user=None, *, previous=None, import_job=None, appointment=None, reference=""):
    """Record that ``customer`` gave (or withdrew) consent through ``channel``.

    Saves ``Customer.marketing_consent`` and adds a :class:`ConsentEvent` when the consent
    changes. ``previous`` is the consent before this change, when the caller has already
    written the new value (a model form); by default it is read from the database.
    """
    if previous is None:
        previous = type(customer).objects.filter(pk=customer.pk).values_list("marketing_consent", flat=True).first()
    type(customer).objects.filter(pk=customer.pk).update(marketing_consent=given)
    customer.marketing_consent = given
    if bool(previous) == given:
        return None
    versions.touch([customer.pk])
    event = ConsentEvent.objects.create(
        customer=customer,
        given=given,
        channel=channel,
        recorded_by=user if user and user.is_authenticated else None,
        import_job=import_job,
        appointment=appointment,
        reference=reference[:255],
    )
    event.log_entry = audit.consent_changed(customer, event)
    return event


@transaction.atomic
def link_to_booking(event, appointment):
    """A consent given in a booking form names the booking once it is made."""
    if event is None:
        return
    ConsentEvent.objects.filter(pk=event.pk).update(appointment=appointment)
    event.appointment = appointment
    entry = getattr(event, "log_entry", None)
    if entry is not None:
        ClientDBLogEntry.objects.filter(pk=entry.pk).update(data=audit.consent_source(event))
