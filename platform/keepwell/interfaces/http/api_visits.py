"""The REST API's visits: service durations, technicians, visits (schedule, reschedule, cancel,
complete) and private calendar feeds. Views on the API's blueprint (`api.bp`: the same key,
scopes and errors); each parses, calls one use case and renders."""

from __future__ import annotations

from datetime import date

from flask import g, jsonify, request
from flask.typing import ResponseReturnValue

from ...usecases import scheduling
from .api import _body, _iso_date, bp, idempotent, keepwell, needs
from .contract import validated


def _day_arg(name: str) -> date | None:
    raw = request.args.get(name)
    return _iso_date(raw, name) if raw is not None else None


@bp.get("/service_durations")
@needs("read")
def list_service_durations() -> ResponseReturnValue:
    return jsonify({"durations": scheduling.list_durations(keepwell(), g.company)})


@bp.post("/service_durations")
@needs("admin")
@idempotent
def set_service_duration() -> ResponseReturnValue:
    body = validated("ServiceDurationIn", _body())
    return jsonify(scheduling.set_duration(keepwell(), g.company, body["service_code"], body["minutes"]))


@bp.get("/technicians")
@needs("read")
def list_technicians() -> ResponseReturnValue:
    return jsonify({"technicians": scheduling.list_technicians(keepwell(), g.company)})


@bp.post("/technicians")
@needs("admin")
@idempotent
def add_technician() -> ResponseReturnValue:
    body = validated("TechnicianIn", _body())
    return jsonify(scheduling.add_technician(keepwell(), g.company, body["name"], body["hours"], body.get("email"),
                                             body.get("capacity", 6), body.get("skills"),
                                             body.get("home_location"))), 201


@bp.get("/technicians/<technician_id>")
@needs("read")
def get_technician(technician_id: str) -> ResponseReturnValue:
    return jsonify(scheduling.get_technician(keepwell(), g.company, technician_id))


@bp.post("/technicians/<technician_id>/time_off")
@needs("admin")
@idempotent
def add_time_off(technician_id: str) -> ResponseReturnValue:
    body = validated("TimeOffIn", _body())
    last = _iso_date(body["to"], "to") if body.get("to") else None
    return jsonify(scheduling.add_time_off(keepwell(), g.company, technician_id, _iso_date(body["from"], "from"),
                                           last, body.get("reason"))), 201


@bp.post("/technicians/<technician_id>/calendar")
@needs("admin")
def technician_calendar(technician_id: str) -> ResponseReturnValue:
    body = validated("CalendarIn", _body())
    return jsonify(scheduling.calendar_token(keepwell(), g.company, "technician", technician_id,
                                             bool(body.get("rotate"))))


@bp.post("/customers/<customer_id>/calendar")
@needs("admin")
def customer_calendar(customer_id: str) -> ResponseReturnValue:
    body = validated("CalendarIn", _body())
    return jsonify(scheduling.calendar_token(keepwell(), g.company, "customer", customer_id,
                                             bool(body.get("rotate"))))


@bp.get("/visits")
@needs("read")
def list_visits() -> ResponseReturnValue:
    args = request.args
    return jsonify({"visits": scheduling.list_visits(keepwell(), g.company, args.get("technician"),
                                                     args.get("customer"), _day_arg("from"), _day_arg("to"),
                                                     args.get("status"))})


@bp.post("/visits")
@needs("visits:write")
@idempotent
def schedule_visit() -> ResponseReturnValue:
    body = validated("VisitIn", _body())
    return jsonify(scheduling.schedule_visit(keepwell(), g.company, body["customer"], body["service_code"],
                                             body["start"], body.get("technician"), body.get("membership"),
                                             body.get("request"))), 201


@bp.get("/visits/<visit_id>")
@needs("read")
def get_visit(visit_id: str) -> ResponseReturnValue:
    return jsonify(scheduling.get_visit(keepwell(), g.company, visit_id))


@bp.post("/visits/<visit_id>/reschedule")
@needs("visits:write")
@idempotent
def reschedule_visit(visit_id: str) -> ResponseReturnValue:
    body = validated("RescheduleIn", _body())
    return jsonify(scheduling.reschedule_visit(keepwell(), g.company, visit_id, body["start"],
                                               body.get("technician")))


@bp.post("/visits/<visit_id>/cancel")
@needs("visits:write")
@idempotent
def cancel_visit(visit_id: str) -> ResponseReturnValue:
    body = validated("VisitCancelIn", _body())
    return jsonify(scheduling.cancel_visit(keepwell(), g.company, visit_id, body["by"], body.get("reason")))


@bp.post("/visits/<visit_id>/complete")
@needs("visits:write")
@idempotent
def complete_visit(visit_id: str) -> ResponseReturnValue:
    body = validated("VisitCompleteIn", _body())
    return jsonify(scheduling.complete_visit(keepwell(), g.company, visit_id, body.get("amount")))
