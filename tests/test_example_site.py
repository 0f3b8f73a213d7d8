"""The example site's demo data, as ``make demo DEMO_LANGUAGE=de`` loads it; a second run
changes nothing."""

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def manage(database, *args):
    # The example site's own settings, not the tests' that pytest-django put in the environment.
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env["DATABASE_URL"] = f"sqlite:///{database}"
    return subprocess.run(
        [sys.executable, str(ROOT / "example_site" / "manage.py"), *args],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    ).stdout


def test_the_demo_data_loads_in_german_once(tmp_path):
    # English is what ``make demo`` loads by default; German exercises every per-language word.
    language, service, group, label = "de", "Schneiden & Föhnen", "Online-Buchungen", "Haartyp"
    database = tmp_path / "demo.sqlite3"
    manage(database, "migrate", "--noinput")
    output = manage(database, "load_demo_data", "--language", language)
    assert "Demo data loaded" in output and "admin" in output
    with sqlite3.connect(database) as db:
        services = {name for (name,) in db.execute("SELECT name FROM wagtail_clientdb_service")}
        groups = {name for (name,) in db.execute("SELECT name FROM wagtail_clientdb_customergroup")}
        labels = {name for (name,) in db.execute("SELECT label FROM wagtail_clientdb_attributedefinition")}
        languages = {code for (code,) in db.execute("SELECT preferred_language FROM wagtailusers_userprofile")}
        customers = db.execute("SELECT count(*) FROM wagtail_clientdb_customer").fetchone()[0]
    assert service in services and group in groups and label in labels
    assert languages == {language} and customers == 300
    # Saved filters of the head office and of Mitte's staff, and a dynamic group by a rule.
    with sqlite3.connect(database) as db:
        segments = dict(db.execute("SELECT name, visibility FROM wagtail_clientdb_segment"))
        dynamic = db.execute(
            "SELECT g.name, s.name FROM wagtail_clientdb_customergroup g JOIN wagtail_clientdb_segment s ON s.id = g.segment_id"
        ).fetchall()
    assert segments["Stammkunden (ab 3 Besuchen)"] == "company" and segments["Mit anstehendem Termin"] == "branch"
    assert dynamic == [("Stammkunden", "Stammkunden (ab 3 Besuchen)")]
    counted = manage(database, "shell", "-c", (
        "from django.contrib.auth.models import User; from wagtail_clientdb import groups, scope, segments; "
        "mitte = scope.viewer_for_user(User.objects.get(username='mitte')); "
        "print(sorted(s.name for s in segments.visible_segments(mitte)), groups.members(mitte, groups.dynamic_groups().get()).count())"
    ))
    names, members = counted.strip().rsplit(" ", 1)
    # Mitte's staff see the company's segments and their branch's, not the head office's private one.
    assert "Mit anstehendem Termin" in names and "Termin versäumt" not in names and int(members) > 0
    assert "already loaded" in manage(database, "load_demo_data")
    with sqlite3.connect(database) as db:
        assert db.execute("SELECT count(*) FROM wagtail_clientdb_customer").fetchone()[0] == 300
