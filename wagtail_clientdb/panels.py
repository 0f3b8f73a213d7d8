"""Admin panels for fields that exist only at runtime: the custom attributes.

Attribute fields are added to a form per request (``attr__<key>``), so no panel can name
them in advance. :class:`AttributeFieldsPanel` renders whichever the form has;
:class:`ClientDBTabbedInterface` keeps Wagtail from rendering them a second time as
"missing" fields below the tabs.
"""

from django.utils.safestring import mark_safe
from wagtail.admin.panels import FieldPanel, ObjectList, Panel, TabbedInterface

from .attributes import FIELD_PREFIX


class AttributeFieldsPanel(Panel):
    class BoundPanel(Panel.BoundPanel):
        template_name = "wagtailadmin/panels/multi_field_panel.html"

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.children = []
            if self.form is None:
                return
            for name in self.form.fields:
                if name.startswith(FIELD_PREFIX):
                    panel = FieldPanel(name).bind_to_model(self.panel.model)
                    self.children.append(
                        panel.get_bound_panel(
                            instance=self.instance, request=self.request, form=self.form, prefix=f"{self.prefix}-{name}"
                        )
                    )

        @property
        def visible_children(self):
            return [child for child in self.children if child.is_shown()]

        def is_shown(self):
            return bool(self.visible_children)



class SkipAttributeFieldsMixin:
    """For the top-level panel: attribute fields are rendered by :class:`AttributeFieldsPanel`."""

    def render_missing_fields(self):
        rendered = set(self.panel.get_form_options().get("fields", []))
        missing = [name for name in self.form.fields if name not in rendered and not name.startswith(FIELD_PREFIX)]
        return mark_safe("".join(str(self.form[name]) for name in missing))  # noqa: S308 - rendered form fields


class ClientDBTabbedInterface(TabbedInterface):
    class BoundPanel(SkipAttributeFieldsMixin, TabbedInterface.BoundPanel):
        pass


class ClientDBObjectList(ObjectList):
    class BoundPanel(SkipAttributeFieldsMixin, ObjectList.BoundPanel):
        pass
