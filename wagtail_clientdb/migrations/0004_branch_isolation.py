"""Branch isolation below the views (issue 10).

* Customer tags move from taggit's global ``Tag`` (suggested to every admin user's tag
  fields) to ``CustomerTag``, keeping their ids; global tags left unused are removed.
* Log entries of the branch-scoped models move to ``ClientDBLogEntry``, read within the
  branch rules.
* Job files move from the default (media) storage to the private storage, under new names.
* Wagtail's reference index forgets the app's models.
* Customers and local values get a version (no lost updates).
"""

import django.core.serializers.json
import django.db.models.deletion
import django.db.models.manager
import taggit.managers
import wagtail_clientdb.storage
from django.conf import settings
from django.core.management.color import no_style
from django.db import migrations, models
from django.db.models import Q

LOGGED_MODELS = ["customer", "appointment", "deletionrequest", "branch"]
LOG_FIELDS = [
    "content_type_id", "label", "action", "data", "timestamp", "uuid", "user_id", "revision_id",
    "content_changed", "deleted", "object_id",
]
JOB_FILES = [("ImportJob", "file", "imports"), ("ImportJob", "report", "import-reports"), ("ExportJob", "file", "exports")]


def copy_customer_tags(apps, schema_editor):
    Tag = apps.get_model("taggit", "Tag")
    CustomerTag = apps.get_model("wagtail_clientdb", "CustomerTag")
    TaggedCustomer = apps.get_model("wagtail_clientdb", "TaggedCustomer")
    used = Tag.objects.filter(pk__in=TaggedCustomer.objects.values("tag_id"))
    CustomerTag._default_manager.bulk_create(
        (CustomerTag(pk=tag.pk, name=tag.name, slug=tag.slug) for tag in used.iterator()), batch_size=1000
    )
    _reset_sequence(schema_editor.connection, CustomerTag)


def copy_customer_tags_back(apps, schema_editor):
    Tag = apps.get_model("taggit", "Tag")
    CustomerTag = apps.get_model("wagtail_clientdb", "CustomerTag")
    existing = set(Tag.objects.values_list("pk", flat=True))
    Tag.objects.bulk_create(
        (Tag(pk=tag.pk, name=tag.name, slug=tag.slug) for tag in CustomerTag._default_manager.iterator() if tag.pk not in existing),
        batch_size=1000,
        ignore_conflicts=True,
    )
    _reset_sequence(schema_editor.connection, Tag)


def _reset_sequence(connection, model):
    with connection.cursor() as cursor:
        for sql in connection.ops.sequence_reset_sql(no_style(), [model]):
            cursor.execute(sql)


def forget_moved_global_tags(apps, schema_editor):
    """Remove the moved tags from taggit's table where nothing else uses them.

    Tables of other apps may point at taggit's tags; they are found in the database as the
    project's models describe them now, so that no tag still in use is removed.
    """
    from django.apps import apps as project_apps

    connection = schema_editor.connection
    tables = set(connection.introspection.table_names())
    Tag = project_apps.get_model("taggit", "Tag")
    moved = list(apps.get_model("wagtail_clientdb", "CustomerTag")._default_manager.values_list("pk", flat=True))
    quote = connection.ops.quote_name
    unused = " ".join(
        f"AND NOT EXISTS (SELECT 1 FROM {quote(rel.related_model._meta.db_table)} AS r "
        f"WHERE r.{quote(rel.field.column)} = {quote(Tag._meta.db_table)}.{quote(Tag._meta.pk.column)})"
        for rel in Tag._meta.related_objects
        if isinstance(rel.field, models.ForeignKey)
        and rel.related_model._meta.db_table in tables
        and rel.related_model._meta.app_label != "wagtail_clientdb"
    )
    with connection.cursor() as cursor:
        for start in range(0, len(moved), 500):
            batch = moved[start : start + 500]
            cursor.execute(
                f"DELETE FROM {quote(Tag._meta.db_table)} WHERE {quote(Tag._meta.pk.column)} IN "
                f"({', '.join(['%s'] * len(batch))}) {unused}",
                batch,
            )


def _move_log_entries(apps, source, target):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ours = ContentType.objects.filter(app_label="wagtail_clientdb", model__in=LOGGED_MODELS)
    From = apps.get_model(*source)
    To = apps.get_model(*target)
    entries = From.objects.filter(content_type__in=ours)
    To.objects.bulk_create(
        (To(**{name: getattr(entry, name) for name in LOG_FIELDS}) for entry in entries.iterator()), batch_size=1000
    )
    entries.delete()


def move_log_entries(apps, schema_editor):
    _move_log_entries(apps, ("wagtailcore", "ModelLogEntry"), ("wagtail_clientdb", "ClientDBLogEntry"))


def move_log_entries_back(apps, schema_editor):
    _move_log_entries(apps, ("wagtail_clientdb", "ClientDBLogEntry"), ("wagtailcore", "ModelLogEntry"))


