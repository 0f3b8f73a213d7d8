"""The processor instructions an admin page costs the web process, counted by Valgrind's callgrind.

Timings on this shared machine move by up to three times from hour to hour, and a change of a few
per cent in a page's Python is lost in them. Callgrind counts the instructions the process runs
instead, the same on every run (to 0.4 % here: psycopg's waits for the database vary) whatever else the machine does. It counts the web
process only: PostgreSQL's work is not in the figure. Each page is requested twice to warm up,
then the counters are zeroed, the page is requested ``--requests`` times and the counters dumped.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/clientdb_scale_small \\
        .venv/bin/python benchmarks/instructions.py --user staff-01 /admin/snippets/wagtail_clientdb/customer/
    # The plain SnippetViewSet of scale.py over the same table:
    ... benchmarks/instructions.py --plain /admin/plain-customers/

On a database made by ``benchmarks/scale.py generate`` (a small one does). About 2.5 minutes a
run: Django starts 50 times slower under Valgrind. Needs Debian's ``valgrind``.
"""

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNDER_CALLGRIND = "CLIENTDB_UNDER_CALLGRIND"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--user", default="manager")
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument(
        "--plain", action="store_true",
        help="mount scale.py's plain SnippetViewSet (the baseline) under /admin/plain-customers/",
    )
    args = parser.parse_args(argv)
    if os.environ.get(UNDER_CALLGRIND):
        request_pages(args)
        return
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "callgrind.out"
        subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no", "--collect-jumps=no",
             sys.executable, __file__, *(argv if argv is not None else sys.argv[1:])],
            env={**os.environ, UNDER_CALLGRIND: "1", "PYTHONHASHSEED": "0"},
            check=True, capture_output=True,
        )
        # The dump made after the measured requests (the other is the program's end).
        summary = next(line for line in (Path(f"{out}.1").read_text().splitlines()) if line.startswith("summary:"))
    per_request = int(summary.split()[1]) // args.requests
    print(f"{args.user} {args.url}: {per_request:,} instructions a request")


def request_pages(args):
    sys.path.insert(0, str(HERE.parent))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "benchmarks.settings")
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["CONN_MAX_AGE"] = None
    if args.plain:
        from benchmarks import scale

        scale.plain_customer_urlconf()
        settings.ROOT_URLCONF = scale.PLAIN_URLCONF
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client()
    client.force_login(get_user_model().objects.get(username=args.user))
    for _warm_up in range(2):
        client.get(args.url)
    subprocess.run(["callgrind_control", "--zero", str(os.getpid())], check=True, capture_output=True)
    for _request in range(args.requests):
        response = client.get(args.url)
    subprocess.run(["callgrind_control", "--dump=measured", str(os.getpid())], check=True, capture_output=True)
    if response.status_code != 200:
        raise SystemExit(f"{args.url}: HTTP {response.status_code}")


if __name__ == "__main__":
    main()
