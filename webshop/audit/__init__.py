"""The admin audit trail: who changed which product, variant, stock level, order or user, and when."""
