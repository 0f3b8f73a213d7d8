"""Building blocks shared by the app's admin views: the viewer, saves refused inside their
transaction, deletions refused because something still points at the object, buttons
that POST, and dates and times by the rule of :mod:`wagtail_clientdb.times`."""

import datetime
from collections import Counter
from dataclasses import dataclass
from urllib.parse import quote as url_quote

from django.contrib.admin.utils import quote
from django.db import models
from django.db.models import ProtectedError
from django.middleware.csrf import get_token
from django.shortcuts import get_object_or_404, redirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.formats import localize
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.http import RFC3986_SUBDELIMS, url_has_allowed_host_and_scheme
from django.utils.text import capfirst
from django.utils.translation import gettext as _
from wagtail.admin import messages
from wagtail.admin.ui.tables import BooleanColumn, BulkActionsCheckboxColumn, Column, DateColumn
from wagtail.snippets.views import snippets as snippet_views

from .. import audit, markup, scope, times
from ..deletion import BookingRefused
from ..models import Customer
from ..models.log_entry import readable_local_values_q
from ..templatetags.clientdb_times import moment_ago_html
from ..versions import StaleEdit


class ViewerMixin:
    """Gives a view the request's :class:`~wagtail_clientdb.scope.Viewer`."""

    @property
    def viewer(self):
        return scope.viewer_for_request(self.request)

    def dispatch(self, request, *args, **kwargs):
        # What the view logs happened in the branch the user works in now (the branch switcher's).
        branch = self.viewer.branch if request.user.is_authenticated else None
        with audit.acting_in(branch):
            return super().dispatch(request, *args, **kwargs)


class CustomerPageMixin(ViewerMixin):
    """An admin page about one customer (``pk`` in the URL): another branch's customer is not
    found; the breadcrumbs lead back through the listing and the customer's page."""

    #: The last breadcrumb (default: the page title).
    breadcrumb_label = None

    @cached_property
    def customer(self):
        return get_object_or_404(scope.visible_customers(self.viewer), pk=self.kwargs["pk"])

    def inspect_url(self):
        return reverse(Customer.snippet_viewset.get_url_name("inspect"), args=(self.customer.pk,))

    def get_breadcrumbs_items(self):
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": reverse(Customer.snippet_viewset.get_url_name("list")), "label": _("Customers")},
            {"url": self.inspect_url(), "label": str(self.customer)},
            {"url": "", "label": self.breadcrumb_label or self.get_page_title()},
        ]


class ViewerFormMixin(ViewerMixin):
    """Passes the viewer to the form, whose choices and saving depend on it."""

    def get_form_kwargs(self):
        return {**super().get_form_kwargs(), "viewer": self.viewer}


class SaveRefusalMixin:
    """A save refused inside its transaction (a deletion won the booking race, someone else
    saved the customer meanwhile) is shown as a form error; nothing was saved."""

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except BookingRefused as refusal:
            form.add_error("customer", refusal)
        except StaleEdit as stale:
            form.add_error(None, stale)
        self.produced_error_message = self.get_error_message()
        return self.form_invalid(form)


@dataclass
class PostButton:
    label: str
    url: str
    serious: bool = False
    #: A link (GET) to a page that asks before it changes anything, instead of a POST.
    is_link: bool = False


class PostButtonsColumn(Column):
    """Buttons that each POST to a URL (they change things, so no links): ``buttons(instance)``
    gives them, and a ``next`` field brings the user back to the listing they came from."""

    cell_template_name = "wagtail_clientdb/tables/post_buttons_cell.html"

    def __init__(self, name, buttons, **kwargs):
        super().__init__(name, **kwargs)
        self.buttons = buttons

    def get_cell_context_data(self, instance, parent_context):
        context = super().get_cell_context_data(instance, parent_context)
        request = parent_context["request"]
        context.update(
            buttons=self.buttons(instance), csrf_token=get_token(request), next_url=request.get_full_path()
        )
        return context


def cell_html(column, content):
    """A cell as Wagtail's ``cell.html`` writes it."""
    classname = format_html('class="{}"', column.classname) if column.classname else ""
    return format_html("<td {}>\n    {}\n</td>\n", classname, content)


class TextCellMixin:
    """Cells of plain values written as Wagtail's ``cell.html`` writes them, without rendering
    the template: a listing page has up to 200 such cells, and each render cost 40 µs."""

    def render_cell_html(self, instance, parent_context):
        value = self.get_cell_context_data(instance, parent_context)["value"]
        return cell_html(self, "" if value is None else localize(value))


class TextColumn(TextCellMixin, Column):
    pass


class CheckboxColumn(BulkActionsCheckboxColumn):
    """Wagtail's bulk-action checkbox column, its cells written as ``listing_checkbox_cell.html``
    writes them (for objects other than pages)."""

    def render_cell_html(self, instance, parent_context):
        return format_html(
            '<td class="bulk-action-checkbox-cell"><input type="checkbox" data-object-id="{}" data-bulk-action-checkbox '
            'class="bulk-action-checkbox" aria-label="{}" aria-describedby="{}"/></td>\n',
            # Wagtail's own word, translated by its catalog.
            quote(instance.pk), _("Select"), self.get_aria_describedby(instance),
        )


