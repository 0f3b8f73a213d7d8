from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class ApiIdempotencyKey(models.Model):
    """An API call made with an ``Idempotency-Key``: a retry with the same key and body gets
    the first call's response without the work being done again."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=255)
    request_hash = models.CharField(max_length=64)
    #: ``None`` while the first call is still running.
    status = models.PositiveSmallIntegerField(null=True)
    response = models.JSONField(null=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    wagtail_reference_index_ignore = True

    class Meta:
        verbose_name = _("API idempotency key")
        verbose_name_plural = _("API idempotency keys")
        constraints = [models.UniqueConstraint(fields=["user", "key"], name="clientdb_unique_idempotency_key")]

    def __str__(self):
        return self.key
