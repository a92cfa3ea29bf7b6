"""A customer's name, email and phone as they may be stored: checked at the boundary, with the
field's name in every refusal. Emails by email-validator (syntax and normalisation; no DNS
lookup), phone numbers by phonenumbers, stored in E.164 (+13035550100); a number written
without a country code is read in the company's country (`phone_region`)."""

from __future__ import annotations

import email_validator
import phonenumbers

from ..kernel.errors import InvalidDocument
from ..kernel.text import storable

NAME_MAX = 200
EMAIL_MAX = 254


def clean_name(name: object) -> str:
    if not isinstance(name, str):
        raise InvalidDocument.field("name", "must be text, such as \"Maria Garcia\"")
    name = storable("name", name.strip()) or ""
    if not name:
        raise InvalidDocument.field("name", "is required", "a customer needs a name")
    if len(name) > NAME_MAX:
        raise InvalidDocument.field("name", f"must be at most {NAME_MAX} characters (it has {len(name)})")
    return name


def clean_email(email: object) -> str | None:
    if email is None or email == "":
        return None
    if not isinstance(email, str):
        raise InvalidDocument.field("email", "must be text, such as \"maria@example.com\"")
    email = storable("email", email.strip()) or ""
    if len(email) > EMAIL_MAX:
        raise InvalidDocument.field("email", f"must be at most {EMAIL_MAX} characters")
    try:
        return email_validator.validate_email(email, check_deliverability=False).normalized
    except email_validator.EmailNotValidError as exc:
        raise InvalidDocument.field("email", f"{email!r} is not an email address: {exc}") from None


def clean_phone(phone: object, region: str = "US") -> str | None:
    if phone is None or phone == "":
        return None
    if not isinstance(phone, str):
        raise InvalidDocument.field("phone", "must be text, such as \"+1 303 555 0100\"")
    phone = storable("phone", phone.strip()) or ""
    example = "+1 303 555 0100" if region == "US" else "+44 20 7946 0958"
    try:
        number = phonenumbers.parse(phone[:40], region)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or (phonenumbers.is_possible_number_with_reason(number)
                          != phonenumbers.ValidationResult.IS_POSSIBLE):
        raise InvalidDocument.field("phone", f"{phone[:40]!r} is not a phone number: give it with its area code, "
                                    f"or in international form such as {example}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
