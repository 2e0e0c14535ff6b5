"""Scoring: image metrics and the fixed synthesized benchmark (`byeglasses eval`)."""
