"""The REST API (JSON). Every request is authenticated by a company API key and sees only that
company's data, within the key's scopes (`needs`). Each view parses the request, calls one use
case and renders its answer; errors become HTTP in one place (`errors.STATUS`)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from datetime import date
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, g, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import UnsupportedMediaType

from ...kernel.errors import Forbidden, InvalidDocument, KeepwellError, NotFound, Problem, Unauthorized
from ...kernel.text import MAX_DEPTH, depth_problem
from ...usecases import (
    Keepwell,
    apikeys,
    billing,
    companies,
    customers,
    events,
    idempotency,
    locations,
    memberships,
    messaging,
    packs,
    reports,
    rewards,
    rulesets,
    simulation,
    webhooks,
)
from ...usecases.simulation import simulate as run_simulation
from ..jobs import enqueue as jobs
from .contract import QUERY_NAMES, validated
from .errors import from_error, problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")
BATCH_MAX = 500  # events in one request (contract.BODIES["EventsIn"] says the same)


def keepwell() -> Keepwell:
    return current_app.extensions["keepwell"]  # type: ignore[no-any-return]


@bp.before_request
def authenticate() -> None:
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not secret:
        raise Unauthorized("send an API key: Authorization: Bearer <key> (create one with `keepwell apikeys create`)")
    grant = apikeys.grant_for(keepwell(), secret)
    if grant is None:
        raise Unauthorized("unknown or revoked API key")
    g.company, g.grant = grant.company, grant
    _known_query_only()


def _known_query_only() -> None:
    """A query parameter the endpoint does not take is an error, not silently ignored (a typo such
    as ?emial= would otherwise list everyone)."""
    endpoint = (request.endpoint or "").removeprefix("api.")
    allowed = QUERY_NAMES.get(endpoint)
    if allowed is None:
        return
    unknown = [name for name in request.args if name not in allowed]
    if unknown:
        takes = f"it takes {', '.join(sorted(allowed))}" if allowed else "it takes none"
        raise InvalidDocument("bad query", [Problem(name[:60], f"this endpoint has no query parameter {name[:60]!r}; "
                                                    f"{takes}") for name in unknown])


def require(scope: str) -> None:
    if not g.grant.allows(scope):
        raise Forbidden(f"this API key does not have the {scope!r} scope ({apikeys.SCOPES[scope]}); create a key "
                        f"with it: keepwell apikeys create --scope {scope}", needed_scope=scope)


V = TypeVar("V", bound=Callable[..., ResponseReturnValue])


def needs(scope: str) -> Callable[[V], V]:
    """The scope a view needs of the request's key."""

    def decorate(view: V) -> V:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
            require(scope)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