class RowURLsMixin:
    """A listing's row URLs (``reverse(url_name, args=(quote(pk),))``), each URL pattern reversed
    once per page instead of two or three times per row."""

    #: Stands for the object's key in the URL reversed once: digits, which every key converter
    #: takes, and too many of them to be anything else in the URL.
    KEY_MARK = 918273645546372819

    @cached_property
    def row_url_parts(self):
        return {}

    def row_url(self, url_name, instance):
        if url_name not in self.row_url_parts:
            self.row_url_parts[url_name] = reverse(url_name, args=(self.KEY_MARK,)).split(str(self.KEY_MARK))
        before, after = self.row_url_parts[url_name]
        # Written into the URL as reverse() writes an argument.
        return f"{before}{url_quote(str(quote(instance.pk)), safe=RFC3986_SUBDELIMS + '/~:@')}{after}"


class TitleCellMixin:
    """Title cells written as Wagtail's ``title_cell.html`` writes them, the row's buttons
    included (:mod:`wagtail_clientdb.markup`), without rendering a template per cell, dropdown,
    button and icon. ``title_extra_html(instance)`` follows the title."""

    def render_cell_html(self, instance, parent_context):
        context = self.get_cell_context_data(instance, parent_context)
        return markup.title_cell_html(self, context, self.title_extra_html(instance))

    def title_extra_html(self, instance):
        return ""


def with_status_tags(appointments):
    """Set ``status_tag`` on each of ``appointments``: its status tag, rendered once a status. A
    page of hundreds of appointments (a customer's history, a busy week) rendered the template
    for each of them."""
    tags = {}
    appointments = list(appointments)
    for appointment in appointments:
        if appointment.status not in tags:
            tags[appointment.status] = render_to_string(
                "wagtail_clientdb/includes/appointment_status.html", {"appointment": appointment}
            )
        appointment.status_tag = tags[appointment.status]
    return appointments


class MomentColumn(DateColumn):
    """When something happened, as Wagtail's listings say it (how long ago), with the exact
    moment on the right clock as the tooltip. ``zone(instance)`` gives the clock (a branch, a
    time zone); by default the clock of the view (:func:`wagtail_clientdb.times.zone_of`)."""

    def __init__(self, name, zone=None, **kwargs):
        super().__init__(name, **kwargs)
        self.zone = zone

    def render_cell_html(self, instance, parent_context):
        value = self.get_value(instance)
        where = self.zone(instance) if self.zone else parent_context.get("request")
        return cell_html(self, moment_ago_html(value if isinstance(value, datetime.datetime) else None, where))


class LocalTimesInspectMixin(ViewerMixin):
    """An inspect view of Wagtail's that shows dates and datetimes by the app's rule: on the
    clock of the view, in the language's format (Wagtail's shows them on the active time zone,
    in another format)."""

    def get_field_display_value(self, field_name, field):
        value = super().get_field_display_value(field_name, field)
        if value is None and isinstance(field, models.DateField):
            return ""
        if isinstance(value, datetime.datetime):
            return times.moment(value, self.viewer)
        if isinstance(value, datetime.date):
            return times.day(value)
        return value


class LocalTimesHistoryView(snippet_views.HistoryView):
    """An object's history with the time of each entry as :class:`MomentColumn` shows it, and
    without what another branch changed of its local values (as in the history report)."""

    def get_base_queryset(self):
        return super().get_base_queryset().filter(readable_local_values_q(self.request.user))

    @cached_property
    def columns(self):
        return [
            MomentColumn(column.name, label=column.label, width=column.width) if isinstance(column, DateColumn) else column
            for column in super().columns
        ]


class YesNoColumn(BooleanColumn):
    """Wagtail's tick or cross, named "Yes" or "No" in the reader's language (Wagtail's are
    named "True" and "False")."""

    cell_template_name = "wagtail_clientdb/tables/yes_no_cell.html"


class ReadableInspectMixin:
    """An inspect view that names yes/no values "Yes" or "No" in the reader's language and shows
    an empty value as "–" (Wagtail's shows "True", "False" and "None")."""

    def get_field_display_value(self, field_name, field):
        value = super().get_field_display_value(field_name, field)
        if value is None:
            return "–"
        if isinstance(value, bool):
            return _("Yes") if value else _("No")
        return value


def redirect_back(request, fallback):
    """To the ``next`` page a form came from, when it is one of this site's, else ``fallback``."""
    next_url = request.POST.get("next", "")
    if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        return redirect(next_url)
    return redirect(fallback)


def protected_message(error):
    """Why objects could not be deleted: what still points at them, counted by kind."""
    kinds = Counter(str(capfirst(obj._meta.verbose_name_plural)) for obj in error.protected_objects)
    return _("Not deleted: still in use by %(uses)s. Make it inactive instead, or move those first.") % {
        "uses": ", ".join(f"{kind} ({count})" for kind, count in sorted(kinds.items()))
    }


class ProtectedDeletionMixin:
    """Deleting what others still point at (a branch with customers) is refused with a message."""

    def form_valid(self, form):
        try:
            return super().form_valid(form)
        except ProtectedError as error:
            messages.error(self.request, protected_message(error))
            return redirect(self.refused_deletion_url())

    def refused_deletion_url(self):
        return self.request.get_full_path()


class ProtectedDeleteView(ProtectedDeletionMixin, snippet_views.DeleteView):
    pass
