#!/usr/bin/env python
"""What Python's garbage collector costs the admin's pages, with its default threshold and
with the one docs/deployment.md recommends ("The garbage collector").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clientdb_scale_1m \
        .venv/bin/python benchmarks/garbage_collector.py [--blocks 4]

On a database made by ``benchmarks/scale.py generate``. Twelve pages (the first page, a search,
the tag and group filters, a customer with 500 appointments and the week view, for the head
office and one branch's staff) are requested three times in a row per block, in each setting,
the settings taking turns (ABC, CBA, …) so that a machine that slows down meanwhile slows all
of them alike. Per setting: the median, 90th and 99th percentile and mean of a request's wall
time, and the time spent in the collector per request (``gc.callbacks``).
"""

import argparse
import gc
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
sys.path.insert(0, HERE)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")

PAGES = ["list-page-1", "search-last-name", "filter-tag", "filter-group", "inspect-500-appointments", "appointments-week"]
#: Young-generation thresholds compared (700: Python's default), and whether what is loaded is frozen first.
SETTINGS = {"Python's default (700)": (None, False), "50,000": (50_000, False), "50,000 and gc.freeze()": (50_000, True)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=4)
    args = parser.parse_args(argv)

    import django

    django.setup()
    import scale
    from django.conf import settings
    from django.test import Client, override_settings

    settings.ALLOWED_HOSTS = ["*"]
    in_collector = {"seconds": 0.0, "started": 0.0}

    def timed(phase, info):
        if phase == "start":
            in_collector["started"] = time.perf_counter()
        else:
            in_collector["seconds"] += time.perf_counter() - in_collector["started"]

    gc.callbacks.append(timed)
    default_threshold = gc.get_threshold()
    with override_settings(ROOT_URLCONF=scale.PLAIN_URLCONF):
        pages, _plain_list, users = scale.build_pages(scale.plain_customer_urlconf())
        clients = {}
        for role, user in users.items():
            clients[role] = Client()
            clients[role].force_login(user)
            clients[role].get("/admin/")
        requests = [
            (clients[role], scale.with_params(page.url, params))
            for page in pages
            if page.name in PAGES
            for role, params in page.params.items()
            if isinstance(params, dict)
        ]
        for client, url in requests * 2:
            client.get(url)
        times = {name: [] for name in SETTINGS}
        collector = dict.fromkeys(SETTINGS, 0.0)
        for block in range(args.blocks):
            order = list(SETTINGS) if block % 2 == 0 else list(SETTINGS)[::-1]
            for name in order:
                threshold, freeze = SETTINGS[name]
                gc.collect()
                if freeze:
                    gc.freeze()
                if threshold:
                    gc.set_threshold(threshold, *default_threshold[1:])
                in_collector["seconds"] = 0.0
                for client, url in requests * 3:
                    started = time.perf_counter()
                    client.get(url)
                    times[name].append((time.perf_counter() - started) * 1000)
                collector[name] += in_collector["seconds"]
                gc.unfreeze()
                gc.set_threshold(*default_threshold)
    print(f"{len(requests)} pages, {args.blocks} blocks of 3 requests each per setting")
    print(f"{'young-generation threshold':28} {'requests':>8} {'p50 ms':>7} {'p90 ms':>7} {'p99 ms':>7} {'mean ms':>8} {'in the collector, ms per request':>33}")
    for name, measured in times.items():
        measured.sort()

        def percentile(fraction, measured=measured):
            return measured[round(fraction * (len(measured) - 1))]

        print(
            f"{name:28} {len(measured):8} {percentile(0.5):7.1f} {percentile(0.9):7.1f} {percentile(0.99):7.1f} "
            f"{statistics.mean(measured):8.1f} {collector[name] / len(measured) * 1000:33.1f}"
        )


if __name__ == "__main__":
    main()
