"""Outgoing e-mail: a transactional outbox, templates, and a sender that runs beside the app.

* ``outbox.queue_email`` renders a message from ``templates/email/`` and adds it as an
  ``OutboundEmail`` row to the caller's session, so it commits or rolls back with what caused it.
* ``sender.MailSender`` runs as an asyncio task in each app process: it claims due rows with a
  conditional ``UPDATE`` (safe with several workers on PostgreSQL and SQLite), hands them to the
  transport outside any transaction, and retries failures with exponential back-off.
* ``transport`` sends over SMTP (aiosmtplib) or, without ``WEBSHOP_SMTP_HOST``, writes ``.eml`` files.
"""
