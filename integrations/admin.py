"""The integrations console: each concern registers its own pages (intake, gateways, banks,
inbound e-mail)."""

from .bank import admin as bank_admin
from .gateways import admin as gateways_admin
from .inbound import admin as inbound_admin
from .intake import admin as intake_admin
from .reconciliation import admin as reconciliation_admin

# Importing a concern's admin module registers its pages with the admin site.
PAGES = (intake_admin, gateways_admin, bank_admin, reconciliation_admin, inbound_admin)
