"""What a confirmed import changed, recorded as it writes, so that it can be rolled back.

The resource notes each change of an existing customer as it makes it (:func:`note`: the
first value before, the last after); after each batch is saved, :class:`BatchRecorder`
collects the ids of the customers created and the noted changes with each customer's
version after the import, and writes one :class:`~wagtail_clientdb.models.ImportBatchPart`
per chunk, as JSON text. Only customers the import changed cost anything, and only the
values it changed. The batch row is made with the first part, inside the import's
transaction: an import that writes nothing, or is refused as a whole, leaves no batch.
"""

import json

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import F

from ..models import ImportBatch, ImportBatchPart


def note(instance, name, before, after):
    """Remember that the import changes ``name`` of ``instance`` from ``before`` to ``after``.

    One list of tuples per customer: every object made here is one more for Python's garbage
    collector to walk while the chunk lives, which showed in the import's time. A customer
    changed twice by one import (two records meaning the same person) is noted twice; the
    value from before the first change counts (:func:`wagtail_clientdb.import_rollback.read_record`).
    """
    changes = instance.__dict__.get("_import_changes")
    if changes is None:
        instance._import_changes = [(name, before, after)]
    else:
        changes.append((name, before, after))


class BatchRecorder:
    """Collects what one import writes and keeps it as an :class:`ImportBatch`."""

    def __init__(self, *, source, user, branch, job=None):
        self.source, self.user, self.branch, self.job = source, user, branch, job
        self.batch = None
        self.created_count = self.updated_count = 0
        self._created, self._updated, self._local = [], [], []

    def created(self, instances):
        self._created.extend(instance.pk for instance in instances)

    def updated(self, instances):
        """Customers saved by the import: their noted changes, with their version after it."""
        for instance in instances:
            changes = instance.__dict__.pop("_import_changes", None)
            if changes is None:
                continue
            if "_import_override" in instance.__dict__:
                override = instance.__dict__.pop("_import_override")
                self._local.append((instance.pk, local_version(override), local_after(override, changes)))
            else:
                self._updated.append((instance.pk, instance.version, changes))

    def flush(self):
        """Keep what the chunk wrote (one row), and start the next chunk."""
        if not (self._created or self._updated or self._local):
            return
        if self.batch is None:
            self.batch = ImportBatch.objects.create(
                source=self.source, created_by=self.user, branch=self.branch, job=self.job
            )
        ImportBatchPart.objects.create(
            batch=self.batch, created=_json(self._created), updated=_json(self._updated), local=_json(self._local)
        )
        self.created_count += len(self._created)
        self.updated_count += len(self._updated) + len(self._local)
        self._created, self._updated, self._local = [], [], []

    def finish(self):
        """The batch of the import (``None`` when it wrote nothing), with its counts."""
        self.flush()
        if self.batch is not None:
            ImportBatch.objects.filter(pk=self.batch.pk).update(
                created=F("created") + self.created_count, updated=F("updated") + self.updated_count
            )
            self.batch.created, self.batch.updated = self.created_count, self.updated_count
        return self.batch


def local_version(override):
    return override.version if override is not None and override.pk is not None else 0


def local_after(override, changes):
    """The local values as saved (a value equal to the global one is kept as none)."""
    saved = override.attributes if override is not None else {}
    return [
        (name, before, {key: saved.get(key) for key in before})
        if name == "attributes"
        else (name, before, getattr(override, name) if override is not None else None)
        for name, before, _after in changes
    ]


def _json(value):
    return json.dumps(value, cls=DjangoJSONEncoder, separators=(",", ":"), ensure_ascii=False)
