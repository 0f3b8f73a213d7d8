from django.db import models
from django.utils.translation import gettext_lazy as _


class CustomerGroup(models.Model):
    name = models.CharField(_("name"), max_length=255, unique=True)
    description = models.TextField(_("description"), blank=True)
    is_default = models.BooleanField(
        _("default group"),
        default=False,
        help_text=_("Customers created by an online booking join this group. Only one group can be the default."),
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
