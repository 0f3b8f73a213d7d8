from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _


class CustomerMerge(models.Model):
    """Customers merged into one (the *survivor*), with what it takes to undo it.

    The merged-away customers are deleted by the merge; ``snapshot`` keeps them as they were
    (their fields, groups, tags, local values, which appointments, consent events, deletion
    requests and booking block moved) and what the merge changed on the survivor, before and
    after. Undoing re-creates them with their own ids. The rules are in
    :mod:`wagtail_clientdb.merging`.
    """

    survivor = models.ForeignKey(
        "wagtail_clientdb.Customer",
        verbose_name=_("survivor"),
        null=True,
        blank=True,
        # Empty while the survivor is itself merged into another customer (until that merge
        # is undone); deleting a customer through the deletion queue deletes its merges.
        on_delete=models.SET_NULL,
        related_name="merges",
    )
    survivor_number = models.PositiveBigIntegerField(_("survivor's ID"), db_index=True)
    merged_numbers = models.JSONField(_("IDs of the merged customers"), default=list)
    #: The branch all merged customers were local to (its staff may undo the merge), or empty.
    local_branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("local to branch"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    snapshot = models.JSONField(_("snapshot"), default=dict, encoder=DjangoJSONEncoder)
    merged_at = models.DateTimeField(_("merged at"), default=timezone.now, db_index=True)
    merged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("merged by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    undone_at = models.DateTimeField(_("undone at"), null=True, blank=True)
    undone_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("undone by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer merge")
        verbose_name_plural = _("customer merges")
        ordering = ["-merged_at", "-pk"]

    def __str__(self):
        return f"{self.merged_numbers} → {self.survivor_number}"
