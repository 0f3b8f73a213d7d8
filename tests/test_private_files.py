"""Files with personal data (uploaded lists, refused-rows reports, exports) live in a private
storage, never under MEDIA_ROOT / MEDIA_URL, are served only through the app's scoped
download views, have names nobody can guess, and are deleted after the retention period."""

import datetime
import os
from pathlib import Path

import pytest
from django.apps import apps
from django.core.checks import run_checks
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import models
from django.utils import timezone

from tests.conftest import customer_url, make_customer
from tests.import_files import csv_bytes
from wagtail_clientdb import retention
from wagtail_clientdb.models import ExportJob, ImportJob
from wagtail_clientdb.storage import PrivateFileSystemStorage, private_storage
from wagtail_clientdb.tasks import delete_expired_files

ROWS = [["First name", "Last name", "Email"], ["Anna", "Secretperson", "anna@example.com"], ["Bad", "Row", "not-an-email"]]


def upload(client, rows=ROWS, name="kunden-2026.csv"):
    response = client.post(customer_url("import"), {"file": SimpleUploadedFile(name, csv_bytes(rows))})
    return ImportJob.objects.get(pk=response.url.rstrip("/").split("/")[-1])


def export(client, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "EXPORT_BACKGROUND_ROWS": 0}
    client.get(customer_url("list"), {"export": "csv"})
    return ExportJob.objects.latest("pk")


def read(response):
    return b"".join(response.streaming_content) if getattr(response, "streaming", False) else response.content


def app_file_fields():
    return [
        field
        for model in apps.get_app_config("wagtail_clientdb").get_models()
        for field in model._meta.get_fields()
        if isinstance(field, models.FileField)
    ]


def test_every_file_field_of_the_app_uses_the_private_storage(settings):
    fields = app_file_fields()
    assert {f"{f.model.__name__}.{f.name}" for f in fields} == {"ImportJob.file", "ImportJob.report", "ExportJob.file"}
    media_root = Path(settings.MEDIA_ROOT).resolve()
    for field in fields:
        assert field.storage is private_storage
        location = Path(field.storage.location).resolve()
        assert media_root not in location.parents and location != media_root
        with pytest.raises(ValueError):
            field.storage.url("imports/anything.csv")


def test_uploads_reports_and_exports_are_kept_privately_under_names_nobody_can_guess(login, manager, settings):
    make_customer(first_name="Eva", last_name="Exported", shared_with_all_branches=True)
    client = login(manager)
    job = upload(client)
    client.post(customer_url("import_job", job.pk), {"import_valid_rows": "on", "sharing": "all"})
    job.refresh_from_db()
    exported = export(client, settings)
    names = [job.file.name, job.report.name, exported.file.name]
    private_root = Path(settings.WAGTAIL_CLIENTDB["PRIVATE_ROOT"])
    for name in names:
        assert (private_root / name).is_file()
        assert not (Path(settings.MEDIA_ROOT) / name).exists()
        assert "kunden" not in name and str(timezone.localdate().year) not in name
        assert len(Path(name).stem) >= 32
    assert len(set(names)) == 3
    # Downloads are named for people, not after the stored file.
    response = client.get(customer_url("import_report", job.pk))
    assert 'filename="kunden-2026-refused-rows.csv"' in response["Content-Disposition"]
    response = client.get(customer_url("export_download", exported.pk))
    assert f'filename="customers-{timezone.localdate():%Y-%m-%d}.csv"' in response["Content-Disposition"]


def test_downloads_are_for_their_owner_only(client, login, staff_a, staff_b, manager, settings, branch_a):
    make_customer(first_name="Anna", last_name="Localperson", home_branch=branch_a)
    owner = login(staff_a)
    job = upload(owner)
    exported = export(owner, settings)
    urls = [customer_url("import_report", job.pk), customer_url("export_download", exported.pk), customer_url("import_job", job.pk)]
    for url in urls:
        assert owner.get(url).status_code == 200
    for user in (staff_b, manager):
        other = login(user)
        for url in urls:
            response = other.get(url)
            assert response.status_code == 404 and b"Localperson" not in read(response) and b"Secretperson" not in read(response)
    client.logout()
    for url in urls:
        response = client.get(url)
        assert response.status_code in (302, 404) and b"Secretperson" not in read(response)
    # Losing the branch means losing its files on the very next request.
    staff_a.clientdb_branch_memberships.all().delete()
    owner = login(staff_a)
    for url in urls:
        response = owner.get(url)
        assert response.status_code in (302, 404) and b"Secretperson" not in read(response)


def age(job, days):
    type(job).objects.filter(pk=job.pk).update(created_at=timezone.now() - datetime.timedelta(days=days))


