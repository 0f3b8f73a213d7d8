from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class OnlineBookingBlock(models.Model):
    """A person the business does not take online bookings from (the booking page and the API).

    It follows the person, not the record: :mod:`wagtail_clientdb.booking_blocks` matches
    anyone booking online by the identity keys of the blocked customer and of its branches'
    local values. It applies in every branch, unless a manager names the branches it applies to.
    Bookings made by staff in the admin are not affected.
    """

    customer = models.OneToOneField(
        "wagtail_clientdb.Customer",
        verbose_name=_("customer"),
        on_delete=models.CASCADE,
        related_name="online_booking_block",
    )
    reason = models.TextField(_("reason"), help_text=_("For your colleagues; never shown to the customer."))
    branches = models.ManyToManyField(
        "wagtail_clientdb.Branch",
        verbose_name=_("only in these branches"),
        blank=True,
        related_name="+",
        help_text=_("Leave empty to block online booking in every branch."),
    )
    created_at = models.DateTimeField(_("blocked at"), auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("blocked by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    class Meta:
        verbose_name = _("online booking block")
        verbose_name_plural = _("online booking blocks")

    def __str__(self):
        return str(self.customer)
