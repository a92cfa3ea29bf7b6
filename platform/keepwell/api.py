"""The REST API (JSON). Every request is authenticated by a company API key and sees only that
company's data. Failures map to HTTP in one place (`errors`)."""

from __future__ import annotations

from datetime import date

from flask import Blueprint, current_app, g, jsonify, request

from .errors import InvalidDocument, KeepwellError, Problem

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def service():
    return current_app.extensions["keepwell"]


class Unauthorized(KeepwellError):
    code = "unauthorized"
    http_status = 401


@bp.before_request
def authenticate():
    header = request.headers.get("Authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if not secret:
        raise Unauthorized("send an API key: Authorization: Bearer <key> (create one with `keepwell apikeys create`)")
    from .tenancy import company_for_key

    with current_app.extensions["keepwell_read"]() as session:
        company = company_for_key(session, secret)
        if company is None:
            raise Unauthorized("unknown or revoked API key")
        g.company = company.slug


@bp.errorhandler(KeepwellError)
def errors(exc: KeepwellError):
    return jsonify({"error": exc.to_dict()}), exc.http_status


def _body() -> dict | list:
    data = request.get_json(silent=True)
    if data is None:
        raise InvalidDocument("request body must be JSON", [Problem("(body)", "not JSON")])
    return data


def _date_arg(name: str) -> date:
    raw = request.args.get(name, "")
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise InvalidDocument("bad query", [Problem(name, f"{raw!r} is not a date (YYYY-MM-DD)")]) from None


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit():
        raise InvalidDocument("bad query", [Problem(name, f"{raw!r} is not a whole number of 0 or more")])
    return int(raw)


@bp.post("/events")
def post_events():
    """One event object, or {"events": [...]} (each processed on its own; results in order)."""
    body = _body()
    if isinstance(body, dict) and isinstance(body.get("events"), list):
        results = []
        for payload in body["events"]:
            try:
                results.append(service().post_event(payload, company=g.company))
            except KeepwellError as exc:
                results.append({"event": payload.get("id") if isinstance(payload, dict) else None,
                                "status": "rejected", "error": exc.to_dict()})
        return jsonify({"results": results})
    result = service().post_event(body, company=g.company)
    return jsonify(result), 200 if result.get("duplicate") else 201


@bp.post("/customers")
def add_customer():
    body = _body()
    if not isinstance(body, dict) or not body.get("name"):
        raise InvalidDocument("customer rejected", [Problem("name", "required")])
    cid = service().add_customer(body["name"], body.get("email"), company=g.company)
    return jsonify({"id": cid, "name": body["name"], "email": body.get("email")}), 201


@bp.get("/customers")
def list_customers():
    import sqlalchemy as sa

    from .models import Customer

    limit = min(_int_arg("limit", 50), 500)
    offset = _int_arg("offset", 0)
    rows = service().run(g.company, lambda c: [
        {"id": x.id, "name": x.name, "email": x.email}
        for x in c.session.scalars(sa.select(Customer).where(Customer.company_id == c.company.id)
                                   .order_by(Customer.created_at, Customer.id).limit(limit).offset(offset))])
    return jsonify({"customers": rows, "limit": limit, "offset": offset})


@bp.get("/customers/<customer_id>/points")
def customer_points(customer_id: str):
    return jsonify(service().points(customer_id, company=g.company))


@bp.post("/enrollments")
def enroll():
    body = _body()
    problems = [Problem(k, "required") for k in ("customer", "plan", "on") if not (isinstance(body, dict) and body.get(k))]
    if problems:
        raise InvalidDocument("enrolment rejected", problems)
    try:
        on = date.fromisoformat(body["on"])
    except ValueError:
        raise InvalidDocument("enrolment rejected", [Problem("on", "not a date (YYYY-MM-DD)")]) from None
    result = service().enroll(body["customer"], body["plan"], on, tier=body.get("tier"), key=body.get("id"), company=g.company)
    return jsonify(result), 201 if result.get("status") == "processed" else 200


@bp.get("/memberships/<membership_id>")
def membership(membership_id: str):
    return jsonify(service().membership(membership_id, company=g.company))


@bp.get("/memberships/<membership_id>/statement")
def statement(membership_id: str):
    return jsonify(service().statement(membership_id, _date_arg("from"), _date_arg("to"), company=g.company))


@bp.get("/rulesets")
def rulesets():
    from . import versions

    return jsonify({"rulesets": service().run(g.company, lambda c: versions.list_rulesets(c.session, c.company.id))})


@bp.post("/simulations")
def simulate():
    """{"draft": <ruleset document or list of them>, "from": "YYYY-MM-DD", "to": "YYYY-MM-DD",
    "events": [optional sample stream]}: what would change over the recorded events (or the
    sample stream) if the draft had been in force; nothing is written."""
    from .simulation import simulate as run

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
    return jsonify(run(service(), g.company, body["draft"], start, end, stream))
