from django import forms
from django.core.exceptions import ValidationError
from django.utils.text import slugify
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from wagtail.admin.forms import WagtailAdminModelForm

from .. import attribute_types, attributes
from ..models import AttributeDefinition, AttributeType
from ..models.attribute import key_validator

TEXT_TYPES = (AttributeType.TEXT, AttributeType.TEXTAREA)


class OptionsField(forms.CharField):
    """The options of a choice attribute, one per line."""

    widget = forms.Textarea(attrs={"rows": 5})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        options = []
        for line in (value or "").splitlines():
            line = line.strip()
            if line and line not in options:
                options.append(line)
        return options


def key_from_label(label):
    key = slugify(label).replace("-", "_")
    return key if key[:1].isalpha() else f"attr_{key}".rstrip("_")


class AttributeDefinitionForm(WagtailAdminModelForm):
    choices = OptionsField(
        label=_("Options"),
        required=False,
        help_text=_("For “choice from a list”: one option per line, in the order they are offered."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.conversion_plan = None
        self.fields["key"].required = False
        self.usage = attributes.usage_count(self.instance) if self.instance.pk else 0
        if self.usage:
            for name in ("key", "applies_to"):
                self.fields[name].disabled = True
                self.fields[name].help_text = ngettext(
                    "Fixed: %(count)d record holds a value of this attribute.",
                    "Fixed: %(count)d records hold values of this attribute.",
                    self.usage,
                ) % {"count": self.usage}

    def clean_regex(self):
        pattern = self.cleaned_data.get("regex", "")
        if pattern:
            attribute_types.check_pattern(pattern)
        return pattern

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("key") and cleaned.get("label") and "key" not in self.errors:
            cleaned["key"] = key_from_label(cleaned["label"])
            try:
                key_validator(cleaned["key"])
            except ValidationError:
                self.add_error("label", _("Please enter a key: no key can be made from this label."))
        field_type = cleaned.get("field_type")
        if field_type == AttributeType.CHOICE and not cleaned.get("choices"):
            self.add_error("choices", _("A choice attribute needs at least one option."))
        if field_type != AttributeType.CHOICE:
            cleaned["choices"] = []
        if cleaned.get("regex") and field_type not in TEXT_TYPES:
            self.add_error("regex", _("Regular expressions apply to text attributes only."))
        if cleaned.get("required_in_booking_form"):
            cleaned["show_in_booking_form"] = True
        if self.usage and not self.errors:
            self._check_changes_in_use(cleaned)
        return cleaned

    def _check_changes_in_use(self, cleaned):
        stored = AttributeDefinition.objects.get(pk=self.instance.pk)
        proposed = AttributeDefinition(
            applies_to=stored.applies_to,
            key=stored.key,
            label=cleaned.get("label") or stored.label,
            field_type=cleaned["field_type"],
            choices=cleaned["choices"],
            regex=cleaned.get("regex", ""),
            regex_error_message=cleaned.get("regex_error_message", ""),
        )
        try:
            if proposed.field_type != stored.field_type:
                self.conversion_plan = attributes.plan_type_change(stored, proposed)
            elif stored.field_type == AttributeType.CHOICE:
                attributes.check_removed_choices(stored, proposed.choices)
        except ValidationError as error:
            field = "field_type" if error.code == "type_in_use" else "choices"
            self.add_error(field, error)

    def save(self, commit=True):
        definition = super().save(commit=commit)
        if self.conversion_plan:
            attributes.apply_plan(definition.key, self.conversion_plan)
        return definition
