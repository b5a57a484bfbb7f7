"""The ledger's two notifications upward: money was applied, a call was logged.

`accounts` is the bottom layer and imports nothing above it, yet case work must react when
money lands on an invoice (a promise to pay is kept, an installment is paid) and when an
agent logs a call (the call task it fulfils is closed). So every service that applies
money (`services.allocate`, `services.allocate_many`) sends `allocations_applied` with the
invoices' ids, `services.log_call` sends `call_logged` with the call's timeline entry, and
`cases` connects its receivers in `CasesConfig.ready` (`cases/receivers.py`). These are the
only signals in the product, and they are sent explicitly, never from a model's save:
receivers run synchronously, inside the sender's transaction, so an error in one rolls
the allocation (or the call) back with it.
"""

from django.dispatch import Signal

# Sent with `invoice_ids`: the invoices whose open balance just fell.
allocations_applied = Signal()

# Sent with `activity` (the call's timeline entry, saved) and `by` (who logged it).
call_logged = Signal()
