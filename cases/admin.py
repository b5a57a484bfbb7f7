"""The console's case work, registered with the admin: promises to pay, disputes and
payment plans (`admin_cases`), the worklist, tasks, routing rules, write-offs and
placements (`admin_work`). Each module registers its own ModelAdmins."""

from . import admin_cases, admin_work  # noqa: F401 (imported for their registrations)
