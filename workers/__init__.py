"""The workers (installed as `keepwell.interfaces.jobs`): RQ jobs that take plain values and
call one use case each, the worker that runs them, and the enqueueing of due work and messages.
A composition root: it reads the settings, in the worker process, after the fork."""
