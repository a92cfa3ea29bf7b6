"""What every composition root builds from the settings: the use cases' service and the
channels messages leave by."""

from __future__ import annotations

from typing import Any

from ..infra.settings import Settings
from ..usecases import Keepwell, billing
from ..usecases.messaging import Channel, ChannelSettings, channels_from


def gateways(settings: Settings) -> dict[str, Any]:
    """The payment gateways beside the sandbox: Stripe when a key is set."""
    return billing.gateways(settings.stripe_api_key, settings.stripe_api_base, settings.http_timeout)


def open_app(settings: Settings) -> Keepwell:
    return Keepwell.open(settings.database_url, key_cache_seconds=settings.api_key_cache_seconds,
                         ping_idle_seconds=settings.db_ping_idle_seconds, gateways=gateways(settings))


def channel_settings(settings: Settings) -> ChannelSettings:
    return ChannelSettings(
        smtp_host=settings.smtp_host, smtp_port=settings.smtp_port, smtp_tls=settings.smtp_tls,
        smtp_user=settings.smtp_user, smtp_password=settings.smtp_password, mail_from=settings.mail_from,
        sms_provider=settings.sms_provider, sms_file=settings.sms_file, sms_from=settings.sms_from,
        twilio_account_sid=settings.twilio_account_sid, twilio_auth_token=settings.twilio_auth_token,
        twilio_base_url=settings.twilio_base_url, http_timeout=settings.http_timeout,
        webhook_networks=settings.webhook_networks)


def channels(settings: Settings) -> dict[str, Channel]:
    return channels_from(channel_settings(settings), settings.webhook_secret)
