"""setup_periodic_tasks: write the declared periodic jobs to celery beat's rows."""

from django.apps import apps
from django.core.management.base import BaseCommand

from collections_mgmt import schedule


class Command(BaseCommand):
    help = (
        "Schedule every periodic job declared in collections_mgmt/schedule.py that is "
        "missing, and retire the rows it replaces; times changed in the console are kept."
    )

    def handle(self, *args, **options):
        changes = schedule.sync(apps)
        for line in changes or ["Every periodic job is scheduled; nothing changed."]:
            self.stdout.write(line)
