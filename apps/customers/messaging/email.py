"""
E-mail through Django's mail backends (SMTP, console, or any django-anymail provider backend configured by
`EMAIL_BACKEND` + `ANYMAIL`): one EmailMultiAlternatives per delivery (text + HTML), sent on a connection the
caller may reuse for a whole batch. Provider failures become `ProviderError`s: SMTP 4xx replies, lost
connections and HTTP 5xx/429 are transient; SMTP 5xx, HTTP 4xx and refused recipients are permanent.
"""

from __future__ import annotations

import smtplib
from email.utils import formataddr
from typing import Any

from anymail.exceptions import AnymailAPIError, AnymailRecipientsRefused  # type: ignore[import-untyped]  # no py.typed
from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.message import make_msgid

from .choices import DeliveryReason
from .errors import ProviderError, http_status_is_transient
from .models import Delivery


def email_connection() -> Any:
    """A connection of the configured backend; open it once and pass it to `email_send` for a batch."""
    return get_connection(fail_silently=False)


def email_sender() -> str:
    """From: the brand's sender ("Acme Club <club@acme.test>") when the brand names one, else DEFAULT_FROM_EMAIL."""
    from .templating.selectors import get_brand

    brand = get_brand()
    if brand.sender_email:
        return formataddr((brand.sender_name or brand.name, brand.sender_email))
    return settings.DEFAULT_FROM_EMAIL


def email_message(
    delivery: Delivery, *, headers: dict[str, str], connection: Any = None, from_email: str = ""
) -> EmailMultiAlternatives:
    message = EmailMultiAlternatives(
        subject=delivery.subject,
        body=delivery.text,
        from_email=from_email or settings.DEFAULT_FROM_EMAIL,
        to=[delivery.to],
        connection=connection,
        headers={"Message-ID": make_msgid(domain=settings.MESSAGING_MESSAGE_ID_DOMAIN), **headers},
    )
    if delivery.html:
        message.attach_alternative(delivery.html, "text/html")
    return message


def email_send(delivery: Delivery, *, headers: dict[str, str], connection: Any = None, from_email: str = "") -> str:
    """Send one delivery's e-mail; returns the provider's message id (the Message-ID for SMTP)."""
    message = email_message(delivery, headers=headers, connection=connection, from_email=from_email)
    try:
        message.send(fail_silently=False)
    except AnymailRecipientsRefused as error:
        raise ProviderError(str(error)[:500], transient=False, reason=DeliveryReason.INVALID_ADDRESS) from error
    except AnymailAPIError as error:
        status = getattr(error, "status_code", None)
        raise ProviderError(
            f"{status or 'no answer'}: {error}"[:500], transient=http_status_is_transient(status)
        ) from error
    except smtplib.SMTPRecipientsRefused as error:
        raise ProviderError(
            f"recipient refused: {error}"[:500], transient=False, reason=DeliveryReason.INVALID_ADDRESS
        ) from error
    except smtplib.SMTPResponseException as error:
        # SMTP: 4xx replies are temporary ("try again later"), 5xx permanent.
        code = int(error.smtp_code)
        _close(connection)
        raise ProviderError(f"SMTP {code}: {error.smtp_error!r}"[:500], transient=400 <= code < 500) from error
    except (smtplib.SMTPException, OSError) as error:  # lost connection, refused, timeout
        _close(connection)
        raise ProviderError(f"{type(error).__name__}: {error}"[:500], transient=True) from error
    status = getattr(message, "anymail_status", None)
    if status is not None and status.message_id is not None:
        return str(status.message_id)[:255]
    return str(message.extra_headers["Message-ID"])[:255]


def _close(connection: Any) -> None:
    """After a failed exchange the SMTP session is in an unknown state: the next send opens a new one."""
    if connection is not None:
        try:
            connection.close()
        except Exception:
            connection.connection = None