def idempotent(view: V) -> V:
    """POSTs with an `Idempotency-Key` header: the same key and request answer the first
    status and body again (`Idempotent-Replayed: true`); the key with another request is 422; a
    request while the first with its key runs is 409. Without the header, nothing changes."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> ResponseReturnValue:
        key = request.headers.get("Idempotency-Key")
        if key is None:
            return view(*args, **kwargs)
        if not _KEY.match(key):
            raise InvalidDocument("bad header", [Problem("Idempotency-Key", "1 to 255 printable characters")])
        fingerprint = hashlib.sha256(b"%s %s\n" % (request.method.encode(), request.path.encode())
                                     + request.get_data()).hexdigest()
        stored = idempotency.begin(keepwell(), g.company, key, fingerprint)
        if stored is not None:
            replay = Response(stored.body, status=stored.status, mimetype=stored.mimetype)
            replay.headers["Idempotent-Replayed"] = "true"
            return replay
        try:
            response = current_app.make_response(view(*args, **kwargs))
        except KeepwellError as exc:  # the request's own fault: answered the same way next time
            response = from_error(exc)
        except BaseException:
            idempotency.finish(keepwell(), g.company, key, None)  # ours: the key may be tried again
            raise
        keep = response.status_code < 500
        idempotency.finish(keepwell(), g.company, key, idempotency.Answer(
            response.status_code, response.get_data(as_text=True), response.mimetype) if keep else None)
        return response

    return wrapper  # type: ignore[return-value]


def event_scope(payload: Any) -> str:
    """Adjustments are their own scope; every other event a client may post is events:write."""
    return "adjustments:write" if isinstance(payload, dict) and payload.get("type") == "adjustment" else "events:write"


@bp.errorhandler(KeepwellError)
def errors(exc: KeepwellError) -> ResponseReturnValue:
    return from_error(exc)


def _body() -> Any:
    too_deep = Problem("(body)", f"nests more than {MAX_DEPTH} levels deep")
    if request.content_length and not request.is_json:
        raise UnsupportedMediaType("send the body as JSON, with Content-Type: application/json")
    try:
        data = request.get_json(silent=True)
    except RecursionError:  # deeper than the JSON parser's own stack
        raise InvalidDocument("request body rejected", [too_deep]) from None
    if data is None:
        raise InvalidDocument("request body must be JSON", [Problem("(body)", "not JSON")])
    if depth_problem(data) is not None:
        raise InvalidDocument("request body rejected", [too_deep])
    return data


def _iso_date(raw: Any, name: str) -> date:
    """A date of the request (query or body), or a problem naming its field."""
    try:
        return date.fromisoformat(raw)
    except (TypeError, ValueError):
        raise InvalidDocument("request rejected", [Problem(name, f"{raw!r} is not a date (YYYY-MM-DD)")]) from None


def _date_arg(name: str) -> date:
    return _iso_date(request.args.get(name, ""), name)


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise InvalidDocument("bad query", [Problem(name, f"{raw[:20]!r} is not a whole number from 0 to 999999999")])
    return int(raw)


def _limit() -> int:
    """A page size: 50 unless asked, at most 500 (as the contract says)."""
    limit = _int_arg("limit", 50)
    if limit > 500:
        raise InvalidDocument("bad query", [Problem("limit", f"a page holds at most 500 (asked for {limit})")])
    return limit


@bp.post("/events")
def post_events() -> ResponseReturnValue:
    """One event object, or {"events": [...]} through the batched path (200, results in order,
    each event with its own and its `duplicate` flag).

    One event: processed (a charge approved) 201 with the result; declined 402, a problem whose
    `reason` says why, with the balance and overdraft left. The event's `id` is its idempotency
    key: a replay answers the first status and body, byte for byte, with `Idempotent-Replayed:
    true`; the same id with other content is 422 (`idempotency_key_reused`)."""
    body = _body()
    is_batch = isinstance(body, dict) and isinstance(body.get("events"), list)
    batch = body["events"] if is_batch else [body]
    if len(batch) > BATCH_MAX:
        raise InvalidDocument("batch rejected", [Problem("events", f"{len(batch)} events; a request takes at most "
                                                 f"{BATCH_MAX} (send more requests, or `keepwell events import`)")])
    for scope in sorted({event_scope(p) for p in batch}):
        require(scope)
    if is_batch:
        return jsonify({"results": events.post_events(keepwell(), g.company, batch)})
    result = events.post_event(keepwell(), g.company, body)
    replayed = bool(result.pop("duplicate", False))
    if result.pop("warning", None):
        return problem(422, "idempotency_key_reused", "Idempotency key reused",
                       f"event id {result.get('event')!r} was first used with different content; send new events "
                       "with new ids", event=result.get("event"))
    response = _event_answer(result)
    if replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


def _event_answer(result: dict[str, Any]) -> Response:
    """The HTTP answer to one event's result (the same for its replays: built from the result only)."""
    if result.get("status") == "declined":
        shown = {k: v for k, v in result.items() if k not in ("status", "message", "reason", "entries", "type")}
        return problem(402, "declined", "Declined", result.get("message") or "declined",
                       reason=result.get("reason"), event_type=result.get("type"), **shown)
    return Response(json.dumps(result, default=str), status=201, mimetype="application/json")


@bp.post("/customers")
@needs("customers:write")
@idempotent
def add_customer() -> ResponseReturnValue:
    body = validated("CustomerIn", _body())
    cid = customers.add_customer(keepwell(), g.company, body["name"], body.get("email"), body.get("phone"),
                                 body.get("external_id"), body.get("location"), body.get("service_address"))
    return jsonify(customers.get_customer(keepwell(), g.company, cid)), 201


