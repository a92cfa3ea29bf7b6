"""RQ workers: thin jobs that take ids and call the core (keepwell.service, keepwell.outbox)."""
