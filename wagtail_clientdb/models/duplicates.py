from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class DuplicateRule(models.TextChoices):
    """Why two customers may be the same person (the rules of :mod:`wagtail_clientdb.duplicates`)."""

    EMAIL = "email", _("Same email")
    PHONE = "phone", _("Same phone number")
    NAME_BIRTHDAY = "name_birthday", _("Similar name and same birthday")
    NAME_PHONE = "name_phone", _("Similar name and same end of phone number")


class DuplicatePair(models.Model):
    """Two customers who may be the same person, found by the duplicate scan.

    ``customer_a`` is the one with the lower id, so that a pair is stored once. Why they match
    is kept in :class:`DuplicateReason` rows: found in the records' own values, or only in a
    branch's local values (which only that branch, and the head office, may know of). A pair
    someone marked "not a duplicate" stays dismissed for good: later scans leave it alone.
    """

    customer_a = models.ForeignKey(
        "wagtail_clientdb.Customer", verbose_name=_("customer"), on_delete=models.CASCADE, related_name="+"
    )
    customer_b = models.ForeignKey(
        "wagtail_clientdb.Customer", verbose_name=_("possible duplicate"), on_delete=models.CASCADE, related_name="+"
    )
    #: 1.0 for the same email or phone number, else the highest name similarity found (0–1).
    score = models.FloatField(_("score"), default=0)
    found_at = models.DateTimeField(_("found"), auto_now_add=True, db_index=True)
    dismissed = models.BooleanField(_("not a duplicate"), default=False)
    dismissed_at = models.DateTimeField(_("marked as not a duplicate at"), null=True, blank=True)
    dismissed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("marked as not a duplicate by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("possible duplicate")
        verbose_name_plural = _("possible duplicates")
        ordering = ["-score", "-found_at", "pk"]
        # Reached through the customers' permissions (permissions.DuplicatePairPermissionPolicy).
        default_permissions = ()
        constraints = [
            models.UniqueConstraint(fields=["customer_a", "customer_b"], name="clientdb_unique_duplicate_pair"),
            models.CheckConstraint(
                condition=models.Q(customer_a__lt=models.F("customer_b")), name="clientdb_duplicate_pair_ordered"
            ),
        ]
        indexes = [models.Index(fields=["customer_b"], name="clientdb_duplicate_pair_b")]

    def __str__(self):
        return f"{self.customer_a} / {self.customer_b}"


class DuplicateReason(models.Model):
    """One rule that two customers meet: in the records' own values (``branch`` empty), or
    in the values ``branch`` sees (its local values over the records')."""

    pair = models.ForeignKey(DuplicatePair, on_delete=models.CASCADE, related_name="reasons")
    rule = models.CharField(_("rule"), max_length=20, choices=DuplicateRule.choices)
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("found in the local values of"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    #: The names' similarity for the name rules (0–1).
    similarity = models.FloatField(_("name similarity"), null=True, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("duplicate reason")
        verbose_name_plural = _("duplicate reasons")
        default_permissions = ()

    def __str__(self):
        return self.get_rule_display()
