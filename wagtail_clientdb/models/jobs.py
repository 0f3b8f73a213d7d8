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
    #: A workbook's sheet that is read (its first visible one) and its other visible sheets, in
    #: tab order: the import's pages name them, for a list that is on another sheet. Blank for CSV.
    sheet_name = models.CharField(_("sheet"), max_length=255, blank=True)
    other_sheets = models.JSONField(_("other sheets"), default=list, blank=True)
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
        return self.file_name

    @property
    def file_name(self):
        """The name the file is downloaded as (and the export's name in the history, in any language)."""
        return f"customers-{times.local(self.created_at, self.branch):%Y-%m-%d}.{self.format}"

    @property
    def is_running(self):
        return self.status == JobStatus.EXPORTING


class ImportBatch(models.Model):
    """One confirmed import — a file (``job``) or an API bulk call — and what it changed,
    so that it can be rolled back (:mod:`wagtail_clientdb.import_rollback`).

    What each chunk of the import wrote is kept in :class:`ImportBatchPart` rows: the ids of
    the customers it created, and for the customers it changed the values before and after
    and their version after the import. They hold personal data and are deleted after
    ``IMPORT_ROLLBACK_DAYS`` (:mod:`wagtail_clientdb.retention`); the batch stays with its
    counts and can no longer be rolled back.
    """

    job = models.OneToOneField(
        ImportJob, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch", verbose_name=_("import")
    )
    #: ``import`` (a file) or ``api`` (a bulk call), as the customers' source says.
    source = models.CharField(_("source"), max_length=20)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("imported by")
    )
    #: The branch the import acted in (its local customers and local values); none for the head office.
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch", null=True, blank=True, on_delete=models.CASCADE, related_name="+", verbose_name=_("branch")
    )
    created_at = models.DateTimeField(_("imported at"), auto_now_add=True, db_index=True)
    created = models.PositiveIntegerField(_("customers created"), default=0)
    updated = models.PositiveIntegerField(_("customers changed"), default=0)
    rolled_back_at = models.DateTimeField(_("rolled back at"), null=True, blank=True)
    #: A large rollback runs as a background task: set while it waits or runs.
    rollback_queued_at = models.DateTimeField(_("rollback started at"), null=True, blank=True)
    #: Why the last background rollback did not happen (nothing was changed).
    rollback_error = models.TextField(_("rollback error"), blank=True)
    rolled_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+", verbose_name=_("rolled back by")
    )
    #: What the rollback did (see :func:`wagtail_clientdb.import_rollback.roll_back`): counts,
    #: and customer ids with reasons, worded when shown.
    rollback_report = models.JSONField(_("rollback report"), default=dict, blank=True)
    #: When the record of what changed was deleted (retention): the batch can no longer be rolled back.
    records_deleted_at = models.DateTimeField(_("record deleted at"), null=True, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("import batch")
        verbose_name_plural = _("import batches")
        ordering = ["-created_at", "-pk"]

    def __str__(self):
        if self.job_id:
            return self.job.original_name
        return _("API bulk import %(number)s") % {"number": self.pk}

    @property
    def is_rolled_back(self):
        return self.rolled_back_at is not None


class ImportBatchPart(models.Model):
    """What one chunk of an import wrote, as JSON text (written once per chunk, read once by a
    rollback: text costs the import less than ``jsonb``, which the database would parse).

    ``created``: ``[id, …]``. ``updated``: ``[[id, version after, [[field, before, after], …]], …]``
    for changes of the customer's record (fields, ``attributes`` (the keys changed; ``null`` for
    a key that was absent), ``tags``, ``groups``, ``branches``, ``home_branch``). ``local``: the
    same for the batch branch's local values, with the local values' version (0: none).
    """

    batch = models.ForeignKey(ImportBatch, on_delete=models.CASCADE, related_name="parts")
    created = models.TextField(default="[]")
    updated = models.TextField(default="[]")
    local = models.TextField(default="[]")

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("import batch part")
        verbose_name_plural = _("import batch parts")

    def __str__(self):
        return f"{self.batch_id}/{self.pk}"


class BulkActionStatus(models.TextChoices):
    QUEUED = "queued", _("Waiting to start")
    RUNNING = "running", _("Changing customers")
    DONE = "done", _("Done")
    FAILED = "failed", _("Stopped by an error")


class BulkActionJob(models.Model):
    """A bulk action on more customers than one request should change
    (``BULK_ACTION_BACKGROUND_CUSTOMERS``): made by a background task a chunk at a time, each
    chunk in its own transaction, with its progress and outcome on its page
    (:func:`wagtail_clientdb.bulk_edits.run_job`)."""

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    #: The branch the action was taken in; none for the head office.
    branch = models.ForeignKey("wagtail_clientdb.Branch", null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    #: The bulk action's type (``archive``, ``add_tags`` …).
    action = models.CharField(_("action"), max_length=40)
    #: The filters, search and order of the listing whose customers were chosen.
    query = models.TextField(_("listing filters"), blank=True)
    #: What the action's form chose, as :class:`wagtail_clientdb.bulk_edits.Change` reads it.
    options = models.JSONField(_("options"), default=dict, blank=True)
    #: When the confirmation page was opened: customers changed after it are left as they are.
    opened_at = models.DateTimeField(_("confirmation page opened at"))
    status = models.CharField(_("status"), max_length=20, choices=BulkActionStatus.choices, default=BulkActionStatus.QUEUED)
    rows_total = models.PositiveIntegerField(_("customers chosen"), default=0)
    rows_done = models.PositiveIntegerField(_("customers done"), default=0)
    #: ``{"done": n, "queued": n, "left": n}``: changed, deletion requests waiting, changed meanwhile.
    counts = models.JSONField(_("counts"), default=dict, blank=True)
    error = models.TextField(_("error"), blank=True)
    created_at = models.DateTimeField(_("started at"), auto_now_add=True)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("customer bulk action")
        verbose_name_plural = _("customer bulk actions")
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.action} ({self.rows_total})"

    @property
    def is_running(self):
        return self.status in (BulkActionStatus.QUEUED, BulkActionStatus.RUNNING)

    @property
    def action_class(self):
        """The customer bulk action this job makes (``None`` for an action no longer registered)."""
        # Admin views are not imported while models load.
        from wagtail.admin.views.bulk_action.registry import bulk_action_registry

        return bulk_action_registry.get_bulk_action_class("wagtail_clientdb", "customer", self.action)
