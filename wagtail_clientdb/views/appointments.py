"""Appointments in the admin: the listing of the viewer's branches with status buttons, a week
view of one branch, and the booking form (a known customer, or a new one typed in)."""

import datetime

from django import forms
from django.contrib.admin.utils import quote
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST
from django.views.generic import TemplateView
from wagtail.admin import messages
from wagtail.admin.panels import FieldPanel, FieldRowPanel, HelpPanel, MultiFieldPanel
from wagtail.admin.ui.tables import StatusTagColumn, TitleColumn
from wagtail.admin.utils import get_user_display_name
from wagtail.admin.views.generic import WagtailAdminTemplateMixin
from wagtail.admin.views.generic.permissions import PermissionCheckedMixin
from wagtail.admin.widgets.button import HeaderButton
from wagtail.permissions import policy_registry
from wagtail.snippets.views import snippets as snippet_views

from .. import attribute_types, attributes, booking, overrides, scope, search, times
from ..filters import AppointmentFilterSet, AppointmentPeriod
from ..forms.appointments import STAFF_NAME_FIELDS, AppointmentForm
from ..models import Appointment, AppointmentStatus, AttributeTarget, ClientDBSettings
from ..models.customer import NAME_FIELDS
from ..page_queries import page_view
from ..panels import AttributeFieldsPanel, ClientDBObjectList
from .common import (
    PostButton,
    PostButtonsColumn,
    RowURLsMixin,
    SaveRefusalMixin,
    TextColumn,
    TitleCellMixin,
    ViewerFormMixin,
    ViewerMixin,
    redirect_back,
    with_status_tags,
)
from .scoping import ScopedViewSetMixin

#: The status buttons of a booked appointment, in the order shown.
STATUS_ACTIONS = (AppointmentStatus.COMPLETED, AppointmentStatus.NO_SHOW, AppointmentStatus.CANCELLED)


class AppointmentStatusColumn(StatusTagColumn):
    """A status tag coloured by the status (``static/wagtail_clientdb/css/admin.css``)."""

    cell_template_name = "wagtail_clientdb/tables/appointment_status_cell.html"


def status_buttons(appointment):
    if appointment.status != AppointmentStatus.BOOKED:
        return []
    now = timezone.now()
    return [
        PostButton(
            AppointmentStatus(status).label,
            reverse(Appointment.snippet_viewset.get_url_name("set_status"), args=(appointment.pk, status)),
            serious=status == AppointmentStatus.CANCELLED,
        )
        for status in STATUS_ACTIONS
        if status == AppointmentStatus.CANCELLED or appointment.start <= now
    ]


class AppointmentStartColumn(TitleCellMixin, TitleColumn):
    pass


class AppointmentIndexView(RowURLsMixin, snippet_views.IndexView):
    filterset_class = AppointmentFilterSet

    @cached_property
    def columns(self):
        # The start links to the appointment (its edit page, else its own) and carries the row's
        # buttons, as the first column of Wagtail's listings does.
        checkbox, start, *others = super().columns
        title_class = self._get_title_column_class(AppointmentStartColumn)
        start = title_class(
            start.name,
            label=start.label,
            accessor=start.accessor,
            sort_key=start.sort_key,
            get_url=lambda appointment: self.get_edit_url(appointment) or self.get_inspect_url(appointment),
            get_title_id=lambda appointment: f"snippet_{quote(appointment.pk)}_title",
        )
        return [checkbox, start, *others]

    # Each row's URLs reversed once a page (its link and its buttons ask for them).

    def get_edit_url(self, instance):
        if self.edit_url_name and self.user_has_permission("change"):
            return self.row_url(self.edit_url_name, instance)

    def get_inspect_url(self, instance):
        if self.inspect_url_name and self.user_has_any_permission({"add", "change", "delete", "view"}):
            return self.row_url(self.inspect_url_name, instance)

    def get_delete_url(self, instance):
        if self.delete_url_name and self.user_has_permission("delete"):
            return self.row_url(self.delete_url_name, instance)

    def search_queryset(self, queryset):
        # The customer found as the customer listing finds them (every word, in any order, by
        # the names, email and phone the viewer's branch knows), or the service or the notes.
        if not self.is_searching:
            return queryset
        viewer = scope.viewer_for_request(self.request)
        region = ClientDBSettings.load(request_or_site=self.request).default_phone_region
        customers = overrides.with_effective_values(scope.visible_customers(viewer), viewer.branch).filter(
            search.customer_search_q(self.search_query, region)
        )
        return queryset.filter(
            Q(service__name__icontains=self.search_query)
            | Q(notes__icontains=self.search_query)
            | Q(customer__in=customers.values("pk"))
        )

    def get_table(self, object_list):
        # Each customer by the name the appointment's branch knows (its local values).
        return super().get_table(overrides.customers_as_their_branches_see_them(object_list))

    def get_ordering(self):
        # Today and later reads best from the next appointment on; other periods newest first.
        if "ordering" not in self.request.GET and self.filters and self.filters.is_valid():
            if self.filters.form.cleaned_data.get("period") == AppointmentPeriod.TODAY_AND_LATER:
                return "start"
        return super().get_ordering()

    @cached_property
    def header_buttons(self):
        # Fixed priorities: Wagtail sorts equal priorities by label, which would reorder the
        # buttons with the language.
        buttons = []
        if self.add_url:
            buttons.append(HeaderButton(self.add_item_label, url=self.add_url, icon_name="plus", priority=10))
        buttons.append(
            HeaderButton(
                _("Week view"), url=reverse(Appointment.snippet_viewset.get_url_name("week")), icon_name="calendar", priority=20
            )
        )
        return buttons


