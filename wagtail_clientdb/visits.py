"""What the customer listing can filter by besides the record itself: visits, no-shows,
upcoming appointments, birthdays. Conditions on the customers of a queryset, answered by the
database in the listing's own query (a subquery per condition), never by reading customers.

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

from django.db.models import Count, Max, Q
from django.utils import timezone

from .models import Appointment, AppointmentStatus

#: How far ahead "birthday within N days" looks at most: a year.
MAX_BIRTHDAY_DAYS = 366


def counted_appointments(branch):
    """The appointments the conditions look at: of ``branch``, or of every branch (``None``)."""
    appointments = Appointment.objects.filter(customer__isnull=False)
    return appointments if branch is None else appointments.filter(branch=branch)


def visits(branch, now=None):
    return counted_appointments(branch).filter(
        start__lt=now or timezone.now(), status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED]
    )


# Each condition is "the customer is one of those the appointments name", the appointments
# grouped once per query — not a count per customer, which the listing's count would run
# for every customer of the company (ten times slower at 100,000 customers).


def _customers(appointments, **having):
    grouped = appointments.order_by().values("customer_id").annotate(number=Count("pk"), last=Max("start"))
    return grouped.filter(**having).values("customer_id")


def number_of_visits_q(branch, least=None, most=None, now=None):
    """Customers with at least ``least`` and at most ``most`` visits (either may be ``None``)."""
    condition = Q()
    if least is not None and least > 0:
        condition &= Q(pk__in=_customers(visits(branch, now), number__gte=least))
    if most is not None:
        condition &= ~Q(pk__in=_customers(visits(branch, now), number__gt=most))
    return condition


def no_shows_q(branch, least):
    """Customers who missed at least ``least`` (one or more) appointments."""
    return Q(pk__in=_customers(counted_appointments(branch).filter(status=AppointmentStatus.NO_SHOW), number__gte=least))


def last_visit_q(branch, since=None, before=None, now=None):
    """Customers whose last visit was at or after ``since`` and before ``before`` (aware
    datetimes; either may be ``None``)."""
    having = {}
    if since is not None:
        having["last__gte"] = since
    if before is not None:
        having["last__lt"] = before
    return Q(pk__in=_customers(visits(branch, now), **having)) if having else Q()


def upcoming_appointment_q(branch, now=None):
    return Q(pk__in=counted_appointments(branch).upcoming(now).values("customer_id"))


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

