from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DeletionStatus(models.TextChoices):
    PENDING = "pending", _("Pending")
    BLOCKED = "blocked", _("Blocked by upcoming appointments")
    DONE = "done", _("Deleted")
    CANCELLED = "cancelled", _("Cancelled")


class DeletionReason(models.TextChoices):
    """Why a customer is in the queue: a person asked, or a rule of the company did."""

    REQUESTED = "requested", _("Requested")
    IMPORT_ROLLBACK = "import_rollback", _("Import rolled back")
    RETENTION = "retention", _("No appointment for a long time")


class DeletionRequest(models.Model):
    """An entry of the "Customers to delete" queue.

    While open, the customer is hidden from every branch except those in
    ``blocking_branches`` (branches with an upcoming appointment). Once done, the request
    keeps no personal data: only who asked, when, and when it completed.
    """

    customer = models.ForeignKey(
        "wagtail_clientdb.Customer",
        verbose_name=_("customer"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="deletion_requests",
    )
    customer_number = models.PositiveBigIntegerField(
        _("customer number"), help_text=_("The deleted customer's ID, kept without any personal data.")
    )
    status = models.CharField(
        _("status"), max_length=20, choices=DeletionStatus.choices, default=DeletionStatus.PENDING
    )
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("requested by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    reason = models.CharField(
        _("reason"), max_length=20, choices=DeletionReason.choices, default=DeletionReason.REQUESTED
    )
    requested_in_branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("requested in branch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    requested_at = models.DateTimeField(_("requested at"), auto_now_add=True)
    last_attempt_at = models.DateTimeField(_("last attempt"), null=True, blank=True)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)
    blocking_branches = models.ManyToManyField(
        "wagtail_clientdb.Branch",
        blank=True,
        related_name="+",
        verbose_name=_("branches that still see the customer"),
    )
    errors = models.JSONField(_("errors"), default=list, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer to delete")
        verbose_name_plural = _("customers to delete")
        ordering = ["-requested_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["customer"],
                condition=models.Q(status__in=["pending", "blocked"]),
                name="clientdb_one_open_deletion_request",
                violation_error_message=_("This customer is already queued for deletion."),
            )
        ]

    def __str__(self):
        if self.customer_id:
            return str(self.customer)
        return _("Customer #%(number)s (deleted)") % {"number": self.customer_number}

    @property
    def is_open(self):
        return self.status in (DeletionStatus.PENDING, DeletionStatus.BLOCKED)
