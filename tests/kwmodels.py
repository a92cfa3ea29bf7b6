"""Every table's model, for tests that look at rows directly."""

from keepwell.customers.models import ApiKey, Company, ContactPreference, Customer, User
from keepwell.events.models import Event
from keepwell.infra.tables import Base
from keepwell.ledger.models import Account, LedgerEntry, LotDraw, PointsLot
from keepwell.memberships.models import Membership
from keepwell.messaging.models import MessageTemplate, OutboxAttempt, OutboxFile, OutboxMessage
from keepwell.reporting.models import ReportFileRow, ReportSchedule
from keepwell.rulesets.models import Ruleset, RulesetDraft, RulesetVersion

__all__ = ["Account", "ApiKey", "Base", "Company", "ContactPreference", "Customer", "Event", "LedgerEntry", "LotDraw",
           "Membership", "MessageTemplate", "OutboxAttempt", "OutboxFile", "OutboxMessage", "PointsLot",
           "ReportFileRow", "ReportSchedule", "Ruleset", "RulesetDraft", "RulesetVersion", "User"]
