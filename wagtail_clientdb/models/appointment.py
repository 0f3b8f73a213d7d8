from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .. import times


class AppointmentStatus(models.TextChoices):
    BOOKED = "booked", _("Booked")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    NO_SHOW = "no_show", _("No-show")


class AppointmentSource(models.TextChoices):
    MANUAL = "manual", _("Entered in the admin")
    ONLINE_BOOKING = "online_booking", _("Online booking")
    IMPORT = "import", _("Import")
    API = "api", _("API")


class AppointmentQuerySet(models.QuerySet):
    def upcoming(self, now=None):
        """Booked and starting in the future: what blocks a customer's deletion."""
        return self.filter(status=AppointmentStatus.BOOKED, start__gt=now or timezone.now())


class Appointment(models.Model):
    customer = models.ForeignKey(
        "wagtail_clientdb.Customer",
        verbose_name=_("customer"),
        # Empty only for past appointments of a deleted customer, kept for the records.
        null=True,
        # Deleting a customer goes through the deletion queue, which detaches the
        # past appointments it keeps; nothing else may delete a customer with bookings.
        on_delete=models.PROTECT,
        related_name="appointments",
    )
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch", verbose_name=_("branch"), on_delete=models.PROTECT, related_name="appointments"
    )
    start = models.DateTimeField(_("start"))
    end = models.DateTimeField(_("end"))
    service = models.ForeignKey(
        "wagtail_clientdb.Service", verbose_name=_("service"), on_delete=models.PROTECT, related_name="appointments"
    )
    staff = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("staff member"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="clientdb_appointments",
    )
    status = models.CharField(
        _("status"), max_length=20, choices=AppointmentStatus.choices, default=AppointmentStatus.BOOKED
    )
    source = models.CharField(
        _("source"), max_length=20, choices=AppointmentSource.choices, default=AppointmentSource.MANUAL
    )
    attributes = models.JSONField(_("attributes"), default=dict, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    #: The booking page's form token: submitting the same form twice books once.
    booking_token = models.CharField(max_length=64, null=True, blank=True, unique=True, editable=False)
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    objects = AppointmentQuerySet.as_manager()

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("appointment")
        verbose_name_plural = _("appointments")
        ordering = ["-start"]
        indexes = [
            models.Index(fields=["customer", "status", "start"], name="clientdb_appt_customer_idx"),
            # The listings: the company's by start, a branch's by start, a customer's history.
            models.Index(fields=["start"], name="clientdb_appt_start_idx"),
            # With the customer and status beside the key (PostgreSQL): a branch's visits by
            # period (the listing's visit filters, wagtail_clientdb.visits) are read from the
            # index alone, not from the table's rows.
            models.Index(
                fields=["branch", "start"], include=["customer", "status"], name="clientdb_appt_branch_covering"
            ),
            models.Index(fields=["customer", "start"], name="clientdb_appt_cust_start_idx"),
            # The company's appointments of one status by start (the API's list): by the start
            # index alone, "booked" walked 1.7 million past appointments first (3.6 s).
            models.Index(fields=["status", "start"], name="clientdb_appt_status_start"),
            # The API's lists of changes (``updated_since``), the company's and a branch's, oldest
            # change first: a range of these instead of a sort of every appointment for each page
            # (the company's first page at two million appointments: 1.4 s).
            models.Index(fields=["updated_at", "id"], name="clientdb_appt_changes"),
            models.Index(fields=["branch", "updated_at", "id"], name="clientdb_appt_branch_changes"),
            # No-shows are few: "missed an appointment" reads them alone.
            models.Index(
                fields=["branch", "customer"],
                condition=Q(status=AppointmentStatus.NO_SHOW),
                name="clientdb_appt_no_show_idx",
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(end__gte=models.F("start")),
                name="clientdb_appointment_ends_after_start",
                violation_error_message=_("The appointment must end after it starts."),
            )
        ]

    def __str__(self):
        return f"{self.service} – {times.moment(self.start, self.branch)}"

    @property
    def is_upcoming(self):
        return self.status == AppointmentStatus.BOOKED and self.start > timezone.now()
