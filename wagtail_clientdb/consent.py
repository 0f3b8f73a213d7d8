"""Marketing consent is a fact with history: every change is an event with its channel."""

from . import versions
from .models import ConsentEvent


def record_consent(customer, given, channel, user=None, *, previous=None):
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
    return ConsentEvent.objects.create(
        customer=customer, given=given, channel=channel, recorded_by=user if user and user.is_authenticated else None
    )
