"""The demo: a deterministic portfolio with case work and logins, for `make run` and for
trying the product (`manage.py seed_demo`). It writes through the apps' services and sits
above them all; nothing in the product imports it."""