@bp.get("/customers")
@needs("read")
def list_customers() -> ResponseReturnValue:
    """Customers in the order they were added, a page at a time: `limit` (at most 500) and the
    cursor `starting_after` (the `next` link gives both); lookups by `email`, `phone` or `q`
    (part of the name). `offset` still pages the old way."""
    limit = _limit()
    after = _cursor()  # checked even when `offset` pages instead
    if "offset" in request.args:
        offset = _int_arg("offset", 0)
        rows = customers.list_customers(keepwell(), g.company, limit, offset)
        return jsonify({"customers": rows, "limit": limit, "offset": offset})
    lookups = {k: request.args.get(k) or None for k in ("email", "phone", "q", "external_id")}
    found = customers.page(keepwell(), g.company, limit, after, **lookups)
    return _page("customers", ".list_customers", found, limit, lookups)


@bp.get("/customers/<customer_id>")
@needs("read")
def get_customer(customer_id: str) -> ResponseReturnValue:
    return jsonify(customers.get_customer(keepwell(), g.company, customer_id))


@bp.patch("/customers/<customer_id>")
@needs("customers:write")
def update_customer(customer_id: str) -> ResponseReturnValue:
    body = validated("CustomerUpdate", _body())
    customers.update_customer(keepwell(), g.company, customer_id, name=body.get("name"), email=body.get("email"),
                              phone=body.get("phone"), external_id=body.get("external_id"),
                              opt_out=tuple(body.get("opt_out") or ()), opt_in=tuple(body.get("opt_in") or ()),
                              location=body.get("location"), service_address=body.get("service_address"))
    return jsonify(customers.get_customer(keepwell(), g.company, customer_id))


@bp.get("/customers/<customer_id>/memberships")
@needs("read")
def customer_memberships(customer_id: str) -> ResponseReturnValue:
    return jsonify({"memberships": memberships.of_customer(keepwell(), g.company, customer_id)})


@bp.get("/events")
@needs("read")
def list_events() -> ResponseReturnValue:
    """Stored events, oldest first: `limit`, the cursor `starting_after`, `customer`, `type`."""
    limit = _limit()
    filters = {"customer": request.args.get("customer") or None, "type": request.args.get("type") or None}
    found = events.list_events(keepwell(), g.company, limit, _cursor(), filters["customer"], filters["type"])
    return _page("events", ".list_events", found, limit, filters)


def _cursor() -> str | None:
    """The `starting_after` of a list: the last id of the page before."""
    after = request.args.get("starting_after") or None
    if after is not None and len(after) > 200:
        raise InvalidDocument("bad query", [Problem("starting_after", "at most 200 characters")])
    return after


def _page(name: str, endpoint: str, found: dict[str, Any], limit: int, filters: dict[str, str | None]) -> Response:
    """A page of a list, with `has_more` and the `next` link (same filters, after the last row)."""
    nxt = url_for(endpoint, limit=limit, starting_after=found["last"], **{k: v for k, v in filters.items() if v}) \
        if found["has_more"] else None
    return jsonify({name: found[name], "limit": limit, "has_more": found["has_more"], "next": nxt})


@bp.get("/events/<path:event_id>")
@needs("read")
def get_event(event_id: str) -> ResponseReturnValue:
    return jsonify(events.get_event(keepwell(), g.company, event_id))


@bp.get("/customers/<customer_id>/points")
@needs("read")
def customer_points(customer_id: str) -> ResponseReturnValue:
    return jsonify(rewards.points(keepwell(), g.company, customer_id, _day_arg("on")))


def _day_arg(name: str) -> date | None:
    raw = request.args.get(name)
    return _iso_date(raw, name) if raw else None


@bp.post("/customers/<customer_id>/points/adjustments")
@needs("adjustments:write")
@idempotent
def adjust_points(customer_id: str) -> ResponseReturnValue:
    body = validated("PointsAdjustmentIn", _body())
    on = _iso_date(body["on"], "on") if body.get("on") else None
    by = f"API key {g.grant.name}" if g.grant.name else "an API key"
    result = rewards.adjust_points(keepwell(), g.company, customer_id, int(body["amount"]), body["reason"], by, on,
                                   body.get("id"))
    return jsonify(result), 200 if result["duplicate"] else 201


@bp.post("/customers/<customer_id>/referral_code")
@needs("customers:write")
def referral_code(customer_id: str) -> ResponseReturnValue:
    return jsonify({"customer": customer_id, "code": rewards.referral_code(keepwell(), g.company, customer_id)})


@bp.get("/customers/<customer_id>/referrals")
@needs("read")
def customer_referrals(customer_id: str) -> ResponseReturnValue:
    return jsonify(rewards.referrals_of(keepwell(), g.company, customer_id))


