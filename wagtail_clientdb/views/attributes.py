from django.db import transaction
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin.panels import FieldPanel, FieldRowPanel, MultiFieldPanel, ObjectList
from wagtail.admin.ui.tables import Column
from wagtail.snippets.views import snippets as snippet_views

from .. import attributes
from ..forms.attributes import AttributeDefinitionForm
from ..models import AttributeDefinition
from .common import ProtectedDeleteView, YesNoColumn
from .scoping import ScopedViewSetMixin


class AttributeDefinitionDeleteView(ProtectedDeleteView):
    """Deleting a definition deletes its values everywhere; the confirmation says how many."""

    @property
    def confirmation_message(self):
        count = attributes.usage_count(self.object)
        if not count:
            return super().confirmation_message
        return ngettext(
            "Delete this attribute and the value stored for %(count)d record?",
            "Delete this attribute and the values stored for %(count)d records?",
            count,
        ) % {"count": count}

    def delete_action(self):
        with transaction.atomic():
            attributes.remove_values(self.object)
            super().delete_action()


class AttributeDefinitionViewSet(ScopedViewSetMixin, snippet_views.SnippetViewSet):
    model = AttributeDefinition
    icon = "form"
    menu_label = _("Attributes")
    menu_order = 300
    copy_view_enabled = False
    delete_view_class = AttributeDefinitionDeleteView
    list_display = [
        "label",
        Column("key", label=_("Key")),
        Column("applies_to", label=_("Applies to"), accessor="get_applies_to_display"),
        Column("field_type", label=_("Type"), accessor="get_field_type_display"),
        YesNoColumn("required", label=_("Required")),
        YesNoColumn("is_active", label=_("Active")),
    ]
    list_filter = ["applies_to", "field_type", "is_active"]
    search_fields = ["label", "key"]
    ordering = ["applies_to", "sort_order", "label"]
    edit_handler = ObjectList(
        [
            FieldRowPanel([FieldPanel("label"), FieldPanel("key")]),
            FieldRowPanel([FieldPanel("applies_to"), FieldPanel("field_type")]),
            FieldPanel("choices"),
            MultiFieldPanel([FieldPanel("regex"), FieldPanel("regex_error_message")], heading=_("Validation")),
            FieldPanel("help_text"),
            FieldRowPanel([FieldPanel("required"), FieldPanel("show_in_booking_form"), FieldPanel("required_in_booking_form")]),
            FieldRowPanel([FieldPanel("sort_order"), FieldPanel("is_active")]),
        ],
        base_form_class=AttributeDefinitionForm,
    )
