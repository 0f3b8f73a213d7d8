from django.conf import settings as django_settings
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from wagtail.contrib.settings.models import BaseGenericSetting, register_setting

from ..contact import phone_region_choices


def default_phone_region():
    return getattr(django_settings, "WAGTAIL_CLIENTDB_DEFAULT_PHONE_REGION", "DE")


@register_setting(icon="group")
class ClientDBSettings(BaseGenericSetting):
    """Company-wide switches of the customer database, edited in Settings → Client DB."""

    branches_may_edit_global_customers = models.BooleanField(
        _("branches may edit global customers"),
        default=False,
        help_text=_(
            "When on, branch staff may change customers shared by the head office; what "
            "they change is kept as a local value of their branch only. When off, branch "
            "staff see shared customers read-only."
        ),
    )
    default_phone_region = models.CharField(
        _("default phone region"),
        max_length=2,
        default=default_phone_region,
        choices=phone_region_choices,
        help_text=_("Phone numbers typed without an international prefix are read as numbers of this country."),
    )

    online_customers_are_global = models.BooleanField(
        _("online customers are global"),
        default=False,
        help_text=_(
            "When on, a customer created by an online booking is shared with all branches; when off, "
            "it is a local customer of the branch booked."
        ),
    )
    online_cancellation_hours = models.PositiveIntegerField(
        _("online cancellation until (hours before the start)"),
        default=24,
        help_text=_("Customers can cancel an online booking with the link in their confirmation email until then."),
    )
    anonymise_after_years = models.PositiveSmallIntegerField(
        _("delete customers with no appointment for (years)"),
        null=True,
        blank=True,
        validators=[MinValueValidator(1)],
        help_text=_(
            "When set, customers with no appointment for that many years (and entered at least that long ago) "
            "are deleted through the “Customers to delete” queue; their past appointments are kept without "
            "their name. Empty: customers are kept until someone deletes them."
        ),
    )

    class Meta:
        verbose_name = _("Client DB settings")
        verbose_name_plural = _("Client DB settings")
