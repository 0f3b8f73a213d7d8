"""Booking and saving appointments, whatever the entry point (admin, booking page, API).

A save that makes an appointment *upcoming* for a customer (a new booking, another
customer, a booking moved from the past, a cancelled one re-booked) takes the customer's
row lock and is refused for customers queued for deletion; see :mod:`wagtail_clientdb.deletion`.

The booking page offers the free times of a branch (opening hours, closed days, the
service's duration, the branch's parallel bookings) and books with the branch's row locked,
so that two people racing for the last place never both get it.

A booking of an archived customer brings the customer back into the lists
(:func:`wagtail_clientdb.archive.restore_by_booking`).
"""

import datetime

from django.core import signing
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from django.utils.translation import gettext as _
from wagtail.log_actions import log

from . import archive, booking_blocks, conf, scope
from .deletion import BookingRefused, lock_customer_for_booking
from .models import Appointment, AppointmentSource, AppointmentStatus, ClientDBSettings, Customer


def _is_upcoming(customer_id, status, start, now):
    return customer_id is not None and status == AppointmentStatus.BOOKED and start is not None and start > now


def makes_new_booking(appointment, now=None):
    """Whether saving ``appointment`` would add an upcoming appointment to its customer."""
    now = now or timezone.now()
    if not _is_upcoming(appointment.customer_id, appointment.status, appointment.start, now):
        return False
    before = Appointment.objects.filter(pk=appointment.pk).values("customer_id", "status", "start").first() if appointment.pk else None
    return before is None or before["customer_id"] != appointment.customer_id or not _is_upcoming(now=now, **before)


def check_branch_sees_customer(appointment):
    """Raise BookingRefused unless the appointment's branch sees its customer (the customer's
    scope takes the branch in): the branch would hold an appointment of a customer it cannot
    open, which the deletion queue, asking the branches that see a customer, would not count.
    An appointment kept with its customer and branch is not asked again."""
    if appointment.customer_id is None or appointment.branch_id is None:
        return
    if appointment.pk is not None:
        before = Appointment.objects.filter(pk=appointment.pk).values_list("customer_id", "branch_id").first()
        if before == (appointment.customer_id, appointment.branch_id):
            return
    in_scope = scope.in_scope_of_branches_q([appointment.branch_id])
    if not Customer.objects.filter(in_scope, pk=appointment.customer_id).exists():
        raise BookingRefused(
            _(
                "%(branch)s does not see this customer: share the customer with the branch first, or book the "
                "appointment in a branch that sees them."
            )
            % {"branch": appointment.branch}
        )


def check_can_book(appointment):
    """Raise BookingRefused early (for a form), without locking."""
    check_branch_sees_customer(appointment)
    if makes_new_booking(appointment):
        with transaction.atomic():
            lock_customer_for_booking(appointment.customer_id)


@transaction.atomic
def save_appointment(appointment):
    """Save an appointment; raises BookingRefused (and saves nothing) if its customer cannot be
    booked: on the way out of the deletion queue, or blocked from online booking.

    A new booking — one still to come, or a new appointment entered afterwards that was not
    cancelled (a walk-in) — brings its customer back from the archive."""
    check_branch_sees_customer(appointment)
    new_booking = makes_new_booking(appointment)
    if new_booking:
        lock_customer_for_booking(appointment.customer_id)
        booking_blocks.check_may_book(appointment)
    comes_again = new_booking or (
        appointment.pk is None and appointment.customer_id is not None and appointment.status != AppointmentStatus.CANCELLED
    )
    appointment.save()
    if comes_again:
        archive.restore_by_booking(appointment)
    return appointment


# --- Free times and online booking -----------------------------------------------------------------


class SlotTaken(ValidationError):
    """The chosen time is no longer free (the branch is full then, or closed)."""


def opening_periods(branch, day):
    """``(start, end)`` of each period ``branch`` is open on ``day``, as aware datetimes in its time zone."""
    return opening_periods_by_day(branch, [day])[day]


def opening_periods_by_day(branch, days):
    """:func:`opening_periods` of each of ``days``, ``{day: periods}``: two queries for any number
    of days (the week view asked two a day)."""
    closed = set(branch.closed_days.filter(date__in=days).values_list("date", flat=True))
    hours_of = {}
    for hours in branch.opening_hours.filter(weekday__in={day.weekday() for day in days}).order_by("opens"):
        hours_of.setdefault(hours.weekday, []).append(hours)
    zone = branch.zoneinfo
    return {
        day: []
        if day in closed
        else [
            (
                datetime.datetime.combine(day, hours.opens, tzinfo=zone),
                datetime.datetime.combine(day, hours.closes, tzinfo=zone),
            )
            for hours in hours_of.get(day.weekday(), [])
        ]
        for day in days
    }


def _booked_between(branch, start, end):
    """``(start, end)`` of the branch's booked appointments that overlap ``start``–``end``."""
    return list(
        Appointment.objects.filter(branch=branch, status=AppointmentStatus.BOOKED, start__lt=end, end__gt=start)
        .order_by()
        .values_list("start", "end")
    )


def _most_at_once(booked, start, end):
    """How many of ``booked`` take place at the same time at most within ``start``–``end``."""
    events = sorted(
        [(max(s, start), 1) for s, e in booked if s < end and e > start]
        + [(min(e, end), -1) for s, e in booked if s < end and e > start]
    )
    most = running = 0
    for _moment, change in events:
        running += change
        most = max(most, running)
    return most


