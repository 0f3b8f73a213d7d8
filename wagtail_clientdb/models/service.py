import datetime

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _


class ServiceQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)

    def offered_by(self, branch):
        return self.active().filter(branches=branch)


class Service(models.Model):
    """What a customer books: a haircut, a consultation; offered by some branches."""

    name = models.CharField(_("name"), max_length=255, unique=True)
    duration = models.PositiveIntegerField(
        _("duration (minutes)"), default=60, validators=[MinValueValidator(5), MaxValueValidator(24 * 60)]
    )
    is_active = models.BooleanField(_("active"), default=True, help_text=_("Only active services can be booked."))
    branches = models.ManyToManyField(
        "wagtail_clientdb.Branch",
        blank=True,
        related_name="services",
        verbose_name=_("offered by"),
        help_text=_("The branches that offer this service."),
    )

    objects = ServiceQuerySet.as_manager()

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("service")
        verbose_name_plural = _("services")
        ordering = ["name"]

    def __str__(self):
        return self.name

    def end_for(self, start):
        """When an appointment of this service that begins at ``start`` ends: its duration later
        in elapsed time (a datetime's own arithmetic adds to its wall clock, which made a 60-minute
        service last no time in the hour the clocks skip, and two in the hour they repeat)."""
        if start.tzinfo is None:
            return start + datetime.timedelta(minutes=self.duration)
        return (start.astimezone(datetime.UTC) + datetime.timedelta(minutes=self.duration)).astimezone(start.tzinfo)