class BookingFormMixin(SaveRefusalMixin, ViewerFormMixin):
    def form_valid(self, form):
        response = super().form_valid(form)
        found = form.registration
        if found is not None and found.matched_by:
            # Whole sentences: a noun put into one takes the wrong article in German or French.
            message = {
                "email": _("“%(customer)s” was already a customer (same email address): the appointment is theirs."),
                "phone": _("“%(customer)s” was already a customer (same phone number): the appointment is theirs."),
            }.get(found.matched_by, _("“%(customer)s” was already a customer: the appointment is theirs."))
            messages.info(self.request, message % {"customer": found.customer})
        return response


class AppointmentCreateView(BookingFormMixin, snippet_views.CreateView):
    pass


class AppointmentEditView(BookingFormMixin, snippet_views.EditView):
    pass


class AppointmentInspectView(snippet_views.InspectView):
    def get_fields_context(self):
        appointment = self.object
        branch = appointment.branch
        customer = appointment.customer
        seen_customer = overrides.effective_customer(customer, branch) if customer else None
        fields = [
            {"label": _("Customer"), "value": seen_customer or _("(deleted customer)")},
            {"label": _("Branch"), "value": branch},
            {"label": _("Start"), "value": times.moment(appointment.start, branch)},
            {"label": _("End"), "value": times.moment(appointment.end, branch)},
            {"label": _("Service"), "value": appointment.service},
            {"label": _("Staff member"), "value": get_user_display_name(appointment.staff) if appointment.staff else ""},
            {"label": _("Status"), "value": appointment.get_status_display()},
            {"label": _("Source"), "value": appointment.get_source_display()},
            {"label": _("Notes"), "value": appointment.notes},
        ]
        for definition in attributes.active_definitions(AttributeTarget.BOOKING):
            stored = (appointment.attributes or {}).get(definition.key)
            fields.append({"label": definition.label, "value": attribute_types.display(definition, stored)})
        return [{**field, "component": None} for field in fields]


#: The fields of an appointment the week view reads (its customer as ``name_of`` names it).
WEEK_SHOWS = [
    *("start", "end", "status", "branch", "customer", "service", "staff"),
    *(f"customer__{name}" for name in NAME_FIELDS),
    "service__name",
    *(f"staff__{name}" for name in STAFF_NAME_FIELDS),
]


class WeekView(ViewerMixin, PermissionCheckedMixin, WagtailAdminTemplateMixin, TemplateView):
    """One branch's week: its opening hours and appointments, day by day."""

    model = Appointment
    any_permission_required = ["add", "change", "delete", "view"]
    template_name = "wagtail_clientdb/appointments/week.html"
    page_title = gettext_lazy("Week view")
    header_icon = "calendar"

    @cached_property
    def branches(self):
        return list(scope.visible_branches(self.viewer).order_by("name"))

    @cached_property
    def branch(self):
        chosen = self.request.GET.get("branch")
        default = self.viewer.branch or (self.branches[0] if self.branches else None)
        return next((b for b in self.branches if str(b.pk) == chosen), default)

    @cached_property
    def monday(self):
        try:
            day = datetime.date.fromisoformat(self.request.GET.get("week", ""))
        except ValueError:
            day = times.today(self.branch or self.viewer)
        return day - datetime.timedelta(days=day.weekday())

    def get_breadcrumbs_items(self):
        viewset = Appointment.snippet_viewset
        return [
            {"url": reverse("wagtailadmin_home"), "label": _("Home")},
            {"url": reverse(viewset.get_url_name("list")), "label": _("Appointments")},
            {"url": "", "label": self.get_page_title()},
        ]

    @staticmethod
    def show_on_the_week(appointments, branch):
        """What the week shows of each appointment, made once for what many share: a busy week
        draws hundreds of appointments, and made one by one (a status tag template, a URL, a
        time formatted in the user's language each) they took most of the page's time."""
        edit_url = reverse(Appointment.snippet_viewset.get_url_name("edit"), args=(0,))
        edit_url_before, _zero, edit_url_after = edit_url.rpartition("0")
        span = times.spans_on_the_clock_of(branch)
        deleted_customer = _("(deleted customer)")
        for appointment in with_status_tags(overrides.customers_as_their_branches_see_them(appointments)):
            appointment.edit_url = f"{edit_url_before}{appointment.pk}{edit_url_after}"
            appointment.shown_time = span(appointment.start, appointment.end)
            appointment.shown_customer = appointment.seen_customer or deleted_customer
            appointment.shown_staff = get_user_display_name(appointment.staff) if appointment.staff else ""

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        branch = self.branch
        days = [self.monday + datetime.timedelta(days=i) for i in range(7)]
        week = []
        if branch is not None:
            start = times.start_of_day(days[0], branch)
            appointments = (
                scope.visible_appointments(self.viewer)
                .filter(branch=branch, start__gte=start, start__lt=start + datetime.timedelta(days=7))
                .select_related("customer", "service", "staff")
                # What the week shows of each: not the notes, attributes and the rest of
                # hundreds of customers and appointments.
                .only(*WEEK_SHOWS)
                .order_by("start")
            )
            by_day = {day: [] for day in days}
            for appointment in appointments:
                by_day[times.local(appointment.start, branch).date()].append(appointment)
            self.show_on_the_week(appointments, branch)
            periods = booking.opening_periods_by_day(branch, days)
            for day in days:
                week.append(
                    {
                        "day": day,
                        "weekday": times.weekday(day),
                        "shown_day": times.day(day),
                        "hours": [times.span(opens, closes, branch) for opens, closes in periods[day]],
                        "appointments": by_day[day],
                    }
                )
        list_url = reverse(Appointment.snippet_viewset.get_url_name("week"))
        context.update(
            branch=branch,
            branches=self.branches,
            week=week,
            previous_url=f"{list_url}?branch={branch.pk if branch else ''}&week={days[0] - datetime.timedelta(days=7)}",
            next_url=f"{list_url}?branch={branch.pk if branch else ''}&week={days[0] + datetime.timedelta(days=7)}",
        )
        return context


