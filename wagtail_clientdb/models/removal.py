from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class RemovalReason(models.TextChoices):
    DELETED = "deleted", _("Deleted")
    MERGED = "merged", _("Merged into another customer")
    UNSHARED = "unshared", _("No longer shared with the branch")
    DELETION_QUEUED = "deletion_queued", _("Queued for deletion")


class CustomerRemoval(models.Model):
    """A customer gone from a branch's view: deleted, merged into another, no longer shared
    with the branch, or queued for deletion (kept only by branches with an upcoming appointment). What a sync by ``updated_since`` cannot learn from the customers it lists
    (they are not there any more), told by the API's ``customers/removed/``.

    Keeps no personal data: the customer's number, why and when. A deletion or merge writes
    the company's entry (``branch`` empty), which says whether every branch saw the customer,
    and one entry per branch that saw it otherwise; a narrower sharing or a deletion request,
    one per branch that lost it.
    """

    customer_number = models.PositiveBigIntegerField(_("customer number"))
    reason = models.CharField(_("reason"), max_length=20, choices=RemovalReason.choices)
    merged_into = models.PositiveBigIntegerField(_("merged into"), null=True, blank=True)
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch", verbose_name=_("branch"), null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    shared_with_all_branches = models.BooleanField(_("shared with all branches"), default=False)
    removed_at = models.DateTimeField(_("removed at"), default=timezone.now)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("removed customer")
        verbose_name_plural = _("removed customers")
        indexes = [models.Index(fields=["removed_at", "customer_number"], name="clientdb_removal_time")]

    def __str__(self):
        return f"#{self.customer_number} ({self.get_reason_display()})"


class AppointmentRemovalReason(models.TextChoices):
    DELETED = "deleted", _("Deleted")
    MOVED = "moved", _("Moved to another branch")


class AppointmentRemoval(models.Model):
    """An appointment gone from a branch's list: deleted, or moved to another branch. What a
    sync of the branch's appointments by ``updated_since`` cannot learn from the appointments it
    lists, told by the API's ``appointments/removed/``. Keeps the appointment's number, the
    branch that lost it, why and when; nothing of the customer."""

    appointment_number = models.PositiveBigIntegerField(_("appointment number"))
    reason = models.CharField(_("reason"), max_length=20, choices=AppointmentRemovalReason.choices)
    # Appointments keep their branch (PROTECT): a branch with entries has none left to lose.
    branch = models.ForeignKey("wagtail_clientdb.Branch", verbose_name=_("branch"), on_delete=models.CASCADE, related_name="+")
    removed_at = models.DateTimeField(_("removed at"), default=timezone.now)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("removed appointment")
        verbose_name_plural = _("removed appointments")
        indexes = [models.Index(fields=["removed_at", "appointment_number"], name="clientdb_appt_removal_time")]

    def __str__(self):
        return f"#{self.appointment_number} ({self.get_reason_display()})"
