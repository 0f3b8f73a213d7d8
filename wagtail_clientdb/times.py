"""Every date and time the app shows a person: by which clock, in which format.

Which clock
    * What happens at a branch (an appointment, the branch's opening hours, the free times of
      its booking page) by *that branch's* clock, wherever it is shown: the head office sees a
      Vienna appointment at the time the Vienna salon and its customer know.
    * Everything else (when a customer was created, a consent recorded, an import uploaded, a
      deletion tried, a log entry written) by the clock of the view: the *current branch's* in
      a branch view (branch staff; a manager's customer listing seen as one branch), the
      *company's* in company-wide views.
    * The company's clock is Django's ``TIME_ZONE``, which every new branch starts with.
      Wagtail's personal time zone preference is not used for the app's data: the head office
      and the branches read the same times.

Which format: Django's localized formats of the active language (in the admin, the user's
Wagtail language; on the booking page, the page's)
    * a moment: ``SHORT_DATETIME_FORMAT``: "10/14/2025 9:30 a.m.", "14.10.2025 09:30"
      (:func:`moment`);
    * a time under a day already shown (today's appointments, a day of the week view, the free
      times of a day): ``TIME_FORMAT``: "9:30 a.m.", "09:30" (:func:`clock`, :func:`span`);
    * a date without a time (birthdays, date attributes, the days of the week view):
      ``SHORT_DATE_FORMAT``: "05/01/1990", "01.05.1990" (:func:`day`);
    * pages and emails for customers (the booking page, its confirmation) write the day out:
      the weekday and ``DATE_FORMAT``: "Tuesday, Oct. 14, 2025", "Dienstag, 14. Oktober 2025"
      (:func:`long_day`);
    * listings say when something happened as Wagtail's own listings do (its ``DateColumn``):
      how long ago, with the exact moment as above as its tooltip (:func:`ago`,
      ``views.common.MomentColumn``, the ``moment_ago`` tag).

Machines get ISO 8601 with the offset (the API, the ``datetime`` of ``<time>``), exports the
creation time as sortable text on the clock of the view that exported.

Templates use the tags of ``{% load clientdb_times %}``, never Django's ``date`` and ``time``
filters: those convert every datetime to the *active* time zone first, whichever clock it was
meant for, and ``localize`` shows a stored datetime in UTC.
"""

import datetime

from django.forms.utils import from_current_timezone
from django.utils import formats, timezone
from django.utils.translation import gettext

MOMENT = "SHORT_DATETIME_FORMAT"
CLOCK = "TIME_FORMAT"
DAY = "SHORT_DATE_FORMAT"
LONG_DAY = "DATE_FORMAT"


def company_zone():
    """The company's clock: Django's ``TIME_ZONE``."""
    return timezone.get_default_timezone()


def zone_of(where=None):
    """The clock of ``where``: a branch, a :class:`~wagtail_clientdb.scope.Viewer` (its branch
    in a branch view, else the company), an admin request (its viewer), a time zone, or
    ``None`` (the company)."""
    if where is None:
        return company_zone()
    if isinstance(where, datetime.tzinfo):
        return where
    branch_zone = getattr(where, "zoneinfo", None)
    if branch_zone is not None:
        return branch_zone
    if hasattr(where, "is_manager") and hasattr(where, "branches"):
        return zone_of(where.branch)
    if hasattr(where, "META") and hasattr(where, "user"):
        from .scope import viewer_for_request

        return zone_of(viewer_for_request(where))
    raise TypeError(f"No clock for {where!r}")


def local(value, where=None):
    """``value`` (an aware datetime) on the clock of ``where``."""
    return timezone.localtime(value, zone_of(where))


def moment(value, where=None):
    """A date and time: "10/14/2025 9:30 a.m.", "14.10.2025 09:30"; "" for none."""
    if value is None:
        return ""
    return formats.date_format(local(value, where), MOMENT)


def clock(value, where=None):
    """The time of day of a datetime (or a ``time``): "9:30 a.m.", "09:30"."""
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        value = local(value, where)
    return formats.time_format(value, CLOCK)


def span(start, end, where=None):
    """From–to on one day: "9:30 a.m.–10:15 a.m.", "09:30–10:15"."""
    return f"{clock(start, where)}–{clock(end, where)}"