@require_POST
def set_status(request, pk, status):
    """Mark an appointment completed, a no-show or cancelled (the listing's buttons)."""
    viewset = Appointment.snippet_viewset
    listing = reverse(viewset.get_url_name("list"))
    if status not in STATUS_ACTIONS or not policy_registry.get_by_type(Appointment).user_has_permission(request.user, "change"):
        messages.error(request, _("You cannot change this appointment."))
        return redirect_back(request, listing)
    appointment = get_object_or_404(viewset.get_scoped_queryset(request), pk=pk)
    try:
        booking.set_status(appointment, status)
    except ValidationError as refusal:
        messages.error(request, " ".join(refusal.messages))
    else:
        messages.success(
            request, _("“%(appointment)s”: %(status)s.") % {"appointment": appointment, "status": appointment.get_status_display()}
        )
    return redirect_back(request, listing)


class AppointmentViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = Appointment
    icon = "date"
    menu_label = gettext_lazy("Appointments")
    menu_order = 150
    copy_view_enabled = False
    inspect_view_enabled = True
    index_view_class = AppointmentIndexView
    add_view_class = AppointmentCreateView
    edit_view_class = AppointmentEditView
    inspect_view_class = AppointmentInspectView
    list_display = [
        TextColumn("start", label=gettext_lazy("Start"), accessor=lambda a: times.moment(a.start, a.branch), sort_key="start"),
        TextColumn("customer", label=gettext_lazy("Customer"), accessor=lambda a: a.seen_customer or _("(deleted customer)")),
        TextColumn("service", label=gettext_lazy("Service"), sort_key="service__name"),
        TextColumn("branch", label=gettext_lazy("Branch")),
        TextColumn("staff", label=gettext_lazy("Staff member"), accessor=lambda a: get_user_display_name(a.staff) if a.staff else ""),
        AppointmentStatusColumn("status", label=gettext_lazy("Status"), accessor="get_status_display"),
        PostButtonsColumn("actions", status_buttons, label=gettext_lazy("Change status")),
    ]
    ordering = ["-start"]
    # Gives the listing its search box; what a search finds: AppointmentIndexView.search_queryset.
    search_fields = ["service__name", "notes", "customer"]
    edit_handler = ClientDBObjectList(
        [
            MultiFieldPanel(
                [
                    FieldPanel("customer"),
                    HelpPanel(gettext_lazy("…or a new customer: someone already known by this email or phone is booked instead.")),
                    FieldRowPanel([FieldPanel("new_first_name"), FieldPanel("new_last_name")]),
                    FieldRowPanel([FieldPanel("new_phone"), FieldPanel("new_email")]),
                    FieldPanel("new_consent"),
                    FieldPanel("new_notes"),
                ],
                heading=gettext_lazy("Customer"),
            ),
            # A list of the viewer's own branches: a chooser would need a permission on branches.
            FieldPanel("branch", widget=forms.Select),
            FieldPanel("service", widget=forms.Select),
            FieldRowPanel([FieldPanel("start"), FieldPanel("end")]),
            FieldPanel("staff"),
            FieldPanel("status"),
            FieldPanel("notes"),
            AttributeFieldsPanel(heading=gettext_lazy("Booking attributes")),
        ],
        base_form_class=AppointmentForm,
    )

    def visible(self, viewer):
        return scope.visible_appointments(viewer)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("customer", "branch", "staff", "service")

    def get_urlpatterns(self):
        return super().get_urlpatterns() + [
            path("week/", page_view(WeekView.as_view()), name="week"),
            path("status/<int:pk>/<str:status>/", set_status, name="set_status"),
        ]
