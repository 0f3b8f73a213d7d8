from django.core.management.base import BaseCommand

from wagtail_clientdb import conf, retention


class Command(BaseCommand):
    help = (
        "Delete uploaded customer lists, refused-rows reports and exports older than the retention "
        "period (WAGTAIL_CLIENTDB['FILE_RETENTION_DAYS'], default 7). Suitable for cron, e.g. daily."
    )

    def handle(self, *args, **options):
        deleted = retention.delete_expired_files()
        days = conf.get("FILE_RETENTION_DAYS")
        self.stdout.write(f"{deleted} file(s) older than {days} days deleted.")