def free_slots(branch, service, day, now=None):
    """The start times the booking page offers for ``service`` on ``day``: within opening hours,
    every ``BOOKING_SLOT_MINUTES``, in the future, and where the branch has a place left."""
    now = now or timezone.now()
    step = datetime.timedelta(minutes=conf.get("BOOKING_SLOT_MINUTES"))
    duration = datetime.timedelta(minutes=service.duration)
    periods = opening_periods(branch, day)
    if not periods:
        return []
    booked = _booked_between(branch, periods[0][0], periods[-1][1])
    slots = []
    for opens, closes in periods:
        start = opens
        while start + duration <= closes:
            if start > now and _most_at_once(booked, start, start + duration) < branch.parallel_bookings:
                slots.append(start)
            start += step
    return slots


def is_within_opening_hours(branch, start, end):
    return any(opens <= start and end <= closes for opens, closes in opening_periods(branch, start.astimezone(branch.zoneinfo).date()))


@transaction.atomic
def book_online(branch, service, start, customer, *, booking_token, attributes=None, notes=""):
    """Book ``service`` at ``start`` in ``branch`` for ``customer`` (the booking page).

    The branch's row is locked while its appointments are counted and the new one saved, so
    two bookings for the last place are decided by the database: the second raises
    :class:`SlotTaken`. A form sent twice (the same ``booking_token``) books once and returns
    the first appointment.
    """
    from .models import Branch

    Branch.objects.select_for_update().filter(pk=branch.pk).first()
    existing = Appointment.objects.filter(booking_token=booking_token).first()
    if existing is not None:
        return existing
    end = service.end_for(start)
    if start <= timezone.now() or not is_within_opening_hours(branch, start, end):
        raise SlotTaken(_("This time cannot be booked. Please choose another one."), code="closed")
    if _most_at_once(_booked_between(branch, start, end), start, end) >= branch.parallel_bookings:
        raise SlotTaken(_("Sorry, this time was just booked by someone else. Please choose another one."), code="full")
    appointment = Appointment(
        customer=customer,
        branch=branch,
        service=service,
        start=start,
        end=end,
        source=AppointmentSource.ONLINE_BOOKING,
        attributes=attributes or {},
        notes=notes,
        booking_token=booking_token,
    )
    return save_appointment(appointment)


# --- Cancelling by the link in the confirmation email ------------------------------------------------

CANCEL_SALT = "wagtail_clientdb.cancel_booking"


def signed_token(value, salt):
    """``value`` signed, in characters a page URL may hold (Wagtail's page paths allow no ``:``)."""
    return urlsafe_base64_encode(signing.dumps(value, salt=salt).encode())


def unsigned_token(token, salt):
    """The value of a :func:`signed_token`; ``None`` for a tampered or broken one."""
    try:
        return signing.loads(urlsafe_base64_decode(token).decode(), salt=salt)
    except (signing.BadSignature, ValueError, UnicodeDecodeError):
        return None


def cancel_token(appointment):
    return signed_token(appointment.pk, CANCEL_SALT)


def appointment_for_cancel_token(token):
    """The appointment a cancel link names; ``None`` for a tampered or unknown link."""
    pk = unsigned_token(token, CANCEL_SALT)
    if pk is None:
        return None
    return Appointment.objects.select_related("branch", "service").filter(pk=pk).first()


def cancellation_deadline(appointment):
    hours = ClientDBSettings.load().online_cancellation_hours
    return appointment.start - datetime.timedelta(hours=hours)


def cancel_refusal(appointment, now=None):
    """Why the customer can no longer cancel ``appointment`` online, or ``None``."""
    if appointment.status != AppointmentStatus.BOOKED:
        return ValidationError(_("This appointment is no longer booked."), code="not_booked")
    if (now or timezone.now()) > cancellation_deadline(appointment):
        return ValidationError(_("This appointment can no longer be cancelled online. Please call the branch."), code="too_late")
    return None


@transaction.atomic
def cancel_by_customer(appointment, now=None):
    """Cancel an online booking from its link; raises ValidationError when it is too late or done."""
    appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
    if refusal := cancel_refusal(appointment, now):
        raise refusal
    appointment.status = AppointmentStatus.CANCELLED
    appointment.save(update_fields=["status", "updated_at"])
    return appointment


# --- Status changes in the admin -----------------------------------------------------------------------


def set_status(appointment, status, now=None, *, record=True):
    """Mark an appointment completed, a no-show, or cancelled; raises ValidationError when it
    cannot be (an appointment still to come cannot have been completed or missed). The change
    is recorded in the appointment's history (``record=False``: the caller records it, as the
    API does "via API")."""
    now = now or timezone.now()
    if status in (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW) and appointment.start > now:
        raise ValidationError(
            _("“%(appointment)s” has not started yet; it can be cancelled, not marked %(status)s.")
            % {"appointment": appointment, "status": AppointmentStatus(status).label},
            code="not_started",
        )
    appointment.status = status
    appointment.save(update_fields=["status", "updated_at"])
    if record:
        log(appointment, "wagtail_clientdb.status", data={"status": status})
    return appointment
