import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _
from modelcluster.fields import ParentalKey
from modelcluster.models import ClusterableModel
from wagtail.models import Orderable

from .. import times


def timezone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def validate_timezone(value):
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ValidationError(_("“%(value)s” is not a known time zone."), params={"value": value})


def default_timezone():
    return settings.TIME_ZONE or "UTC"


class BranchQuerySet(models.QuerySet):
    def active(self):
        return self.filter(is_active=True)


class Branch(ClusterableModel):
    """A location of the business: a salon, a clinic, a studio.

    Its opening hours, closed days and number of parallel bookings decide the times its
    booking page offers (:mod:`wagtail_clientdb.booking`).
    """

    name = models.CharField(_("name"), max_length=255)
    slug = models.SlugField(
        _("slug"),
        max_length=100,
        unique=True,
        help_text=_("Short unique name used in URLs, imports and the API."),
    )
    site = models.ForeignKey(
        "wagtailcore.Site",
        verbose_name=_("site"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clientdb_branches",
        help_text=_("The web site of this branch, if it has its own."),
    )
    address = models.TextField(_("address"), blank=True)
    timezone = models.CharField(
        _("time zone"),
        max_length=64,
        default=default_timezone,
        choices=timezone_choices,
        validators=[validate_timezone],
    )
    is_active = models.BooleanField(_("active"), default=True)
    parallel_bookings = models.PositiveIntegerField(
        _("bookings at the same time"),
        default=1,
        validators=[MinValueValidator(1)],
        help_text=_("How many appointments can take place at once (chairs, rooms, staff)."),
    )
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        through="BranchMembership",
        related_name="clientdb_branches",
        verbose_name=_("staff"),
        blank=True,
        help_text=_("Users who work in this branch and serve its customers."),
    )

    objects = BranchQuerySet.as_manager()

    class Meta:
        verbose_name = _("branch")
        verbose_name_plural = _("branches")
        ordering = ["name"]

    def __str__(self):
        return self.name

    @property
    def zoneinfo(self):
        return zoneinfo.ZoneInfo(self.timezone)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OpeningHours(Orderable):
    """A branch is open on a weekday from ``opens`` to ``closes`` (several rows: a lunch break)."""

    branch = ParentalKey(Branch, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.IntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    wagtail_reference_index_ignore = True

    class Meta(Orderable.Meta):
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(closes__gt=models.F("opens")),
                name="clientdb_opening_hours_close_after_opening",
                violation_error_message=_("A branch must close after it opens."),
            )
        ]

    def __str__(self):
        return f"{self.get_weekday_display()} {times.span(self.opens, self.closes)}"

    def clean(self):
        if self.opens and self.closes and self.closes <= self.opens:
            raise ValidationError({"closes": _("A branch must close after it opens.")})


class ClosedDay(Orderable):
    """A day the branch is closed although its opening hours say otherwise (a holiday)."""

    branch = ParentalKey(Branch, on_delete=models.CASCADE, related_name="closed_days")
    date = models.DateField(_("date"))
    reason = models.CharField(_("reason"), max_length=255, blank=True)

    wagtail_reference_index_ignore = True

    class Meta(Orderable.Meta):
        verbose_name = _("closed day")
        verbose_name_plural = _("closed days")

    def __str__(self):
        return f"{times.day(self.date)} {self.reason}".strip()


class BranchMembership(models.Model):
    """A user works in a branch and serves its customers."""

    branch = models.ForeignKey(
        Branch, on_delete=models.CASCADE, related_name="memberships", verbose_name=_("branch")
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="clientdb_branch_memberships",
        verbose_name=_("user"),
    )
    created_at = models.DateTimeField(_("member since"), auto_now_add=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("branch membership")
        verbose_name_plural = _("branch memberships")
        constraints = [
            models.UniqueConstraint(fields=["branch", "user"], name="clientdb_unique_branch_member")
        ]

    def __str__(self):
        return f"{self.user} @ {self.branch}"