def move_job_files(apps, schema_editor):
    """Files saved by earlier versions in the media storage move to the private storage."""
    from django.core.files.storage import default_storage

    from wagtail_clientdb.storage import PrivateFileName, private_storage

    for model_name, field_name, folder in JOB_FILES:
        Job = apps.get_model("wagtail_clientdb", model_name)
        for job in Job.objects.exclude(**{field_name: ""}).iterator():
            old = getattr(job, field_name).name
            new = ""
            if default_storage.exists(old):
                with default_storage.open(old, "rb") as content:
                    new = private_storage.save(PrivateFileName(folder)(job, old), content)
                default_storage.delete(old)
            Job.objects.filter(pk=job.pk).update(**{field_name: new})


def forget_references(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ReferenceIndex = apps.get_model("wagtailcore", "ReferenceIndex")
    ours = ContentType.objects.filter(app_label="wagtail_clientdb")
    ReferenceIndex.objects.filter(
        Q(content_type__in=ours) | Q(base_content_type__in=ours) | Q(to_content_type__in=ours)
    ).delete()


class Migration(migrations.Migration):

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('wagtail_clientdb', '0003_customer_name_order_index'),
        ('wagtailcore', '0098_apitoken'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='CustomerTag',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('name', models.CharField(max_length=100, unique=True, verbose_name='name')),
                ('slug', models.SlugField(allow_unicode=True, max_length=100, unique=True, verbose_name='slug')),
            ],
            options={
                'verbose_name': 'customer tag',
                'verbose_name_plural': 'customer tags',
                'default_manager_name': 'all_tags',
            },
            managers=[
                ('all_tags', django.db.models.manager.Manager()),
            ],
        ),
        migrations.RunPython(copy_customer_tags, copy_customer_tags_back),
        migrations.AlterModelOptions(
            name='taggedcustomer',
            options={'verbose_name': 'customer tag link', 'verbose_name_plural': 'customer tag links'},
        ),
        migrations.AddField(
            model_name='customer',
            name='version',
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name='version'),
        ),
        migrations.AddField(
            model_name='customeroverride',
            name='version',
            field=models.PositiveIntegerField(default=1, editable=False, verbose_name='version'),
        ),
        migrations.AddField(
            model_name='importjob',
            name='previewed_at',
            field=models.DateTimeField(blank=True, null=True, verbose_name='checked at'),
        ),
        migrations.AlterField(
            model_name='exportjob',
            name='file',
            field=models.FileField(blank=True, storage=wagtail_clientdb.storage.get_private_storage, upload_to=wagtail_clientdb.storage.PrivateFileName('exports')),
        ),
        migrations.AlterField(
            model_name='importjob',
            name='file',
            field=models.FileField(blank=True, storage=wagtail_clientdb.storage.get_private_storage, upload_to=wagtail_clientdb.storage.PrivateFileName('imports'), verbose_name='file'),
        ),
        migrations.AlterField(
            model_name='importjob',
            name='report',
            field=models.FileField(blank=True, storage=wagtail_clientdb.storage.get_private_storage, upload_to=wagtail_clientdb.storage.PrivateFileName('import-reports'), verbose_name='refused rows'),
        ),
        migrations.RunPython(move_job_files, migrations.RunPython.noop),
        migrations.CreateModel(
            name='ClientDBLogEntry',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('label', models.TextField()),
                ('action', models.CharField(blank=True, db_index=True, max_length=255)),
                ('data', models.JSONField(blank=True, default=dict, encoder=django.core.serializers.json.DjangoJSONEncoder)),
                ('timestamp', models.DateTimeField(db_index=True, verbose_name='timestamp (UTC)')),
                ('uuid', models.UUIDField(blank=True, editable=False, help_text='Log entries that happened as part of the same user action are assigned the same UUID', null=True)),
                ('content_changed', models.BooleanField(db_index=True, default=False)),
                ('deleted', models.BooleanField(default=False)),
                ('object_id', models.CharField(db_index=True, max_length=255)),
                ('content_type', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='contenttypes.contenttype', verbose_name='content type')),
                ('revision', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='wagtailcore.revision')),
                ('user', models.ForeignKey(blank=True, db_constraint=False, null=True, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to=settings.AUTH_USER_MODEL)),
            ],
            options={
                'verbose_name': 'client DB log entry',
                'verbose_name_plural': 'client DB log entries',
                'ordering': [],
                'abstract': False,
            },
        ),
        migrations.AlterField(
            model_name='customer',
            name='tags',
            field=taggit.managers.TaggableManager(blank=True, help_text='A comma-separated list of tags.', through='wagtail_clientdb.TaggedCustomer', to='wagtail_clientdb.CustomerTag', verbose_name='tags'),
        ),
        migrations.AlterField(
            model_name='taggedcustomer',
            name='tag',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='tagged_customers', to='wagtail_clientdb.customertag'),
        ),
        migrations.RunPython(forget_moved_global_tags, migrations.RunPython.noop),
        migrations.RunPython(forget_references, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name='taggedcustomer',
            constraint=models.UniqueConstraint(fields=('content_object', 'tag'), name='clientdb_unique_customer_tag'),
        ),
        migrations.AddIndex(
            model_name='clientdblogentry',
            index=models.Index(fields=['uuid', 'action', '-timestamp'], name='wagtail_cli_uuid_a53479_idx'),
        ),
        # Last: rows written to a table make later changes of that table fail on PostgreSQL.
        migrations.RunPython(move_log_entries, move_log_entries_back),
    ]