def spans_on_the_clock_of(where=None):
    """:func:`span` for many datetimes on the clock of ``where``, each time of day formatted
    once: a busy week shows hundreds of appointments at a few dozen times of day, and
    formatting took a sixth of the week view's time."""
    zone = zone_of(where)
    shown = {}

    def shown_clock(value):
        value = timezone.localtime(value, zone)
        # The time of day and the zone's name and offset are all a time format can show.
        key = (value.time(), value.tzname(), value.utcoffset())
        if key not in shown:
            shown[key] = clock(value, zone)
        return shown[key]

    return lambda start, end: f"{shown_clock(start)}–{shown_clock(end)}"


def day(value, where=None):
    """A date (or the day of a datetime on the clock of ``where``): "05/01/1990", "01.05.1990"."""
    if value in (None, ""):
        return ""
    if isinstance(value, datetime.datetime):
        value = local(value, where).date()
    return formats.date_format(value, DAY)


def weekday(value, where=None):
    """The day of the week: "Tuesday", "Dienstag"."""
    if isinstance(value, datetime.datetime):
        value = local(value, where).date()
    return formats.date_format(value, "l")


def long_day(value, where=None):
    """The day written out, for customers: "Tuesday, Oct. 14, 2025", "Dienstag, 14. Oktober 2025"."""
    if isinstance(value, datetime.datetime):
        value = local(value, where).date()
    return f"{weekday(value)}, {formats.date_format(value, LONG_DAY)}"


def iso(value, where=None):
    """ISO 8601 with the offset of ``where``'s clock (for machines: ``<time datetime>``)."""
    return local(value, where).isoformat()


def ago(value):
    """How long ago, as Wagtail's listings say it: "3 hours ago", "vor 3 Stunden"."""
    from wagtail.admin.templatetags.wagtailadmin_tags import timesince_simple

    return timesince_simple(value)


def today(where=None):
    """Today on the clock of ``where``."""
    return timezone.localdate(timezone.now(), zone_of(where))


def start_of_day(value, where=None):
    """Midnight at the start of the date ``value`` on the clock of ``where``."""
    return datetime.datetime.combine(value, datetime.time.min, tzinfo=zone_of(where))


def aware(value, where=None):
    """A datetime given without an offset, read on the clock of ``where`` (one with an
    offset is kept as given)."""
    if value is not None and timezone.is_naive(value):
        return timezone.make_aware(value, zone_of(where))
    return value


def one_moment(value, where=None):
    """As :func:`aware`, for a time someone sets (an appointment's start): a wall-clock time
    the clock of ``where`` skips (02:30 when the clocks go forward) or shows twice (when they go
    back) is refused, as the admin's forms refuse it, not moved to a moment nobody meant."""
    if value is None or not timezone.is_naive(value):
        return value
    with timezone.override(zone_of(where)):
        return from_current_timezone(value)


def naive(value, where=None):
    """An aware datetime as the wall-clock time of ``where`` without the zone: what a form
    field shows, so that it shows that clock and not the active time zone."""
    if value is None or timezone.is_naive(value):
        return value
    return local(value, where).replace(tzinfo=None)


#: The years a moment someone gives may fall in: the database keeps no earlier or later one (the
#: end of a 9999-12-31 appointment does not fit), and a booking beyond them is a typing error.
YEARS = (1900, 2999)


def outside_the_years(value):
    """The message refusing ``value`` (a datetime given in a form or the API) outside
    :data:`YEARS`, or ``None`` when it is within them."""
    if YEARS[0] <= value.year <= YEARS[1]:
        return None
    return gettext("Give a time between the years %(first)s and %(last)s.") % {"first": YEARS[0], "last": YEARS[1]}


def moved_into_the_years(value):
    """A filter's bound before or after :data:`YEARS`: "from the beginning" or "to the end"."""
    if value.year < YEARS[0]:
        return datetime.datetime(YEARS[0], 1, 1, tzinfo=value.tzinfo)
    if value.year > YEARS[1]:
        return datetime.datetime(YEARS[1], 12, 31, 23, 59, 59, tzinfo=value.tzinfo)
    return value
