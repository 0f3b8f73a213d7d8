from django.core.management.base import BaseCommand

from wagtail_clientdb import duplicates


class Command(BaseCommand):
    help = (
        "Look for customers who may be the same person (same email or phone number, or a similar "
        "name with the same birthday or end of phone number) and list them under “Possible "
        "duplicates”. Pairs marked “not a duplicate” stay dismissed. Suitable for cron, e.g. nightly."
    )

    def handle(self, *args, **options):
        result = duplicates.scan()
        self.stdout.write(
            f"{result.found} possible duplicate(s): {result.new} new, {result.changed} with other reasons, "
            f"{result.gone} no longer found ({result.seconds:.1f} s)."
        )
