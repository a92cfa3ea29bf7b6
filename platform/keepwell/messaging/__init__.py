"""Messaging: the outbox and its delivery (email, SMS, webhooks), templates in a sandbox, the
notification triggers' reactions to events and their reminders."""
