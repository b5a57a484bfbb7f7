"""Payment gateways: Stripe, the generic signed webhook, pay links and the pay page."""
