"""The use cases: the one door every interface (CLI, REST API, admin, workers) comes through.

Each module holds one area's use cases. A use case is one transaction for one company (the
`use_case` decorator: `memberships.enroll(app, "acme", customer, plan, on)`), takes typed
arguments, returns a typed result and raises errors from `keepwell.kernel.errors` only. A few
orchestrate several transactions on purpose (a batch of events in chunks, due work, delivery,
simulation) and say so.

Importing this package loads every area's declarations: the event types with their handlers,
the ruleset kinds, the due work and the reactions to events.
"""

from ..billing import due as _billing_due  # noqa: F401
from ..billing import handlers as _billing_events  # noqa: F401
from ..billing import models as _billing_models  # noqa: F401
from ..customers import models as _customer_models  # noqa: F401
from ..events import models as _event_models  # noqa: F401
from ..ledger import models as _ledger_models  # noqa: F401
from ..memberships import due as _membership_due  # noqa: F401
from ..memberships import handlers as _membership_events  # noqa: F401
from ..memberships import plan_checks as _plan_checks  # noqa: F401
from ..messaging import models as _messaging_models  # noqa: F401
from ..messaging import notifications as _notifications  # noqa: F401
from ..messaging import webhooks as _webhooks  # noqa: F401
from ..reporting import models as _reporting_models  # noqa: F401
from ..reporting import schedules as _report_schedules  # noqa: F401
from ..rewards import due as _rewards_due  # noqa: F401
from ..rewards import handlers as _rewards_events  # noqa: F401
from ..rewards import models as _reward_models  # noqa: F401
from ..rulesets import models as _ruleset_models  # noqa: F401
from ..scheduling import models as _scheduling_models  # noqa: F401
from .app import Keepwell, reading, use_case

__all__ = ["Keepwell", "reading", "use_case"]
