"""Named stages of a job, where a hook may look in: an explicit interface for tests (the
reliability suite stops a work horse at a stage and kills it there). Production installs no
hook; a stage without hooks costs one empty loop."""

from __future__ import annotations

from collections.abc import Callable

STAGES = (
    "due:before_work",     # a due job taken from the queue, nothing done yet
    "due:before_commit",   # its work done and flushed, the transaction still open
    "due:after_commit",    # committed; the outbox not enqueued, the job not marked finished
    "deliver:before_send",  # a message claimed (committed as `sending`), not sent yet
    "deliver:after_send",  # sent to the channel, not yet marked sent
)
# A report file's job (tests/test_admin_reports.py stops one here): the file made, not yet stored.
REPORT_STAGES = ("report:written",)

Hook = Callable[[str], None]
_hooks: list[Hook] = []


def install(hook: Hook) -> None:
    """Call `hook(stage)` at every stage of every job this process (and its work horses) runs."""
    _hooks.append(hook)


def installed() -> bool:
    return bool(_hooks)


def stage(name: str) -> None:
    for hook in _hooks:
        hook(name)
