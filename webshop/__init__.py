"""webshop: a small, server-rendered web shop (Litestar, Jinja2, htmx, SQLAlchemy)."""

__version__ = "0.1.0"
