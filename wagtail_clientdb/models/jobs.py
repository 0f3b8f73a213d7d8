from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from .. import times
from ..storage import PrivateFileName, get_private_storage


class JobStatus(models.TextChoices):
    UPLOADED = "uploaded", _("Uploaded")
    PREVIEWING = "previewing", _("Checking")
    PREVIEWED = "previewed", _("Checked")
    IMPORTING = "importing", _("Importing")
    IMPORTED = "imported", _("Imported")
    REFUSED = "refused", _("Refused: nothing imported")
    FAILED = "failed", _("Failed")
    EXPORTING = "exporting", _("Exporting")
    EXPORTED = "exported", _("Ready")


class ImportJob(models.Model):
    """One uploaded customer list on its way in: file, column mapping, preview, result.

    The upload is kept in the app's private storage (:mod:`wagtail_clientdb.storage`), so a
    background worker on another machine can read it, and the progress survives page
    reloads. Files are deleted after the retention period; the job keeps its counts.
    """

    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", verbose_name=_("uploaded by")
    )
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
        verbose_name=_("imported in branch"),
    )
    file = models.FileField(_("file"), upload_to=PrivateFileName("imports"), storage=get_private_storage, blank=True)
    original_name = models.CharField(_("file name"), max_length=255)
    format = models.CharField(_("format"), max_length=10, blank=True)
    encoding = models.CharField(_("encoding"), max_length=20, blank=True)
    delimiter = models.CharField(_("delimiter"), max_length=2, blank=True)
    header_row = models.PositiveIntegerField(_("header row"), null=True, blank=True)
    headers = models.JSONField(_("headers"), default=list)
    targets = models.JSONField(_("column mapping"), default=list)
    all_branches = models.BooleanField(_("share new customers with all branches"), default=False)
    share_branch_ids = models.JSONField(_("share new customers with these branches"), default=list)
    import_valid_rows = models.BooleanField(_("import the valid rows and report the rest"), default=False)
    status = models.CharField(_("status"), max_length=20, choices=JobStatus.choices, default=JobStatus.UPLOADED)
    rows_total = models.PositiveIntegerField(_("rows"), default=0)
    rows_done = models.PositiveIntegerField(_("rows done"), default=0)
    counts = models.JSONField(_("counts"), default=dict)
    samples = models.JSONField(_("examples"), default=dict)
    invalid_rows = models.JSONField(_("invalid rows"), default=list)
    #: New rows of the preview that may be customers already there (``imports.runner.Outcome``):
    #: ``{"count": n, "rows": [{"line", "who", "customer": id, "rules": [...]}, ...]}``.
    possible_duplicates = models.JSONField(_("possible duplicates"), default=dict, blank=True)
    notes = models.JSONField(_("notes"), default=list)
    error = models.TextField(_("error"), blank=True)
    report = models.FileField(
        _("refused rows"), upload_to=PrivateFileName("import-reports"), storage=get_private_storage, blank=True
    )
    created_at = models.DateTimeField(_("uploaded at"), auto_now_add=True)
    #: When the last preview ended: a row that changes a customer changed after it is refused.
    previewed_at = models.DateTimeField(_("checked at"), null=True, blank=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer import")
        verbose_name_plural = _("customer imports")
        ordering = ["-created_at"]

    def __str__(self):
        return self.original_name


class SavedImportMapping(models.Model):
    """The column mapping last chosen for files with a given header row."""

    headers_key = models.CharField(max_length=64, unique=True)
    targets = models.JSONField(default=list)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("saved column mapping")
        verbose_name_plural = _("saved column mappings")

    def __str__(self):
        return self.headers_key


class ExportJob(models.Model):
    """A large export, written by a background task and offered for download."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    branch = models.ForeignKey("wagtail_clientdb.Branch", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    query = models.TextField(_("listing filters"), blank=True)
    format = models.CharField(_("format"), max_length=10)
    status = models.CharField(_("status"), max_length=20, choices=JobStatus.choices, default=JobStatus.EXPORTING)
    rows_total = models.PositiveIntegerField(default=0)
    rows_done = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=PrivateFileName("exports"), storage=get_private_storage, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer export")
        verbose_name_plural = _("customer exports")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.format} {times.moment(self.created_at, self.branch)}"
