"""The catalog's CSV: ``parse`` (read and check), ``plan`` (the dry run), ``apply`` (the import),
``export``. The package is named for the format; inside it ``import csv`` is the standard library's
(absolute imports only).
"""