@bp.get("/rewards")
@needs("read")
def list_rewards() -> ResponseReturnValue:
    return jsonify({"rewards": rewards.catalog_list(keepwell(), g.company, _day_arg("on"))})


@bp.post("/rewards/redemptions")
@needs("rewards:write")
@idempotent
def redeem_reward() -> ResponseReturnValue:
    body = validated("RedemptionIn", _body())
    on = _iso_date(body["on"], "on") if body.get("on") else None
    result = rewards.redeem(keepwell(), g.company, body["customer"], body["reward"], int(body.get("quantity", 1)),
                            on, body.get("membership"), body.get("ship_to"), body.get("id"))
    return jsonify(result), 200 if result.get("duplicate") else 201


@bp.get("/rewards/redemptions")
@needs("read")
def list_redemptions() -> ResponseReturnValue:
    limit = _limit()
    status = request.args.get("status") or None
    if status is not None and status not in ("open", "pending", "ordered", "shipped", "delivered", "fulfilled",
                                             "cancelled"):
        raise InvalidDocument.field("status", "Status must be one of open, pending, ordered, shipped, delivered, "
                                    "fulfilled, cancelled")
    offset = _int_arg("offset", 0)
    rows = rewards.list_redemptions(keepwell(), g.company, status, request.args.get("customer") or None, limit,
                                    offset)
    return jsonify({"redemptions": rows, "limit": limit, "offset": offset})


@bp.get("/rewards/redemptions/<redemption_id>")
@needs("read")
def get_redemption(redemption_id: str) -> ResponseReturnValue:
    return jsonify(rewards.get_redemption(keepwell(), g.company, redemption_id))


_ACTIONS = {"fulfil": "next", "ship": "shipped", "deliver": "delivered", "cancel": "cancelled"}


@bp.post("/rewards/redemptions/<redemption_id>/<action>")
@needs("rewards:write")
@idempotent
def change_redemption(redemption_id: str, action: str) -> ResponseReturnValue:
    if action not in _ACTIONS:
        raise NotFound(f"no action {action!r}: use {', '.join(_ACTIONS)}")
    body = validated("RedemptionChangeIn", _body() if request.get_data() else {})
    on = _iso_date(body["on"], "on") if body.get("on") else None
    return jsonify(rewards.change_redemption(keepwell(), g.company, redemption_id, _ACTIONS[action],
                                             body.get("tracking"), body.get("reason"), on))


@bp.get("/points/liability")
@needs("read")
def points_liability() -> ResponseReturnValue:
    return jsonify(rewards.liability(keepwell(), g.company, _day_arg("from"), _day_arg("to")))


@bp.post("/enrollments")
@needs("memberships:write")
@idempotent
def enroll() -> ResponseReturnValue:
    body = validated("EnrollmentIn", _body())
    on = _iso_date(body["on"], "on")
    result = memberships.enroll(keepwell(), g.company, body["customer"], body["plan"], on, tier=body.get("tier"),
                                key=body.get("id"), allow_second=bool(body.get("allow_second")),
                                cadence=body.get("cadence"), referral_code=body.get("referral_code"))
    return jsonify(result), 201 if result.get("status") == "processed" else 200


@bp.get("/invoices")
@needs("read")
def list_invoices() -> ResponseReturnValue:
    """A membership's or a customer's invoices (`?membership=` or `?customer=`), oldest first."""
    found = billing.invoices_of(keepwell(), g.company, membership=request.args.get("membership") or None,
                                customer=request.args.get("customer") or None)
    return jsonify({"invoices": found})


@bp.get("/customers/<customer_id>/payment_methods")
@needs("read")
def list_payment_methods(customer_id: str) -> ResponseReturnValue:
    return jsonify({"payment_methods": billing.payment_methods_of(keepwell(), g.company, customer_id)})


@bp.post("/customers/<customer_id>/payment_methods")
@needs("customers:write")
@idempotent
def add_payment_method(customer_id: str) -> ResponseReturnValue:
    body = validated("PaymentMethodIn", _body())
    default = bool(body.get("default"))
    if "test_card" in body:
        pm = billing.add_test_card(keepwell(), g.company, customer_id, body["test_card"], default)
    else:
        pm = billing.add_card_token(keepwell(), g.company, customer_id, body["gateway"], body["token"], default)
    return jsonify(pm), 201


