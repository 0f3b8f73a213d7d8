from django.core.management.base import BaseCommand

from ...roles import MANAGER_GROUP, STAFF_GROUP, set_up_groups


class Command(BaseCommand):
    help = (
        "Create the groups of the two roles, branch staff and branch managers (the head office), with "
        "their permissions; an existing group of that name gets the permissions it lacks and keeps its others."
    )

    def add_arguments(self, parser):
        parser.add_argument("--staff-group", default=STAFF_GROUP, help=f"Name of the staff group (default: {STAFF_GROUP}).")
        parser.add_argument("--manager-group", default=MANAGER_GROUP, help=f"Name of the managers' group (default: {MANAGER_GROUP}).")

    def handle(self, *args, **options):
        done = set_up_groups(options["staff_group"], options["manager_group"])
        for name, (group, added) in done.items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions ({added} added)")
        self.stdout.write("Add people to the groups under Settings → Groups, and staff to their branches under Client DB → Branches.")
