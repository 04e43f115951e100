"""Work that waits for a commit: code in a transaction marks the session (``session.info[key] = True``),
and once that transaction commits the mark is taken off and its action runs; a rollback takes the mark
off without running it (what the transaction wrote is gone).

The outbox wakes its senders this way (``webshop.mail.outbox``) and the catalog drops its kept look-ups
after stock changed (``webshop.catalog.change_feed``).
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.orm import Session


def call_after_commit(key: str, action: Callable[[], None]) -> None:
    """Run ``action`` once after every commit of a session whose ``info[key]`` was set (for any
    ``Session``, from now on); a rollback of the whole transaction takes the mark off without running it.

    Args:
        key: The ``session.info`` key that marks a session (unique to the caller).
        action: What to do after the commit (it runs in the committing thread: keep it short).
    """

    def after_commit(session: Session) -> None:
        if session.info.pop(key, False):
            action()

    def after_rollback(session: Session) -> None:
        # The database transaction rolled back (savepoints do not fire this): what it marked is gone.
        session.info.pop(key, None)

    event.listen(Session, "after_commit", after_commit)
    event.listen(Session, "after_rollback", after_rollback)