@bp.post("/payment_methods/<payment_method_id>/default")
@needs("customers:write")
@idempotent
def default_payment_method(payment_method_id: str) -> ResponseReturnValue:
    return jsonify(billing.set_default_payment_method(keepwell(), g.company, payment_method_id))


@bp.delete("/payment_methods/<payment_method_id>")
@needs("customers:write")
def remove_payment_method(payment_method_id: str) -> ResponseReturnValue:
    return jsonify(billing.remove_payment_method(keepwell(), g.company, payment_method_id))


@bp.get("/locations")
@needs("read")
def list_locations() -> ResponseReturnValue:
    return jsonify({"locations": locations.list_locations(keepwell(), g.company)})


@bp.post("/locations")
@needs("admin")
@idempotent
def add_location() -> ResponseReturnValue:
    body = validated("LocationIn", _body())
    return jsonify(locations.add_location(keepwell(), g.company, body["name"], body.get("tax_rate", "0"),
                                          body.get("tax_name"), body.get("address"), body.get("timezone"))), 201


@bp.patch("/locations/<location_id>")
@needs("admin")
def update_location(location_id: str) -> ResponseReturnValue:
    body = validated("LocationUpdate", _body())
    if not location_id.startswith("loc_"):  # by id here: a name in the path would be ambiguous
        raise NotFound(f"no location {location_id!r}")
    return jsonify(locations.change_location(keepwell(), g.company, location_id, **body))


@bp.post("/billing/run")
@needs("admin")
@idempotent
def run_billing() -> ResponseReturnValue:
    body = validated("BillingRunIn", _body())
    return jsonify(billing.run(keepwell(), g.company, _day(body, "as_of")))


@bp.get("/invoices/<int:number>")
@needs("read")
def get_invoice(number: int) -> ResponseReturnValue:
    return jsonify(billing.invoice(keepwell(), g.company, number))


@bp.get("/memberships/<membership_id>")
@needs("read")
def membership(membership_id: str) -> ResponseReturnValue:
    return jsonify(memberships.show(keepwell(), g.company, membership_id))


def _day(body: dict[str, Any], name: str) -> date:
    """A body's date, today (company time) when it is left out."""
    return _iso_date(body[name], name) if body.get(name) else companies.today(keepwell(), g.company)


@bp.get("/memberships")
@needs("read")
def list_memberships() -> ResponseReturnValue:
    """Memberships oldest first: `limit`, the cursor `starting_after`, `customer`, `plan`, `status`."""
    limit = _limit()
    filters = {k: request.args.get(k) or None for k in ("customer", "plan", "status")}
    found = memberships.list_memberships(keepwell(), g.company, limit, _cursor(), **filters)
    return _page("memberships", ".list_memberships", found, limit, filters)


@bp.get("/memberships/<membership_id>/cancel_preview")
@needs("read")
def cancel_preview(membership_id: str) -> ResponseReturnValue:
    on = _iso_date(request.args["on"], "on") if request.args.get("on") else companies.today(keepwell(), g.company)
    return jsonify(memberships.cancel_preview(keepwell(), g.company, membership_id, on, request.args.get("at")))


@bp.get("/memberships/<membership_id>/tier_preview")
@needs("read")
def tier_preview(membership_id: str) -> ResponseReturnValue:
    on = _iso_date(request.args["on"], "on") if request.args.get("on") else companies.today(keepwell(), g.company)
    tier = request.args.get("tier")
    if not tier:
        raise InvalidDocument.field("tier", "name the tier to move to")
    return jsonify(memberships.change_tier_preview(keepwell(), g.company, membership_id, tier, on,
                                                   request.args.get("at")))


@bp.post("/memberships/migrate")
@needs("admin")
@idempotent
def migrate_memberships() -> ResponseReturnValue:
    """Move a plan's active memberships to another of its versions: a preview, or (apply) done,
    each as a `migrated` event of its own."""
    body = validated("MigrateIn", _body())
    rows = memberships.move(keepwell(), g.company, body["plan"], body["to"], bool(body.get("apply")))
    return jsonify({"applied": bool(body.get("apply")), "memberships": rows})


@bp.post("/memberships/<membership_id>/cancel")
@needs("memberships:write")
@idempotent
def cancel_membership(membership_id: str) -> ResponseReturnValue:
    body = validated("CancelIn", _body() if request.content_length else {})
    result = memberships.cancel(keepwell(), g.company, membership_id, _day(body, "on"), body.get("at"))
    if result.get("status") == "declined":
        return _event_answer(result)
    return jsonify(result)


