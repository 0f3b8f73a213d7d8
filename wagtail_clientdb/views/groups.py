from django import forms
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, Q, When
from django.utils.translation import gettext_lazy as _
from wagtail.admin.forms import WagtailAdminModelForm
from wagtail.admin.panels import FieldPanel, ObjectList
from wagtail.admin.ui.tables import Column, NumberColumn
from wagtail.snippets.views.snippets import SnippetViewSet

from .. import groups, scope
from ..models import CustomerGroup, Segment, SegmentVisibility
from .common import YesNoColumn
from .scoping import ScopedViewSetMixin


class CustomerGroupForm(WagtailAdminModelForm):
    """A dynamic group takes a company segment whose rule does not depend on the group itself."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["segment"].queryset = Segment.objects.filter(visibility=SegmentVisibility.COMPANY).order_by("name")

    def clean_segment(self):
        segment = self.cleaned_data.get("segment")
        if segment is not None:
            try:
                groups.check_rule(self.instance, segment)
            except ValidationError as error:
                raise ValidationError(error.messages)
        return segment


def rule_label(group):
    return _("Segment: %(segment)s") % {"segment": group.segment} if group.is_dynamic else _("Chosen by hand")


class CustomerGroupViewSet(ScopedViewSetMixin, SnippetViewSet):
    model = CustomerGroup
    icon = "group"
    menu_label = _("Customer groups")
    menu_order = 200
    copy_view_enabled = False
    list_display = [
        "name",
        Column("segment", label=_("Members"), accessor=rule_label),
        YesNoColumn("is_default", label=_("Default group")),
        NumberColumn("customer_count", label=_("Customers"), sort_key="customer_count"),
    ]
    search_fields = ["name", "description"]
    ordering = ["name"]
    edit_handler = ObjectList(
        [FieldPanel("name"), FieldPanel("description"), FieldPanel("segment", widget=forms.Select), FieldPanel("is_default")],
        base_form_class=CustomerGroupForm,
    )

    def get_queryset(self, request):
        # Groups belong to the company; each viewer counts the members it can see, those of
        # dynamic groups by their rule (a subquery per dynamic group).
        viewer = scope.viewer_for_request(request)
        visible = scope.visible_customers(viewer).values("pk")
        by_hand = Count("customers", filter=Q(customers__in=visible))
        by_rule = [When(pk=group.pk, then=groups.dynamic_member_count(viewer, group)) for group in groups.dynamic_groups()]
        count = Case(*by_rule, default=by_hand) if by_rule else by_hand
        return self.get_scoped_queryset(request).select_related("segment").annotate(customer_count=count)
