from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from wagtail_clientdb import retention


class Command(BaseCommand):
    help = (
        "Delete, through the “Customers to delete” queue, customers with no appointment for the years "
        "set in the Client DB settings (“delete customers with no appointment for (years)”): their past "
        "appointments are kept without their name. --dry-run lists them and changes nothing. "
        "Suitable for cron, e.g. daily."
    )

    def add_arguments(self, parser):
        parser.add_argument("--dry-run", action="store_true", help="List who would be deleted; change nothing.")
        parser.add_argument(
            "--years", type=int, help="Use this many years instead of the setting (needed while the setting is empty)."
        )

    def handle(self, *args, **options):
        years = options["years"] if options["years"] is not None else retention.years_setting()
        if years is None:
            raise CommandError(
                "Deleting inactive customers is switched off: set “delete customers with no appointment for "
                "(years)” in Settings → Client DB settings, or pass --years N."
            )
        if years < 1:
            raise CommandError("--years must be 1 or more.")
        now = timezone.now()
        if options["dry_run"]:
            self.list_inactive(years, now)
            return
        result = retention.delete_inactive_customers(years, now)
        self.stdout.write(
            f"{result.deleted} customer(s) with no appointment for {years} year(s) deleted, "
            f"{result.blocked} blocked by an upcoming appointment (kept in the “Customers to delete” queue)."
        )

    def list_inactive(self, years, now):
        customers = retention.with_last_appointment(retention.inactive_customers(years, now)).order_by("pk")
        total = queued = 0
        for customer in customers.iterator(chunk_size=retention.CHUNK):
            total += 1
            queued += customer.deletion_requested
            last = date(customer.last_appointment) if customer.last_appointment else "none"
            note = "  (already in the deletion queue)" if customer.deletion_requested else ""
            self.stdout.write(
                f"#{customer.pk}  {customer}  last appointment: {last}  created: {date(customer.created_at)}{note}"
            )
        since = date(retention.years_before(now, years))
        self.stdout.write(
            f"{total} customer(s) with no appointment since {since} would be deleted "
            f"({queued} of them already in the deletion queue). Dry run: nothing was changed."
        )


def date(moment):
    return timezone.localtime(moment).date().isoformat()
