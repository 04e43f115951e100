"""Outbound webhooks: events written with the change that causes them, signed and sent after commit."""
