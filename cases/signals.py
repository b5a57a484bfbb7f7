"""Case work's notifications upward: a payment plan was proposed, a plan was approved.

`cases` sits below `dunning` and imports nothing above it, yet the customer must receive
the plan an agent proposed (the offer: its installments, total and how to pay), and every
message to a customer is a dunning notice. So `plans.propose_plan` sends `plan_proposed`
and `plans.approve_plan` sends `plan_approved`, explicitly (never from a model's save),
and `dunning` connects its receivers in `DunningConfig.ready` (`dunning/receivers.py`).
As with accounts/signals.py, receivers run synchronously inside the sender's
transaction: an error in one rolls the plan back with it.
"""

from django.dispatch import Signal

# Sent with `plan` (saved, installments created), `by` (who proposed) and `on` (the day).
plan_proposed = Signal()

# Sent with `plan` (now active), `by` (the approving manager) and `on` (the day).
plan_approved = Signal()
