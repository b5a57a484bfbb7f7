"""Case work's answer to the ledger's `allocations_applied` (see accounts/signals.py)."""

from . import plans, promises


def on_allocations_applied(sender, *, invoice_ids, **kwargs) -> None:
    """Money reached these invoices: open promises may be kept, plan installments paid."""
    invoice_ids = list(invoice_ids)
    if not invoice_ids:
        return
    promises.apply_payments(invoice_ids=invoice_ids)
    plans.apply_payments(invoice_ids=invoice_ids)
