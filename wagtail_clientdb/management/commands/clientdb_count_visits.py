from django.core.management.base import BaseCommand

from wagtail_clientdb import booking_counts


class Command(BaseCommand):
    help = (
        "Add the visits that took place since the last run to the kept visit counts, which the "
        "customer listing's filters by number of visits read. Suitable for cron, e.g. hourly: "
        "the filters are exact either way, only slower the longer this has not run."
    )

    def handle(self, *args, **options):
        added = booking_counts.count_passed_visits()
        if added is None:
            self.stdout.write("The customers concerned stayed locked by other work; nothing changed. Try again later.")
        else:
            self.stdout.write(f"{added} visit(s) counted; visits are counted up to {booking_counts.visits_counted_until():%Y-%m-%d %H:%M:%S %Z}.")
