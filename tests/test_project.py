"""Project-level checks: migrations match the models, Django's system checks pass."""

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command


@pytest.mark.django_db
def test_migrations_match_the_models():
    out = io.StringIO()
    call_command("makemigrations", "wagtail_clientdb", "--check", "--dry-run", stdout=out)
    assert "No changes detected" in out.getvalue()


def test_system_checks_pass():
    call_command("check", fail_level="WARNING")


@pytest.mark.parametrize("place", ["first", "last"])
def test_the_app_may_stand_anywhere_in_installed_apps(place):
    """Appended at the end of a project's INSTALLED_APPS (after wagtail.snippets, which then reads
    the app's hooks first), the app still starts with its permission policies: Wagtail refused to
    start ("A fallback permission policy has already been created")."""
    program = f"""
import django, importlib
settings = importlib.import_module("tests.settings")
apps = [app for app in settings.INSTALLED_APPS if app != "wagtail_clientdb"]
settings.INSTALLED_APPS = ["wagtail_clientdb", *apps] if "{place}" == "first" else [*apps, "wagtail_clientdb"]
django.setup()
from wagtail.permissions import policy_registry
from wagtail_clientdb.models import Appointment, Customer, Segment
print(" ".join(type(policy_registry.get_by_type(model)).__name__ for model in (Customer, Appointment, Segment)))
"""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["CustomerPermissionPolicy", "ScopedPermissionPolicy", "SegmentPermissionPolicy"]
