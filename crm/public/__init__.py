"""Public pages without login: unsubscribe, preference centre, sign-up with double opt-in."""
