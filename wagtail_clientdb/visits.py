"""What the customer listing can filter by besides the record itself: visits, no-shows,
upcoming appointments, birthdays. Conditions on the customers of a queryset, answered by the
database in the listing's one query (a subquery per condition), never by reading customers.

Which appointments count: those of the branch whose values the listing shows — branch staff
their own branch's, the head office every branch's, or one branch's when it chose a
"Location". A branch never learns from a filter that a customer went to another branch,
as its "Bookings here" counts only its own bookings (:mod:`wagtail_clientdb.booking_counts`).

A *visit* is an appointment that has taken place: started before now, and neither
cancelled nor missed (marked completed, or still "booked" — the front desk does not mark
every visit).
"""

import calendar
import datetime

from django.db.models import Count, Exists, IntegerField, OuterRef, Q, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from .models import Appointment, AppointmentStatus

#: How far ahead "birthday within N days" looks at most: a year.
MAX_BIRTHDAY_DAYS = 366


def counted_appointments(branch):
    """The appointments the conditions look at: of ``branch``, or of every branch (``None``)."""
    appointments = Appointment.objects.filter(customer=OuterRef("pk"))
    return appointments if branch is None else appointments.filter(branch=branch)


def visits(branch, now=None):
    return counted_appointments(branch).filter(
        start__lt=now or timezone.now(), status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED]
    )


def _how_many(appointments):
    counted = appointments.order_by().values("customer").annotate(number=Count("pk")).values("number")
    return Coalesce(Subquery(counted, output_field=IntegerField()), Value(0))


def number_of_visits(branch, now=None):
    """An expression: how many visits each customer had."""
    return _how_many(visits(branch, now))


def number_of_no_shows(branch):
    return _how_many(counted_appointments(branch).filter(status=AppointmentStatus.NO_SHOW))


def last_visit_q(branch, since=None, before=None, now=None):
    """Customers whose last visit was at or after ``since`` and before ``before`` (aware
    datetimes; either may be ``None``)."""
    all_visits = visits(branch, now)
    condition = Q()
    if since is not None:
        condition &= Exists(all_visits.filter(start__gte=since))
    if before is not None:
        condition &= Exists(all_visits.filter(start__lt=before)) & ~Exists(all_visits.filter(start__gte=before))
    return condition


def upcoming_appointment_q(branch, now=None):
    return Exists(counted_appointments(branch).upcoming(now))


def birthday_days(today, days):
    """``(month, day)`` of the birthdays from ``today`` to ``days`` days later, across the turn
    of the year. Born on 29 February: celebrated on the 28th in a year without one."""
    found = set()
    for offset in range(min(days, MAX_BIRTHDAY_DAYS) + 1):
        date = today + datetime.timedelta(days=offset)
        found.add((date.month, date.day))
        if (date.month, date.day) == (2, 28) and not calendar.isleap(date.year):
            found.add((2, 29))
    return found


def birthday_q(field, today, days):
    """Customers whose birthday (``field``: a date field or annotation) is within ``days``
    days from ``today``, ``today`` included."""
    by_month = {}
    for month, day in birthday_days(today, days):
        by_month.setdefault(month, []).append(day)
    condition = Q(pk__in=[])
    for month, month_days in sorted(by_month.items()):
        condition |= Q(**{f"{field}__month": month, f"{field}__day__in": sorted(month_days)})
    return condition


def birthday_this_month_q(field, today):
    return Q(**{f"{field}__month": today.month})