@bp.post("/memberships/<membership_id>/tier")
@needs("memberships:write")
@idempotent
def change_tier(membership_id: str) -> ResponseReturnValue:
    body = validated("TierChangeIn", _body())
    changed = memberships.change_tier(keepwell(), g.company, membership_id, body["tier"], _day(body, "on"),
                                      body.get("at"))
    return jsonify({**changed.to_dict(), "enrolment": changed.result}), 201


@bp.post("/memberships/<membership_id>/renewal")
@needs("memberships:write")
@idempotent
def set_renewal(membership_id: str) -> ResponseReturnValue:
    body = validated("RenewalIn", _body())
    return jsonify(memberships.set_renewal(keepwell(), g.company, membership_id, body["auto_renewal"]))


@bp.get("/memberships/<membership_id>/statement")
@needs("read")
def statement(membership_id: str) -> ResponseReturnValue:
    return jsonify(memberships.statement(keepwell(), g.company, membership_id, _date_arg("from"), _date_arg("to")))


@bp.get("/memberships/<membership_id>/statement.pdf")
@needs("read")
def statement_pdf(membership_id: str) -> ResponseReturnValue:
    pdf = memberships.statement_document(keepwell(), g.company, _date_arg("from"), _date_arg("to"),
                                         membership_id=membership_id)
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="statement-{membership_id}.pdf"'})


@bp.get("/reports")
@needs("read")
def list_reports() -> ResponseReturnValue:
    return jsonify({"reports": reports.list_reports(keepwell(), g.company)})


REPORT_FILTERS = ("from", "to", "location", "plan", "tier", "membership", "customer")


