from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, FieldRowPanel
from wagtail.admin.ui.tables import Column, StatusTagColumn
from wagtail.snippets.views import snippets as snippet_views

from .. import attribute_types, attributes, scope
from ..filters import AppointmentFilterSet
from ..forms.appointments import AppointmentForm
from ..models import Appointment, AttributeTarget
from ..panels import AttributeFieldsPanel, ClientDBObjectList
from .scoping import SaveRefusalMixin, ScopedViewSetMixin, ViewerFormMixin


def local_start(appointment):
    return timezone.localtime(appointment.start, appointment.branch.zoneinfo).strftime("%Y-%m-%d %H:%M")


class AppointmentIndexView(snippet_views.IndexView):
    filterset_class = AppointmentFilterSet


class AppointmentCreateView(SaveRefusalMixin, ViewerFormMixin, snippet_views.CreateView):
    pass


class AppointmentEditView(SaveRefusalMixin, ViewerFormMixin, snippet_views.EditView):
    pass


class AppointmentInspectView(snippet_views.InspectView):
    def get_fields_context(self):
        appointment = self.object
        fields = [
            {"label": _("Customer"), "value": appointment.customer or _("(deleted customer)")},
            {"label": _("Branch"), "value": appointment.branch},
            {"label": _("Start"), "value": local_start(appointment)},
            {"label": _("End"), "value": timezone.localtime(appointment.end, appointment.branch.zoneinfo).strftime("%Y-%m-%d %H:%M")},
            {"label": _("Service"), "value": appointment.service},
            {"label": _("Staff member"), "value": appointment.staff or ""},
            {"label": _("Status"), "value": appointment.get_status_display()},
            {"label": _("Source"), "value": appointment.get_source_display()},
            {"label": _("Notes"), "value": appointment.notes},
        ]
        for definition in attributes.active_definitions(AttributeTarget.BOOKING):
            stored = (appointment.attributes or {}).get(definition.key)
            fields.append({"label": definition.label, "value": attribute_types.display(definition, stored)})
        return [{**field, "component": None} for field in fields]


class AppointmentViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = Appointment
    icon = "date"
    menu_label = _("Appointments")
    menu_order = 150
    copy_view_enabled = False
    inspect_view_enabled = True
    index_view_class = AppointmentIndexView
    add_view_class = AppointmentCreateView
    edit_view_class = AppointmentEditView
    inspect_view_class = AppointmentInspectView
    list_display = [
        Column("start", label=_("Start"), accessor=local_start, sort_key="start"),
        Column("customer", label=_("Customer"), accessor=lambda a: a.customer or _("(deleted customer)")),
        Column("service", label=_("Service"), sort_key="service"),
        Column("branch", label=_("Branch")),
        Column("staff", label=_("Staff member")),
        StatusTagColumn("status", label=_("Status"), accessor="get_status_display"),
    ]
    ordering = ["-start"]
    search_fields = ["service", "notes", "customer__first_name", "customer__last_name"]
    edit_handler = ClientDBObjectList(
        [
            FieldPanel("customer"),
            # A list of the viewer's own branches: a chooser would need a permission on branches.
            FieldPanel("branch", widget=forms.Select),
            FieldRowPanel([FieldPanel("start"), FieldPanel("end")]),
            FieldPanel("service"),
            FieldPanel("staff"),
            FieldPanel("status"),
            FieldPanel("notes"),
            AttributeFieldsPanel(heading=_("Booking attributes")),
        ],
        base_form_class=AppointmentForm,
    )

    def visible(self, viewer):
        return scope.visible_appointments(viewer)

    def get_queryset(self, request):
        return self.get_scoped_queryset(request).select_related("customer", "branch", "staff")
