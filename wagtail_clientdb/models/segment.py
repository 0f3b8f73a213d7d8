from django.conf import settings
from django.db import models
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _


class SegmentVisibility(models.TextChoices):
    PRIVATE = "private", _("Only me")
    BRANCH = "branch", _("A branch")
    COMPANY = "company", _("The whole company")


class Segment(models.Model):
    """A saved customer listing: its filters, search and order, as the listing's query string.

    Stored as the query string rather than as fields, so that a segment keeps working with
    every filter of the listing, including filters added later. Whoever looks at a segment
    sees it in their own scope (:mod:`wagtail_clientdb.segments`), never in its creator's.
    """

    name = models.CharField(_("name"), max_length=255)
    query = models.TextField(
        _("filters"),
        blank=True,
        help_text=_("The listing's filters, search and order, as in the listing's address."),
    )
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("saved by"),
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    visibility = models.CharField(
        _("shared with"), max_length=20, choices=SegmentVisibility.choices, default=SegmentVisibility.PRIVATE
    )
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        verbose_name=_("branch"),
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        help_text=_("The branch whose staff see the segment, when it is shared with a branch."),
    )
    created_at = models.DateTimeField(_("created"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("segment")
        verbose_name_plural = _("segments")
        ordering = ["name", "pk"]
        # Reached through the customers' permissions (permissions.SegmentPermissionPolicy).
        default_permissions = ()
        constraints = [
            models.CheckConstraint(
                condition=models.Q(visibility=SegmentVisibility.BRANCH, branch__isnull=False)
                | (~models.Q(visibility=SegmentVisibility.BRANCH) & models.Q(branch__isnull=True)),
                name="clientdb_segment_branch_when_shared_with_a_branch",
            )
        ]

    def __str__(self):
        return self.name

    @property
    def params(self):
        """The saved query string as the listing reads it."""
        return QueryDict(self.query)