def test_files_are_deleted_after_the_retention_period(login, manager, settings):
    make_customer(first_name="Eva", shared_with_all_branches=True)
    client = login(manager)
    old_import, new_import = upload(client), upload(client)
    old_export = export(client, settings)
    age(old_import, 8), age(old_export, 8), age(new_import, 6)
    old_import.refresh_from_db()
    assert old_import.samples and old_import.invalid_rows
    stored = [old_import.file.name, old_import.report.name, old_export.file.name]
    # A file no job points at any more (a crash between the file and its job), old enough.
    orphan = private_storage.save("imports/orphan.csv", SimpleUploadedFile("x.csv", b"Anna,Secretperson"))
    old_time = (timezone.now() - datetime.timedelta(days=9)).timestamp()
    os.utime(private_storage.path(orphan), (old_time, old_time))
    recent_orphan = private_storage.save("exports/recent.csv", SimpleUploadedFile("x.csv", b"data"))

    call_command("clientdb_delete_expired_files", stdout=open(os.devnull, "w"))

    for name in [*stored, orphan]:
        assert not private_storage.exists(name)
    assert private_storage.exists(recent_orphan)
    old_import.refresh_from_db(), old_export.refresh_from_db(), new_import.refresh_from_db()
    assert not old_import.file and not old_import.report and not old_export.file
    # What the preview showed named customers: gone too; the counts stay.
    assert (old_import.samples, old_import.invalid_rows, old_import.counts["new"]) == ({}, [], 1)
    assert new_import.file and private_storage.exists(new_import.file.name)
    # The job page says what happened; the report and the download are gone.
    assert client.get(customer_url("import_report", old_import.pk)).status_code == 404
    assert client.get(customer_url("export_download", old_export.pk)).status_code == 404
    assert client.post(customer_url("import_job", old_import.pk), {"sharing": "all"}).status_code in (200, 302)
    old_import.refresh_from_db()
    assert old_import.status == "failed" and "deleted after 7 days" in old_import.error


def test_retention_period_is_configurable_and_the_task_runs_it(login, manager, settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "FILE_RETENTION_DAYS": 30}
    job = upload(login(manager))
    age(job, 8)
    assert retention.delete_expired_files() == 0
    age(job, 31)
    delete_expired_files.enqueue()
    job.refresh_from_db()
    assert not job.file


def test_a_private_folder_inside_the_media_folder_is_a_configuration_error(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "PRIVATE_ROOT": str(tmp_path / "media" / "private")}
    assert "wagtail_clientdb.E003" in {error.id for error in run_checks()}
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "PRIVATE_ROOT": str(tmp_path / "private")}
    assert "wagtail_clientdb.E003" not in {error.id for error in run_checks()}
    assert isinstance(private_storage._wrapped, PrivateFileSystemStorage) or private_storage.location
    settings.STORAGES = {**settings.STORAGES, "wagtail_clientdb": settings.STORAGES["default"]}
    assert "wagtail_clientdb.E002" in {error.id for error in run_checks()}


def test_default_private_folder_lies_beside_the_media_folder(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "site" / "media")
    settings.WAGTAIL_CLIENTDB = {key: value for key, value in settings.WAGTAIL_CLIENTDB.items() if key != "PRIVATE_ROOT"}
    assert Path(private_storage.location) == (tmp_path / "site" / "clientdb-private").resolve()


def test_a_misspelt_setting_is_named_not_silently_ignored(settings):
    settings.WAGTAIL_CLIENTDB = {**settings.WAGTAIL_CLIENTDB, "FILE_RETENTION_DAY": 3}
    warnings = [error for error in run_checks() if error.id == "wagtail_clientdb.W002"]
    assert len(warnings) == 1 and "'FILE_RETENTION_DAY'" in warnings[0].msg and "'FILE_RETENTION_DAYS'" in warnings[0].hint
    settings.WAGTAIL_CLIENTDB = {"FILE_RETENTION_DAYS": 3}
    assert not [error for error in run_checks() if error.id == "wagtail_clientdb.W002"]


def test_the_snippets_page_listing_the_apps_models_is_warned_about(settings):
    """WAGTAILSNIPPETS_MENU_SHOW_ALL: Wagtail's Snippets page counts all customers for anyone
    who may see some; the check says so (the page is Wagtail's, its count not a branch's)."""
    assert not [error for error in run_checks() if error.id == "wagtail_clientdb.W003"]
    settings.WAGTAILSNIPPETS_MENU_SHOW_ALL = True
    assert [error.id for error in run_checks() if error.id == "wagtail_clientdb.W003"] == ["wagtail_clientdb.W003"]
