"""Database layer: models, engine and session configuration."""
