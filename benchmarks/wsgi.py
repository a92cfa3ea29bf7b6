"""The baseline web app of the HTTP load benchmark (benchmarks/http_load.py), served by gunicorn
exactly as Keepwell is: `gunicorn -w 4 'benchmarks.wsgi:baseline_app()'`, configured by
KEEPWELL_DATABASE_URL.

It is the "framework + database floor" of one idempotent POS charge: the same Flask, the same
SQLAlchemy engine (`keepwell.infra.database.make_engine`: same driver, pool, pre-ping, SQLite pragmas and
BEGIN IMMEDIATE), the same request (an `Authorization: Bearer` header and the same JSON event),
and one transaction that INSERTs the event, keyed unique on its id, into a table shaped like
Keepwell's events table, answering 201 (or 200 for a repeated id, as Keepwell does). Everything
Keepwell does beyond that — API-key lookup, customer row lock, membership and plan lookups,
rules, ledger entries, points, outbox, the result read back — is what the ratio measures.
(`/healthz` would be a poorer floor: it only reads, and a charge is a write.)
"""

from __future__ import annotations

import os

import sqlalchemy as sa

METADATA = sa.MetaData()
EVENTS = sa.Table(
    "bench_http_events", METADATA,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
    sa.Column("key", sa.String(200), nullable=False, unique=True),
    sa.Column("type", sa.String(40), nullable=False),
    sa.Column("customer_id", sa.String(40), nullable=False),
    sa.Column("amount_cents", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.func.now()),
)


def create_table(engine) -> None:
    METADATA.drop_all(engine)
    METADATA.create_all(engine)


def baseline_app():
    from flask import Flask, jsonify, request

    from keepwell.infra.database import make_engine
    from keepwell.infra.settings import Settings
    from keepwell.kernel.money import to_cents

    engine = make_engine(Settings.from_env(os.environ).database_url)
    app = Flask(__name__)

    @app.get("/healthz")
    def health():
        return jsonify({"ok": True})

    @app.post("/api/v1/events")
    def post_event():
        if not request.headers.get("Authorization", "").lower().startswith("bearer "):
            return jsonify({"error": {"code": "unauthorized"}}), 401
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not body.get("id"):
            return jsonify({"error": {"code": "invalid_document"}}), 400
        row = {"key": body["id"], "type": body["type"], "customer_id": body["customer"],
               "amount_cents": to_cents(body["data"]["amount"]), "payload": body}
        try:
            with engine.begin() as conn:
                conn.execute(EVENTS.insert(), row)
        except sa.exc.IntegrityError:
            return jsonify({"event": body["id"], "status": "approved", "duplicate": True}), 200
        return jsonify({"event": body["id"], "status": "approved", "duplicate": False}), 201

    return app
