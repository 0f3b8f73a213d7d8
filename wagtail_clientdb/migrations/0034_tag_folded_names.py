"""Customer tag names are compared in any case (:mod:`wagtail_clientdb.tags`).

* Each tag keeps its folded name: NFC, without the spaces and invisible characters around it
  (Unicode's categories Cf and Zs), casefolded.
* Tags whose names differ only in that way ("Regular", "regular", "regular" with a zero-width
  space after it) become one: the oldest (the lowest id) stays, with its spelling (without the
  invisible characters around it); the others' customers carry it instead, and saved segments
  and the queries of export and bulk action jobs that chose the others choose it. Customers
  whose tags changed get a new version, so that a copy kept through the API reads them again.

0035 then makes the folded names unique.
"""

import unicodedata

from django.db import migrations
from django.db.models import F
from django.http import QueryDict
from django.utils import timezone

import wagtail_clientdb.models.customer

BATCH = 1000


def _invisible(char):
    return char.isspace() or unicodedata.category(char) in ("Cf", "Zs")


def clean(name):
    """As :func:`wagtail_clientdb.tags.clean` when this migration was written."""
    text = unicodedata.normalize("NFC", name)
    start, end = 0, len(text)
    while start < end and _invisible(text[start]):
        start += 1
    while end > start and _invisible(text[end - 1]):
        end -= 1
    return text[start:end]


def chosen_instead(query, moved):
    """``query`` (a listing's query string) choosing the kept tags instead of the merged ones;
    ``None`` when it chose none of those."""
    params = QueryDict(query, mutable=True)
    chosen = params.getlist("tags")
    if not any(pk in moved for pk in chosen):
        return None
    params.setlist("tags", list(dict.fromkeys(moved.get(pk, pk) for pk in chosen)))
    return params.urlencode()


def fold_and_merge_tags(apps, schema_editor):
    CustomerTag = apps.get_model("wagtail_clientdb", "CustomerTag")
    TaggedCustomer = apps.get_model("wagtail_clientdb", "TaggedCustomer")
    Customer = apps.get_model("wagtail_clientdb", "Customer")
    tags = CustomerTag._default_manager
    links = TaggedCustomer._default_manager

    kept = {}  # folded name → (pk, name) of the oldest tag
    moved = {}  # pk of a tag merged → pk of the tag kept
    for pk, name in tags.order_by("pk").values_list("pk", "name").iterator():
        folded = clean(name).casefold()
        if folded in kept:
            moved[pk] = kept[folded][0]
        else:
            kept[folded] = (pk, name)

    retagged = set()
    for gone, stays in moved.items():
        their = links.filter(tag_id=gone)
        retagged.update(their.values_list("content_object_id", flat=True))
        # A customer with both keeps the one link.
        their.filter(content_object_id__in=links.filter(tag_id=stays).values("content_object_id")).delete()
        their.update(tag_id=stays)
    if moved:
        as_text = {str(gone): str(stays) for gone, stays in moved.items()}
        for model_name in ("Segment", "ExportJob", "BulkActionJob"):
            model = apps.get_model("wagtail_clientdb", model_name)
            for pk, query in (
                model._default_manager.filter(query__contains="tags=").values_list("pk", "query").iterator()
            ):
                changed = chosen_instead(query, as_text)
                if changed is not None:
                    model._default_manager.filter(pk=pk).update(query=changed)
        tags.filter(pk__in=list(moved)).delete()
        retagged = sorted(retagged)
        for start in range(0, len(retagged), BATCH):
            Customer._default_manager.filter(pk__in=retagged[start : start + BATCH]).update(
                version=F("version") + 1, updated_at=timezone.now()
            )

    renamed = []
    for folded, (pk, name) in kept.items():
        tag = CustomerTag(pk=pk, name=clean(name) or name, folded_name=folded)
        renamed.append(tag)
    tags.bulk_update(renamed, ["name", "folded_name"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [
        ("wagtail_clientdb", "0033_appointment_removals"),
    ]

    operations = [
        migrations.AddField(
            model_name="customertag",
            name="folded_name",
            field=wagtail_clientdb.models.customer.FoldedNameField(
                default="", editable=False, max_length=300, verbose_name="folded name"
            ),
            preserve_default=False,
        ),
        migrations.RunPython(fold_and_merge_tags, migrations.RunPython.noop, elidable=False),
    ]
