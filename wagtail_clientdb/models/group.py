from django.db import models
from django.utils.translation import gettext_lazy as _


class CustomerGroup(models.Model):
    """A group of customers: chosen by hand, or *dynamic*, defined by a segment's rule, whose
    members follow the data (:mod:`wagtail_clientdb.groups` reads membership of both kinds)."""

    name = models.CharField(_("name"), max_length=255, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_default = models.BooleanField(
        _("default group"),
        default=False,
        help_text=_("Customers created by an online booking join this group. Only one group can be the default."),
    )
    segment = models.ForeignKey(
        "wagtail_clientdb.Segment",
        verbose_name=_("members defined by segment"),
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="groups",
        help_text=_(
            "Leave empty to choose the members by hand. With a segment the group is dynamic: its members are "
            "the customers the segment finds, always up to date, each person seeing those of their own scope."
        ),
    )

    class Meta:
        verbose_name = _("customer group")
        verbose_name_plural = _("customer groups")
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"],
                condition=models.Q(is_default=True),
                name="clientdb_one_default_group",
                violation_error_message=_(
                    "Another group is already the default group. Untick it there first."
                ),
            )
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        super().save(*args, **kwargs)
        if self.segment_id:
            # The members of a dynamic group follow its rule: none are kept by hand.
            self.customers.through.objects.filter(customergroup=self).delete()

    @property
    def is_dynamic(self):
        return self.segment_id is not None
