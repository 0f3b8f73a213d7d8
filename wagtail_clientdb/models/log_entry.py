from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils.translation import gettext_lazy as _
from wagtail.models.audit_log import BaseLogEntry, ModelLogEntryManager
from wagtail.permissions import policy_registry

def readable_local_values_q(user):
    """The log entries ``user`` may read as to local values: a branch's local values of a
    shared customer are its own, and so is which of them it changed (another branch sees the
    customer and its history without them); the head office reads all."""
    from .. import scope

    viewer = scope.viewer_for_user(user)
    if viewer.is_manager:
        return Q()
    return Q(data__local_branch__isnull=True) | Q(data__local_branch__in=[branch.pk for branch in viewer.branches])


class ClientDBLogEntryManager(ModelLogEntryManager):
    def viewable_by_user(self, user):
        """The entries of objects the user may reach now, by the models' permission policies.

        Wagtail's site history and object history read log entries through this; its generic
        log model checks model permissions only, so another branch's customers, appointments
        and deletion requests (whose names the entries keep) would show. The policies check the
        model permissions too (Wagtail's own check caches its result on the user across log
        models, so it is not used here). Branch staff do not see what another branch changed of
        its local values of a shared customer.
        """
        from ..permissions import ANY_ACTION

        allowed = Q(pk__in=[])
        for model in logged_models():
            policy = policy_registry.get_by_type(model)
            object_ids = (
                policy.instances_user_has_any_permission_for(user, ANY_ACTION)
                .order_by()
                .annotate(id_text=Cast("pk", CharField()))
                .values("id_text")
            )
            allowed |= Q(content_type=ContentType.objects.get_for_model(model), object_id__in=object_ids)
        return self.filter(allowed & readable_local_values_q(user))

    def log_action(self, instance, action, **kwargs):
        from ..audit import acting_branch

        if "branch" not in kwargs:
            kwargs["branch"] = acting_branch(kwargs.get("user"))
        return super().log_action(instance, action, **kwargs)

    def for_instance(self, instance):
        return super().for_instance(instance).order_by("-timestamp", "-id")


class ClientDBLogEntry(BaseLogEntry):
    """Audit log of the app's branch-scoped models, readable only within the branch rules.

    An import writes an entry per customer, 100,000 at once, so every index and database
    constraint is paid for many times over: the entries keep only the indexes histories read,
    and, like Wagtail's own links to the user and the revision, no foreign-key constraints
    (an entry outlives what it names; Django still clears a deleted content type or branch).
    """

    # Wagtail's fields, with the changes above (indexed in Meta).
    content_type = models.ForeignKey(
        ContentType,
        models.SET_NULL,
        verbose_name=BaseLogEntry._meta.get_field("content_type").verbose_name,
        blank=True,
        null=True,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    object_id = models.CharField(max_length=255)
    action = models.CharField(max_length=255, blank=True)
    revision = models.ForeignKey(
        "wagtailcore.Revision",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_index=False,
        db_constraint=False,
        related_name="+",
    )
    content_changed = models.BooleanField(default=False)
    #: The branch the action was taken in (``None``: the head office, or a branch user of several
    #: branches acting outside the admin), for the history's branch filter.
    branch = models.ForeignKey(
        "wagtail_clientdb.Branch",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_constraint=False,
        related_name="+",
        verbose_name=_("branch"),
    )

    objects = ClientDBLogEntryManager()

    class Meta(BaseLogEntry.Meta):
        # No default order (see LogModelsInOrder); histories order explicitly.
        ordering = []
        indexes = [
            *BaseLogEntry.Meta.indexes,
            # An object's history, and the entries of one kind of object.
            models.Index(fields=["content_type", "object_id"], name="clientdb_logentry_object"),
            # Without Django's second index for ``LIKE 'abc%'`` on a text column (PostgreSQL).
            models.Index(fields=["action"], name="clientdb_logentry_action"),
        ]
        verbose_name = _("client DB log entry")
        verbose_name_plural = _("client DB log entries")

    def __str__(self):
        return f"ClientDBLogEntry {self.pk}: {self.action} on {self.object_verbose_name} {self.object_id}"


def logged_models():
    """The models whose log entries are ClientDBLogEntry rows (registered in wagtail_hooks)."""
    from . import Appointment, Branch, Customer, DeletionRequest, ExportJob, ImportJob, Segment

    return (Customer, Appointment, DeletionRequest, Branch, ImportJob, ExportJob, Segment)


class LogModelsInOrder(dict):
    """Wagtail's set of log entry models, iterated in the order they were added.

    Wagtail's site history unions one query per log model, in the order of this collection.
    On Django 6.1 the union takes the default ordering of the first model, and when that
    model's query is empty for the reader (a user without pages, say) PostgreSQL refuses the
    SQL ("multiple ORDER BY clauses not allowed"). The app's log model, which has no default
    ordering, goes first so that the union never has one.
    """

    def add(self, model):
        self.setdefault(model, None)
