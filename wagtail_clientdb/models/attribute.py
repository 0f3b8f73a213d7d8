from django.core.validators import RegexValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class AttributeTarget(models.TextChoices):
    CUSTOMER = "customer", _("Customers")
    BOOKING = "booking", _("Bookings")


class AttributeType(models.TextChoices):
    TEXT = "text", _("Text (single line)")
    TEXTAREA = "textarea", _("Text (multiple lines)")
    BOOLEAN = "boolean", _("Yes/no")
    INTEGER = "integer", _("Whole number")
    DECIMAL = "decimal", _("Decimal number")
    CHOICE = "choice", _("Choice from a list")
    DATE = "date", _("Date")


key_validator = RegexValidator(
    r"^[a-z][a-z0-9_]*\Z",
    _("Use lower-case letters, digits and underscores, starting with a letter."),
)


class AttributeDefinition(models.Model):
    """A custom field defined by the business, for customers or for bookings."""

    applies_to = models.CharField(
        _("applies to"), max_length=20, choices=AttributeTarget.choices, default=AttributeTarget.CUSTOMER
    )
    label = models.CharField(_("label"), max_length=255)
    key = models.CharField(
        _("key"),
        max_length=64,
        validators=[key_validator],
        help_text=_("Stable name used in imports, exports and the API. Derived from the label when left empty."),
    )
    field_type = models.CharField(_("type"), max_length=20, choices=AttributeType.choices, default=AttributeType.TEXT)
    choices = models.JSONField(_("options"), default=list, blank=True)
    regex = models.CharField(_("regular expression"), max_length=500, blank=True)
    regex_error_message = models.CharField(_("error message for the regular expression"), max_length=255, blank=True)
    help_text = models.CharField(_("help text"), max_length=500, blank=True)
    required = models.BooleanField(_("required in the admin"), default=False)
    show_in_booking_form = models.BooleanField(_("shown in the booking form"), default=False)
    required_in_booking_form = models.BooleanField(_("required in the booking form"), default=False)
    sort_order = models.IntegerField(_("order"), default=0)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("attribute")
        verbose_name_plural = _("attributes")
        ordering = ["applies_to", "sort_order", "label"]
        constraints = [
            models.UniqueConstraint(
                fields=["applies_to", "key"],
                name="clientdb_unique_attribute_key",
                violation_error_message=_("Another attribute of this kind already uses this key."),
            )
        ]

    def __str__(self):
        return self.label
