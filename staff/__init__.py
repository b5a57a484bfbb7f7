"""Staff login security: the second factor's rule, API tokens, lockout and single sign-on."""
