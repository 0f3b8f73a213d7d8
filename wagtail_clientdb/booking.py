"""Saving appointments, whatever the entry point (admin, booking page, API).

A save that makes an appointment *upcoming* for a customer (a new booking, another
customer, a booking moved from the past, a cancelled one re-booked) takes the customer's
row lock and is refused for customers queued for deletion; see :mod:`wagtail_clientdb.deletion`.
"""

from django.db import transaction
from django.utils import timezone

from .deletion import lock_customer_for_booking
from .models import Appointment, AppointmentStatus


def _is_upcoming(customer_id, status, start, now):
    return customer_id is not None and status == AppointmentStatus.BOOKED and start is not None and start > now


def makes_new_booking(appointment, now=None):
    """Whether saving ``appointment`` would add an upcoming appointment to its customer."""
    now = now or timezone.now()
    if not _is_upcoming(appointment.customer_id, appointment.status, appointment.start, now):
        return False
    before = Appointment.objects.filter(pk=appointment.pk).values("customer_id", "status", "start").first() if appointment.pk else None
    return before is None or before["customer_id"] != appointment.customer_id or not _is_upcoming(now=now, **before)


def check_can_book(appointment):
    """Raise BookingRefused early (for a form), without locking."""
    if makes_new_booking(appointment):
        with transaction.atomic():
            lock_customer_for_booking(appointment.customer_id)


@transaction.atomic
def save_appointment(appointment):
    """Save an appointment; raises BookingRefused (and saves nothing) if its customer cannot be booked."""
    if makes_new_booking(appointment):
        lock_customer_for_booking(appointment.customer_id)
    appointment.save()
    return appointment
