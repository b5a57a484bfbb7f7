"""sweep_sending: turn notices left sending by dead workers into uncertain ones."""

import json

from django.core.management.base import BaseCommand

from dunning import sender


class Command(BaseCommand):
    help = (
        "Notices still sending after DUNNING_SENDING_TIMEOUT_SECONDS become uncertain "
        "(for a manager to decide); every send_due does this first."
    )

    def handle(self, *args, **options):
        uncertain = sender.sweep_stale_sending()
        self.stdout.write(
            json.dumps({"uncertain": uncertain, "waiting_for_a_manager": sender.uncertain_count()})
        )
