"""Dates and times in templates, by the one rule of :mod:`wagtail_clientdb.times`.

``where`` is a branch (what happens there: an appointment, opening hours) or left out for the
clock of the view (``clientdb_zone`` in the context, else the admin request's viewer)::

    {% load clientdb_times %}
    {% moment appointment.start appointment.branch %}   10/14/2025 9:30 a.m. · 14.10.2025 09:30
    {% span appointment.start appointment.end branch %} 9:30 a.m.–10:15 a.m. · 09:30–10:15
    {% clock opens branch %}                             9:30 a.m. · 09:30
    {% day customer.birthday %}                          05/01/1990 · 01.05.1990
    {% long_day start branch %}                          Tuesday, Oct. 14, 2025
    {% moment_ago job.created_at %}                      3 hours ago (the moment as its tooltip)
"""

from django import template
from django.utils.html import format_html
from django.utils.text import capfirst

from .. import times

register = template.Library()


def _where(context, where):
    if where is not None:
        return where
    return context.get("clientdb_zone") or context.get("request")


@register.simple_tag(takes_context=True)
def moment(context, value, where=None):
    return times.moment(value, _where(context, where))


@register.simple_tag(takes_context=True)
def clock(context, value, where=None):
    return times.clock(value, _where(context, where))


@register.simple_tag(takes_context=True)
def span(context, start, end, where=None):
    return times.span(start, end, _where(context, where))


@register.simple_tag(takes_context=True)
def day(context, value, where=None):
    return times.day(value, _where(context, where))


@register.simple_tag(takes_context=True)
def long_day(context, value, where=None):
    return times.long_day(value, _where(context, where))


@register.simple_tag(takes_context=True)
def moment_ago(context, value, where=None):
    return moment_ago_html(value, _where(context, where))


def moment_ago_html(value, where):
    """How long ago, as Wagtail's listings say it, with the exact moment on the clock of
    ``where`` as its tooltip (written in Python: listings show it on every row)."""
    if not value:
        return ""
    exact = times.moment(value, where)
    return format_html(
        '<button type="button" class="w-human-readable-date" data-controller="w-tooltip" '
        'data-w-tooltip-content-value="{exact}" data-w-tooltip-placement-value="top" data-clientdb-moment="{exact}">'
        '<time class="w-human-readable-date__date" datetime="{iso}">{ago}</time></button>',
        exact=exact, iso=times.iso(value, where), ago=capfirst(times.ago(value)),
    )
