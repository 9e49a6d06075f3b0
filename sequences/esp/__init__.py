"""ESP events: the webhook inbox, per-ESP classification, processing, reconciliation,
the circuit breaker and the sunset policy (docs/deliverability.md)."""
