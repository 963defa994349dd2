"""
Identity normalisation for fraud checks: the same person behind two spellings of an e-mail address or a
phone number. Model-free; used by loyalty (self-referral), customers (e-mail domain) and the fraud rules.
"""

from __future__ import annotations

# Providers that ignore dots in the local part (Gmail-style). Every provider here also ignores `+tags`.
DOTLESS_DOMAINS = {"gmail.com": "gmail.com", "googlemail.com": "gmail.com"}
MAX_EMAIL = 320


def email_split(email: str) -> tuple[str, str]:
    """(local part, domain) of an address, lower-cased; ("", "") when it is not an address."""
    text = (email or "").strip().lower()[:MAX_EMAIL]
    local, sep, domain = text.rpartition("@")
    if not sep or not local or not domain:
        return "", ""
    return local, domain


def email_domain(email: str) -> str:
    """The address's domain, lower-cased ("" when none)."""
    return email_split(email)[1]


def email_normalize(email: str) -> str:
    """
    The mailbox an address delivers to: lower-cased, `+tag` dropped, and for Gmail-style providers the dots
    of the local part dropped and googlemail.com folded into gmail.com (`J.Doe+promo@GoogleMail.com` →
    `jdoe@gmail.com`). Two addresses with the same normal form reach the same person.
    """
    local, domain = email_split(email)
    if not local:
        return (email or "").strip().lower()[:MAX_EMAIL]
    local = local.split("+", 1)[0]
    if domain in DOTLESS_DOMAINS:
        domain = DOTLESS_DOMAINS[domain]
        local = local.replace(".", "")
    return f"{local}@{domain}"


def phone_normalize(phone: str) -> str:
    """Digits only, an international `00` prefix dropped (`+351 912-345-678` → `351912345678`)."""
    digits = "".join(ch for ch in (phone or "")[:64] if ch.isdigit() and ch.isascii())
    if digits.startswith("00"):
        digits = digits[2:]
    return digits


def phones_match(first: str, second: str) -> bool:
    """Same number, allowing one side to omit the country code (the last 9 digits agree)."""
    a, b = phone_normalize(first), phone_normalize(second)
    if len(a) < 6 or len(b) < 6:
        return False
    return a == b or (a[-9:] == b[-9:] and min(len(a), len(b)) >= 9)
