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
import contextvars
import datetime
from contextlib import contextmanager

from django.db.models import Count, Exists, Max, OuterRef, Q
from django.utils import timezone

from . import bulk
from .models import Appointment, AppointmentStatus

#: How far ahead "birthday within N days" looks at most: a year.
MAX_BIRTHDAY_DAYS = 366

_only_customers = contextvars.ContextVar("wagtail_clientdb_visits_only_customers", default=None)


@contextmanager
def only_customers(pks):
    """Conditions made in this context look only at the appointments of the customers ``pks``:
    for a question about a few known customers (which of this page's customers are in a
    dynamic group), whose answer is the same for them, and which otherwise groups the
    appointments of every customer (a second at a million customers)."""
    token = _only_customers.set(list(pks))
    try:
        yield
    finally:
        _only_customers.reset(token)


def counted_appointments(branch):
    """The appointments the conditions look at: of ``branch``, or of every branch (``None``)."""
    appointments = Appointment.objects.filter(customer__isnull=False)
    pks = _only_customers.get()
    if pks is not None:
        appointments = appointments.filter(bulk.any_of("customer_id", pks))
    return appointments if branch is None else appointments.filter(branch=branch)


def visits(branch, now=None):
    return counted_appointments(branch).filter(
        start__lt=now or timezone.now(), status__in=[AppointmentStatus.BOOKED, AppointmentStatus.COMPLETED]
    )


# A condition that needs a count is "the customer is one of those the appointments name", the
# appointments grouped once per query — not a count per customer, which the listing's count
# would run for every customer of the company (ten times slower at 100,000 customers). One
# that needs none ("any visit", "no visit since") is an EXISTS: the database joins it either
# way, probing each customer's appointments through their index while a page walks the names,
# or reading the appointments once for a count — and, negated, as an anti-join, where NOT IN
# would hold every customer with a visit in memory (5 s for "never visited" at a million).


def _customers(appointments, **having):
    grouped = appointments.order_by().values("customer_id").annotate(number=Count("*"), last=Max("start"))
    return grouped.filter(**having).values("customer_id")


def _any(appointments):
    """Customers with one of ``appointments`` at least (``~`` for none)."""
    return Q(Exists(appointments.filter(customer_id=OuterRef("pk"))))


def number_of_visits_q(branch, least=None, most=None, now=None):
    """Customers with at least ``least`` and at most ``most`` visits (either may be ``None``)."""
    condition = Q()
    if least == 1:
        condition &= _any(visits(branch, now))
    elif least is not None and least > 0:
        condition &= Q(pk__in=_customers(visits(branch, now), number__gte=least))
    if most == 0:
        condition &= ~_any(visits(branch, now))
    elif most is not None:
        condition &= ~Q(pk__in=_customers(visits(branch, now), number__gt=most))
    return condition


def no_shows_q(branch, least):
    """Customers who missed at least ``least`` (one or more) appointments."""
    missed = counted_appointments(branch).filter(status=AppointmentStatus.NO_SHOW)
    if least == 1:
        return _any(missed)
    return Q(pk__in=_customers(missed, number__gte=least))


def last_visit_q(branch, since=None, before=None, now=None):
    """Customers whose last visit was at or after ``since`` and before ``before`` (aware
    datetimes; either may be ``None``).

    Without grouping: the last visit is at or after ``since`` when any visit is, and before
    ``before`` when there is a visit and none at or after it. So only the visits of the period
    are read, through the index on their start (or each customer's, through theirs), instead of
    every customer's visits grouped for their latest (at a million customers 1–3 s, and a
    maximum the planner cannot estimate: 35 s for a segment that combined it with others)."""
    condition = Q()
    if since is not None:
        condition &= _any(visits(branch, now).filter(start__gte=since))
    if before is not None:
        if since is None or since >= before:
            condition &= _any(visits(branch, now).filter(start__lt=before))
        condition &= ~_any(visits(branch, now).filter(start__gte=before))
    return condition


def upcoming_appointment_q(branch, now=None):
    """Customers with an upcoming appointment (``~`` for none)."""
    return _any(counted_appointments(branch).upcoming(now))


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

