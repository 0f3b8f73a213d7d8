from django.core.management.base import BaseCommand

from wagtail_clientdb import deletion
from wagtail_clientdb.models import DeletionRequest, DeletionStatus


class Command(BaseCommand):
    help = (
        "Retry every open request of the “Customers to delete” queue: customers without "
        "upcoming appointments are deleted. Suitable for cron, e.g. every 15 minutes."
    )

    def handle(self, *args, **options):
        deleted = deletion.process_queue()
        blocked = DeletionRequest.objects.filter(status__in=deletion.OPEN).count()
        self.stdout.write(f"{deleted} customer(s) deleted, {blocked} request(s) still blocked.")
        if blocked and options["verbosity"] > 1:
            for request in DeletionRequest.objects.filter(status=DeletionStatus.BLOCKED):
                for error in request.errors:
                    self.stdout.write(f"  {request}: {deletion.describe_blocking(error)}")
