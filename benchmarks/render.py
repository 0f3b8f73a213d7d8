#!/usr/bin/env python
"""What rendering the admin listings costs in Python: the customer listing, the appointment
listing and the Segments list, for the head office (``manager``) and one branch (``staff-01``),
and the dynamic groups' rules that the customer listing runs for its page.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clientdb_scale_small \
        .venv/bin/python benchmarks/render.py [--rounds 15] [--profile customers]

On a database made by ``benchmarks/scale.py generate`` (a small one does: the Python cost does
not depend on the number of customers). Each page is requested twice to warm up, then
``--rounds`` times through Django's test client (median and minimum of the wall time, on a
kept database connection), then once under cProfile, whose number of function calls is the
figure a busy machine does not move. ``--profile PAGE`` prints that profile.
"""

import argparse
import cProfile
import os
import pstats
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

PAGES = {
    "customers": "wagtailsnippets_wagtail_clientdb_customer:list",
    "appointments": "wagtailsnippets_wagtail_clientdb_appointment:list",
    "segments": "wagtailsnippets_wagtail_clientdb_segment:list",
}
USERS = ["manager", "staff-01"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--profile", choices=sorted(PAGES), help="print the profile of this page")
    args = parser.parse_args(argv)

    import django
    from django.conf import settings

    django.setup()
    # Connecting anew for every request (the benchmark settings' default) would be timed too.
    settings.DATABASES["default"]["CONN_MAX_AGE"] = None
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.urls import reverse

    for username in USERS:
        client = Client()
        client.force_login(get_user_model().objects.get(username=username))
        client.get("/admin/")
        for page, url_name in PAGES.items():
            url = reverse(url_name)
            client.get(url)
            queries = []
            with connection.execute_wrapper(lambda execute, *query, queries=queries: (queries.append(query), execute(*query))[1]):
                response = client.get(url)
            seconds = []
            for _round in range(args.rounds):
                start = time.perf_counter()
                client.get(url)
                seconds.append(time.perf_counter() - start)
            profile = cProfile.Profile()
            profile.runcall(client.get, url)
            stats = pstats.Stats(profile)
            print(
                f"{username:9} {page:13} median {1000 * statistics.median(seconds):6.1f} ms, "
                f"min {1000 * min(seconds):6.1f} ms, {stats.total_calls:,} calls, {len(queries)} queries, "
                f"HTTP {response.status_code}"
            )
            if page == args.profile:
                stats.sort_stats("cumulative").print_stats(60)
        print(f"{username:9} {'group rules':13} {rules_ms(username, args.rounds)}")


def rules_ms(username, rounds):
    """The rules of the dynamic groups run for the first page's twenty customers, as the listing's
    Groups column runs them (median and minimum of ``rounds`` times 3)."""
    from django.contrib.auth import get_user_model
    from django.http import QueryDict

    from wagtail_clientdb import groups, listing, scope

    viewer = scope.viewer_for_user(get_user_model().objects.get(username=username))
    pks = list(listing.customers_as_listed(viewer, QueryDict()).values_list("pk", flat=True)[:20])
    dynamic = list(groups.dynamic_groups())
    groups.names_by_customer(viewer, pks, manual={}, dynamic=dynamic)
    seconds = []
    for _round in range(3 * rounds):
        start = time.perf_counter()
        groups.names_by_customer(viewer, pks, manual={}, dynamic=dynamic)
        seconds.append(time.perf_counter() - start)
    return (
        f"median {1000 * statistics.median(seconds):6.1f} ms, min {1000 * min(seconds):6.1f} ms "
        f"({len(dynamic)} dynamic group{'' if len(dynamic) == 1 else 's'}, {len(pks)} customers)"
    )


if __name__ == "__main__":
    main()