@bp.get("/reports/<report>")
@needs("read")
def run_report(report: str) -> ResponseReturnValue:
    filters = {k: request.args[k] for k in REPORT_FILTERS if request.args.get(k)}
    fmt = request.args.get("format") or "json"
    if fmt == "json":
        return jsonify(reports.run(keepwell(), g.company, report, **filters))
    made = reports.export(keepwell(), g.company, report, fmt, **filters)
    return Response(made.content, mimetype=made.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{made.filename}"'})


@bp.get("/report_schedules")
@needs("read")
def list_report_schedules() -> ResponseReturnValue:
    return jsonify({"report_schedules": [s.to_dict() for s in reports.list_schedules(keepwell(), g.company)]})


@bp.post("/report_schedules")
@needs("admin")
@idempotent
def add_report_schedule() -> ResponseReturnValue:
    body = validated("ReportScheduleIn", _body())
    cadence = body["cadence"]
    spec = reports.ScheduleIn(
        report=body["report"], cadence=cadence,
        range=body.get("range") or ("last-week" if cadence == "weekly" else "last-month"),
        format=body.get("format") or "pdf", recipients=tuple(body["recipients"]), weekday=body.get("weekday"),
        day=body.get("day"), location=body.get("location"), plan=body.get("plan"), tier=body.get("tier"),
        created_by=f"API key {g.grant.name}" if g.grant.name else "an API key")
    return jsonify(reports.add_schedule(keepwell(), g.company, spec).to_dict()), 201


@bp.delete("/report_schedules/<int:schedule_id>")
@needs("admin")
def remove_report_schedule(schedule_id: int) -> ResponseReturnValue:
    reports.remove_schedule(keepwell(), g.company, schedule_id)
    return Response(status=204)


@bp.get("/rulesets")
@needs("read")
def list_rulesets() -> ResponseReturnValue:
    return jsonify({"rulesets": rulesets.list_rulesets(keepwell(), g.company)})


def _author() -> str:
    return "API key"  # what a version's history says published it


def _published(p: Any) -> dict[str, Any]:
    return {"ref": p.ref, "version": p.version, "created": p.created}


@bp.get("/rulesets/<key>")
@needs("read")
def ruleset_versions(key: str) -> ResponseReturnValue:
    found = rulesets.versions_of(keepwell(), g.company, key)
    if not found:
        raise NotFound(f"no ruleset {key!r}")
    return jsonify({"id": key, "versions": found})


@bp.get("/rulesets/<key>/versions/<int:version>")
@needs("read")
def ruleset_version(key: str, version: int) -> ResponseReturnValue:
    return jsonify(rulesets.show(keepwell(), g.company, f"{key}@{version}"))


@bp.get("/rulesets/<key>/diff")
@needs("read")
def ruleset_diff(key: str) -> ResponseReturnValue:
    a, b = _int_arg("from", 0), _int_arg("to", 0)
    if not (a and b):
        missing = [n for n, v in (("from", a), ("to", b)) if not v]
        raise InvalidDocument("bad query", [Problem(n, "a version number such as 2") for n in missing])
    return jsonify({"from": f"{key}@{a}", "to": f"{key}@{b}",
                    "diff": rulesets.diff(keepwell(), g.company, f"{key}@{a}", f"{key}@{b}")})


@bp.post("/rulesets/validate")
@needs("read")
@idempotent
def validate_rulesets() -> ResponseReturnValue:
    body = validated("RulesetsValidateIn", _body())
    found = [[p.to_dict() for p in rulesets.validate([(f"document {i + 1}", d)])]
             for i, d in enumerate(body["documents"])]
    return jsonify({"valid": not any(found),
                    "documents": [{"index": i, "valid": not errs, "errors": errs} for i, errs in enumerate(found)]})


@bp.post("/rulesets")
@needs("admin")
@idempotent
def save_ruleset() -> ResponseReturnValue:
    """A document saved as the ruleset's draft, or (publish: true) published as its next version."""
    body = validated("RulesetIn", _body())
    doc = body["document"]
    if body.get("publish"):
        on = _day(body, "effective_from")
        return jsonify(_published(rulesets.save_and_publish(keepwell(), g.company, doc, _author(), on))), 201
    problems = rulesets.save_draft(keepwell(), g.company, doc, _author())
    return jsonify({"id": (doc.get("metadata") or {}).get("id"), "draft": True, "valid": not problems,
                    "errors": [p.to_dict() for p in problems]}), 200


@bp.post("/rulesets/<key>/rollback")
@needs("admin")
@idempotent
def rollback_ruleset(key: str) -> ResponseReturnValue:
    body = validated("RollbackIn", _body())
    on = _day(body, "effective_from") if body.get("effective_from") else None
    return jsonify(_published(rulesets.rollback(keepwell(), g.company, key, body["to_version"], _author(), on))), 201


@bp.get("/packs")
@needs("read")
def list_packs() -> ResponseReturnValue:
    return jsonify({"packs": [p.to_dict() for p in packs.available()]})


@bp.post("/packs/<name>/install")
@needs("admin")
@idempotent
def install_pack(name: str) -> ResponseReturnValue:
    """Publish every ruleset of a shipped pack (with its parameters), all or none."""
    body = validated("PackInstallIn", _body())
    pack = packs.shipped(name)
    on = _day(body, "effective_from") if body.get("effective_from") else packs.DEFAULT_FROM
    refs = packs.install(keepwell(), g.company, pack, _author(), on, body.get("values") or None)
    return jsonify({"pack": name, "published": refs}), 201


@bp.get("/company")
@needs("read")
def company_settings() -> ResponseReturnValue:
    return jsonify(companies.details(keepwell(), g.company))


@bp.patch("/company")
@needs("admin")
def update_company() -> ResponseReturnValue:
    body = validated("CompanyUpdate", _body())
    companies.update(keepwell(), g.company, **body)
    return jsonify(companies.details(keepwell(), g.company))


@bp.get("/api_keys")
@needs("admin")
def list_api_keys() -> ResponseReturnValue:
    return jsonify({"api_keys": apikeys.list_keys(keepwell(), g.company)})


@bp.post("/api_keys")
@needs("admin")
@idempotent
def create_api_key() -> ResponseReturnValue:
    body = validated("ApiKeyIn", _body())
    issued = apikeys.issue(keepwell(), g.company, body["name"], body.get("scopes") or apikeys.DEFAULT_SCOPES)
    return jsonify(issued), 201


@bp.delete("/api_keys/<int:key_id>")
@needs("admin")
def revoke_api_key(key_id: int) -> ResponseReturnValue:
    apikeys.revoke(keepwell(), g.company, key_id)
    return Response(status=204)


@bp.get("/webhook_endpoints")
@needs("admin")
def list_webhook_endpoints() -> ResponseReturnValue:
    return jsonify({"webhook_endpoints": webhooks.listing(keepwell(), g.company), "event_types": webhooks.TYPES})


@bp.post("/webhook_endpoints")
@needs("admin")
@idempotent
def add_webhook_endpoint() -> ResponseReturnValue:
    body = validated("WebhookEndpointIn", _body())
    return jsonify(webhooks.add(keepwell(), g.company, body["url"], body["event_types"], body.get("description"))), 201


@bp.get("/webhook_endpoints/<int:endpoint_id>")
@needs("admin")
def get_webhook_endpoint(endpoint_id: int) -> ResponseReturnValue:
    return jsonify(webhooks.get(keepwell(), g.company, endpoint_id))


@bp.patch("/webhook_endpoints/<int:endpoint_id>")
@needs("admin")
def update_webhook_endpoint(endpoint_id: int) -> ResponseReturnValue:
    body = validated("WebhookEndpointUpdate", _body())
    return jsonify(webhooks.update(keepwell(), g.company, endpoint_id, body.get("url"), body.get("event_types"),
                                   body.get("description"), body.get("enabled")))


@bp.delete("/webhook_endpoints/<int:endpoint_id>")
@needs("admin")
def remove_webhook_endpoint(endpoint_id: int) -> ResponseReturnValue:
    webhooks.remove(keepwell(), g.company, endpoint_id)
    return Response(status=204)


@bp.post("/webhook_endpoints/<int:endpoint_id>/replay")
@needs("admin")
@idempotent
def replay_webhooks(endpoint_id: int) -> ResponseReturnValue:
    """Send again what the endpoint missed (its dead or skipped messages) between two days."""
    body = validated("ReplayIn", _body())
    ids = messaging.replay_range(keepwell(), g.company, _iso_date(body["from"], "from"), _iso_date(body["to"], "to"),
                                 "webhook", endpoint_id)
    return jsonify({"replayed": len(ids), "messages": ids})


@bp.get("/webhook_endpoints/<int:endpoint_id>/deliveries")
@needs("admin")
def webhook_deliveries(endpoint_id: int) -> ResponseReturnValue:
    limit = _limit()
    return jsonify({"deliveries": webhooks.deliveries(keepwell(), g.company, endpoint_id, limit)})


@bp.post("/simulations")
@needs("read")
@idempotent
def simulate() -> ResponseReturnValue:
    """{"draft": <ruleset document or list of them>, "from": "YYYY-MM-DD", "to": "YYYY-MM-DD",
    "events": [optional sample stream]}: what would change over the recorded events (or the
    sample stream) if the draft had been in force; nothing is written."""
    body = _body()
    problems = [Problem(k, "required") for k in ("draft", "from", "to") if not (isinstance(body, dict) and body.get(k))]
    if problems:
        raise InvalidDocument("simulation rejected", problems)
    try:
        start, end = date.fromisoformat(body["from"]), date.fromisoformat(body["to"])
    except (TypeError, ValueError):
        raise InvalidDocument("simulation rejected", [Problem("from/to", "dates as YYYY-MM-DD")]) from None
    stream = body.get("events")
    if stream is not None and not isinstance(stream, list):
        raise InvalidDocument("simulation rejected", [Problem("events", "a list of events")])
    try:
        return jsonify(run_simulation(keepwell(), g.company, body["draft"], start, end, stream))
    except simulation.SimulationTooLarge:
        url = current_app.extensions["keepwell_settings"].redis_url
        if not url:
            raise  # no workers to run it: the limits stand, with their reasons
    # Too large to answer now: checked against the background limits, then queued for a worker.
    simulation.check_size(simulation.BACKGROUND_LIMITS, keepwell().clock.now().date(), start, end, stream)
    drafts = body["draft"] if isinstance(body["draft"], list) else [body["draft"]]
    jid = jobs.enqueue_simulation(url, g.company, drafts, start, end, stream)
    return jsonify({"id": jid, "status": "queued", "status_url": f"/api/v1/simulations/{jid}"}), 202


@bp.get("/simulations/<job_id>")
@needs("read")
def simulation_status(job_id: str) -> ResponseReturnValue:
    """A background simulation: queued, started, finished (with its report) or failed (why)."""
    url = current_app.extensions["keepwell_settings"].redis_url
    found = jobs.simulation_status(url, g.company, job_id) if url else None
    if found is None:
        raise NotFound(f"no simulation {job_id!r}")
    return jsonify(found)
