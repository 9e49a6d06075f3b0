"""Purchase predictions (BG/NBD + Gamma-Gamma) for contacts with orders; docs/predictions.md."""
