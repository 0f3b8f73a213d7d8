"""Migrations move existing data: customer tags out of Wagtail's tag pool, log entries into the
scoped log, job files out of the media storage."""

import datetime

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from wagtail_clientdb.storage import private_storage

BEFORE = ("wagtail_clientdb", "0003_customer_name_order_index")
AFTER = ("wagtail_clientdb", "0004_branch_isolation")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state(target).apps


@pytest.fixture(autouse=True)
def latest_migrations_afterwards():
    """The tests after these find the schema they expect."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_branch_isolation_migration_moves_tags_logs_and_files():
    old = migrate(BEFORE)
    Customer = old.get_model("wagtail_clientdb", "Customer")
    Tag = old.get_model("taggit", "Tag")
    TaggedCustomer = old.get_model("wagtail_clientdb", "TaggedCustomer")
    TaggedItem = old.get_model("taggit", "TaggedItem")
    ContentType = old.get_model("contenttypes", "ContentType")
    ModelLogEntry = old.get_model("wagtailcore", "ModelLogEntry")
    ImportJob = old.get_model("wagtail_clientdb", "ImportJob")
    User = old.get_model("auth", "User")

    anna = Customer.objects.create(first_name="Anna", last_name="Tagged")
    vip, shared_tag = Tag.objects.create(name="vip", slug="vip"), Tag.objects.create(name="blue", slug="blue")
    unused_elsewhere = Tag.objects.create(name="only-images", slug="only-images")
    TaggedCustomer.objects.create(content_object=anna, tag=vip)
    TaggedCustomer.objects.create(content_object=anna, tag=shared_tag)
    # "blue" also tags something else (an image, say): it stays in Wagtail's pool.
    user_type = ContentType.objects.get(app_label="auth", model="user")
    uploader = User.objects.create(username="uploader")
    TaggedItem.objects.create(tag=shared_tag, content_type=user_type, object_id=uploader.pk)
    TaggedItem.objects.create(tag=unused_elsewhere, content_type=user_type, object_id=uploader.pk)
    customer_type = ContentType.objects.get(app_label="wagtail_clientdb", model="customer")
    ModelLogEntry.objects.create(
        content_type=customer_type, label="Anna Tagged", action="wagtail.create", timestamp=timezone.now(), object_id=str(anna.pk)
    )
    ModelLogEntry.objects.create(content_type=user_type, label="uploader", action="wagtail.create", timestamp=timezone.now(), object_id="1")
    old_name = default_storage.save("clientdb/imports/2026/11/kunden.csv", ContentFile(b"Anna,Tagged"))
    job = ImportJob.objects.create(created_by=uploader, file=old_name, original_name="kunden.csv")

    new = migrate(AFTER)
    CustomerTag = new.get_model("wagtail_clientdb", "CustomerTag")
    assert sorted(
        new.get_model("wagtail_clientdb", "TaggedCustomer").objects.values_list("tag__name", flat=True)
    ) == ["blue", "vip"]
    assert sorted(CustomerTag._default_manager.values_list("pk", "name")) == sorted([(vip.pk, "vip"), (shared_tag.pk, "blue")])
    assert set(new.get_model("taggit", "Tag").objects.values_list("name", flat=True)) == {"blue", "only-images"}
    moved = new.get_model("wagtail_clientdb", "ClientDBLogEntry").objects.get()
    assert (moved.label, moved.object_id, moved.content_type_id) == ("Anna Tagged", str(anna.pk), customer_type.pk)
    assert list(new.get_model("wagtailcore", "ModelLogEntry").objects.values_list("label", flat=True)) == ["uploader"]
    job = new.get_model("wagtail_clientdb", "ImportJob").objects.get(pk=job.pk)
    assert not default_storage.exists(old_name)
    assert job.file.name.startswith("imports/") and "kunden" not in job.file.name
    with private_storage.open(job.file.name) as moved_file:
        assert moved_file.read() == b"Anna,Tagged"
    # New tags get ids after the moved ones.
    assert CustomerTag._default_manager.create(name="new", slug="new").pk > max(vip.pk, shared_tag.pk)


@pytest.mark.django_db(transaction=True)
def test_appointment_services_become_services():
    old = migrate(("wagtail_clientdb", "0005_services_and_opening_hours"))
    Branch = old.get_model("wagtail_clientdb", "Branch")
    Appointment = old.get_model("wagtail_clientdb", "Appointment")
    alpha, beta = Branch.objects.create(name="Alpha", slug="alpha"), Branch.objects.create(name="Beta", slug="beta")
    start = timezone.now()

    def booked(branch, service, minutes):
        Appointment.objects.create(branch=branch, service=service, start=start, end=start + datetime.timedelta(minutes=minutes))

    booked(alpha, "Cut", 45), booked(alpha, "Cut", 45), booked(beta, "Cut", 60), booked(beta, "Colour", 120)

    new = migrate(("wagtail_clientdb", "0007_appointment_service"))
    Service = new.get_model("wagtail_clientdb", "Service")
    services = {s.name: s for s in Service.objects.all()}
    assert set(services) == {"Cut", "Colour"}
    assert services["Cut"].duration == 45  # what its appointments mostly took
    assert set(services["Cut"].branches.values_list("slug", flat=True)) == {"alpha", "beta"}
    assert set(services["Colour"].branches.values_list("slug", flat=True)) == {"beta"}
    Appointment = new.get_model("wagtail_clientdb", "Appointment")
    assert sorted(Appointment.objects.values_list("service__name", flat=True)) == ["Colour", "Cut", "Cut", "Cut"]


@pytest.mark.django_db(transaction=True)
def test_tags_differing_only_in_case_become_one():
    """0034/0035: tag names are compared in any case (wagtail_clientdb.tags). Tags that differed
    only in case, or in invisible characters around them, become the oldest of them, which keeps
    its spelling; what chose the others (customers, segments, jobs) chooses it."""
    old = migrate(("wagtail_clientdb", "0033_appointment_removals"))
    Customer = old.get_model("wagtail_clientdb", "Customer")
    CustomerTag = old.get_model("wagtail_clientdb", "CustomerTag")
    TaggedCustomer = old.get_model("wagtail_clientdb", "TaggedCustomer")
    Segment = old.get_model("wagtail_clientdb", "Segment")
    BulkActionJob = old.get_model("wagtail_clientdb", "BulkActionJob")
    user = old.get_model("auth", "User").objects.create(username="office")

    regular, lower, spaced, other = (
        CustomerTag._default_manager.create(name=name, slug=slug)
        for name, slug in (
            ("Regular", "regular"),
            ("regular", "regular_1"),
            ("\u200bREGULAR\ufeff", "regular_2"),
            ("Stammkunde", "stammkunde"),
        )
    )
    both, one, untouched = (Customer.objects.create(first_name=name) for name in ("Both", "One", "Untouched"))
    for customer, tag in ((both, regular), (both, lower), (one, spaced), (untouched, other)):
        TaggedCustomer.objects.create(content_object=customer, tag=tag)
    segment = Segment.objects.create(
        name="Regulars", query=f"tags={lower.pk}&tags={regular.pk}&tags={other.pk}&ordering=name"
    )
    plain = Segment.objects.create(name="Others", query=f"tags={other.pk}&q=a")
    job = BulkActionJob.objects.create(
        created_by=user, action="add_tags", query=f"tags={spaced.pk}", options={"tags": ["x"]}, opened_at=timezone.now()
    )
    versions = dict(Customer.objects.values_list("pk", "version"))

    new = migrate(("wagtail_clientdb", "0035_unique_tag_names"))
    CustomerTag = new.get_model("wagtail_clientdb", "CustomerTag")
    assert sorted(CustomerTag._default_manager.values_list("pk", "name", "folded_name")) == [
        (regular.pk, "Regular", "regular"),
        (other.pk, "Stammkunde", "stammkunde"),
    ]
    links = new.get_model("wagtail_clientdb", "TaggedCustomer").objects
    assert sorted(links.values_list("content_object_id", "tag_id")) == sorted(
        [(both.pk, regular.pk), (one.pk, regular.pk), (untouched.pk, other.pk)]
    )
    Segment = new.get_model("wagtail_clientdb", "Segment")
    assert Segment.objects.get(pk=segment.pk).query == f"tags={regular.pk}&tags={other.pk}&ordering=name"
    assert Segment.objects.get(pk=plain.pk).query == plain.query
    assert new.get_model("wagtail_clientdb", "BulkActionJob").objects.get(pk=job.pk).query == f"tags={regular.pk}"
    # A copy kept through the API reads the customers whose tags changed again.
    now = dict(new.get_model("wagtail_clientdb", "Customer").objects.values_list("pk", "version"))
    assert (now[both.pk], now[one.pk], now[untouched.pk]) == (
        versions[both.pk] + 1,
        versions[one.pk] + 1,
        versions[untouched.pk],
    )
    # From now on, the database refuses a second tag of the same name in another case.
    with pytest.raises(IntegrityError), transaction.atomic():
        CustomerTag._default_manager.create(name="REGULAR", slug="regular_3", folded_name="regular")
