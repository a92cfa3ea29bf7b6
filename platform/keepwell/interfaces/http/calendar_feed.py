"""Private calendar feeds at /calendar/<token>.ics: a technician's or a customer's visits as
iCalendar, for calendar apps (which cannot sign in: the unguessable token is the key; rotate it
with `keepwell technicians calendar --rotate` or the API)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app
from flask.typing import ResponseReturnValue

from ...kernel.errors import NotFound
from ...usecases import scheduling

bp = Blueprint("calendar", __name__)


@bp.get("/calendar/<token>.ics")
def feed(token: str) -> ResponseReturnValue:
    try:
        body = scheduling.calendar_feed(current_app.extensions["keepwell"], token)
    except NotFound as exc:
        return Response(exc.message + "\n", status=404, mimetype="text/plain")
    response = Response(body, mimetype="text/calendar")
    response.headers["Cache-Control"] = "private, max-age=300"
    response.headers["Content-Disposition"] = 'inline; filename="visits.ics"'
    return response
