"""The ledger's one notification upward: money was applied to invoices.

`accounts` is the bottom layer and imports nothing above it, yet case work must react when
money lands on an invoice (a promise to pay is kept, an installment is paid). So every
service that applies money (`services.allocate`, `services.allocate_many`) sends
`allocations_applied` with the invoices' ids, and `cases` connects its receiver in
`CasesConfig.ready` (`cases/receivers.py`). This is the only signal in the product, and it
is sent explicitly, never from a model's save: receivers run synchronously, inside the
allocation's transaction, so an error in one rolls the allocation back with it.
"""

from django.dispatch import Signal

# Sent with `invoice_ids`: the invoices whose open balance just fell.
allocations_applied = Signal()
