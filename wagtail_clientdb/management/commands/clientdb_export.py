import sys

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.http import QueryDict
from django.utils import timezone, translation

from wagtail_clientdb import export, listing, scope, times
from wagtail_clientdb import tags as tag_names
from wagtail_clientdb.models import Branch, CustomerGroup, CustomerTag


class Command(BaseCommand):
    help = (
        "Export customers as the admin listing would: CSV (to standard output when no --output "
        "is given) or XLSX. By default the whole company; with --branch, as that branch sees them."
    )

    def add_arguments(self, parser):
        parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
        parser.add_argument("--output", help="File to write (required for XLSX).")
        parser.add_argument("--delimiter", choices=sorted(export.CSV_DELIMITERS), default="comma", help="CSV separator.")
        parser.add_argument(
            "--language",
            default=settings.LANGUAGE_CODE,
            help="Language of the headings and of words such as yes/no (en, de, fr; default: LANGUAGE_CODE).",
        )
        parser.add_argument("--branch", help="Export what this branch (slug) sees, with its local values.")
        parser.add_argument("--tag", action="append", default=[], help="Only customers with this tag (repeatable).")
        parser.add_argument("--group", action="append", default=[], help="Only customers in this group (repeatable).")
        parser.add_argument("--consent", choices=["yes", "no"], help="Only customers with / without marketing consent.")
        parser.add_argument("--source", help="Only customers from this source (manual, import, online_booking, api).")
        parser.add_argument("--search", help="Name, email or phone, as in the listing's search.")
        parser.add_argument("--ordering", default="name", help="name, -name, -bookings_count, created_at …")

    def handle(self, *args, **options):
        if options["format"] == "xlsx" and not options["output"]:
            raise CommandError("XLSX needs --output.")
        with translation.override(options["language"]):
            self._export(options)

    def _export(self, options):
        viewer = self._viewer(options["branch"])
        params = QueryDict(mutable=True)
        for tag in options["tag"]:
            # In any case, as tags are named (wagtail_clientdb.tags).
            found = tag_names.find([tag])
            if not found:
                raise CommandError(f"No {CustomerTag._meta.verbose_name} {tag!r}.")
            params.appendlist("tags", str(found[0].pk))
        for group in options["group"]:
            params.appendlist("groups", str(self._get(CustomerGroup, name=group).pk))
        if options["consent"]:
            params["marketing_consent"] = "true" if options["consent"] == "yes" else "false"
        if options["source"]:
            params["source"] = options["source"]
        if options["search"]:
            params["q"] = options["search"]
        params["ordering"] = options["ordering"]
        queryset = listing.customers_as_listed(viewer, params)
        # Creation times on the clock of the view exported: the branch's or the company's.
        with timezone.override(times.zone_of(viewer)):
            self._write(queryset, viewer, options)

    def _write(self, queryset, viewer, options):
        if options["output"]:
            with open(options["output"], "wb") as output:
                delimiter = export.CSV_DELIMITERS[options["delimiter"]]
                export.write_file(queryset, options["format"], output, delimiter, viewer=viewer)
            self.stderr.write(f"{queryset.count():,} customers written to {options['output']}.")
        else:
            for chunk in export.stream_csv(queryset, delimiter=export.CSV_DELIMITERS[options["delimiter"]], viewer=viewer):
                sys.stdout.write(chunk)

    def _viewer(self, slug):
        """The head office (a superuser's view), or one branch's view."""
        user = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
        if slug is None:
            return scope.Viewer(user, True)
        branch = self._get(Branch, slug=slug)
        return scope.Viewer(user, False, (branch,))

    def _get(self, model, **lookup):
        try:
            return model._default_manager.get(**lookup)
        except model.DoesNotExist:
            raise CommandError(f"No {model._meta.verbose_name} {next(iter(lookup.values()))!r}.")
