"""alpaca-py's and requests' failures as the project's broker errors.

By what happened (``workbench.brokers.base``'s classes):

=====================================  ============================  ======================
what                                   on a write (submit, cancel)   on a read
=====================================  ============================  ======================
422 ``client_order_id must be unique``  ``DuplicateClientOrderId``    -
404                                    ``OrderNotFound``             None / ``OrderNotFound``
403, 422, other 4xx                    ``OrderRejected``             ``TemporaryBrokerError``
429                                    ``RateLimited``               ``RateLimited``
timeout, connection reset, 5xx         ``OutcomeUnknown``            ``TemporaryBrokerError``
price not placeable on the grid        ``OrderRejected`` (not sent)  -
=====================================  ============================  ======================

Messages pass through :func:`workbench.secrets.redact` and are raised ``from None``: the
alpaca-py frames of the original traceback hold the auth headers as locals.

"""

from __future__ import annotations

import json
import warnings

import requests

with warnings.catch_warnings():  # alpaca.common pulls in nothing that warns; kept uniform
    warnings.simplefilter("ignore", DeprecationWarning)
    from alpaca.common.exceptions import APIError

from workbench.brokers.alpaca.transport import RefusedStatus
from workbench.brokers.base import (
    DuplicateClientOrderId,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    TemporaryBrokerError,
)
from workbench.secrets import redact

__all__ = ["one_line", "translate"]

# Alpaca answers a duplicate client order id with 422 and this message. Its code,
# 40010001, is Alpaca's generic "invalid request" code (a bad quantity has it too), so the
# message decides: any other 422 is a rejection, never "it exists".
_DUPLICATE = "client_order_id must be unique"


def translate(e: Exception, what: str, write: bool, timeout: float) -> Exception:
    """The broker error for ``e`` raised while doing ``what`` (a write or a read);
    exceptions that are not transport or API failures come back unchanged. An error made
    from an HTTP answer carries its status as ``http_status``."""
    if isinstance(e, RefusedStatus):
        error = _refused(what, e, write)
        error.http_status = e.status
        return error
    if isinstance(e, APIError):
        error = _api_error(what, e, write)
        error.http_status = e.status_code
        return error
    if isinstance(e, requests.RequestException):
        kind = "timed out" if isinstance(e, requests.Timeout) or "timed out" in str(e) \
            else f"connection failed ({type(e).__name__})"
        if write:
            return OutcomeUnknown(redact(f"{what}: {kind} (timeout {timeout:g} s); it may "
                                         f"have taken effect: settle by lookup"))
        return TemporaryBrokerError(redact(f"{what}: {kind}"))
    if isinstance(e, (ValueError, KeyError, TypeError)):  # a malformed answer
        msg = redact(f"{what}: malformed answer from Alpaca: {type(e).__name__}: "
                     f"{one_line(str(e))}")
        return OutcomeUnknown(msg) if write else TemporaryBrokerError(msg)
    return e


def _refused(what: str, e: RefusedStatus, write: bool) -> Exception:
    detail = _message(e.text)
    if e.status == 429:
        wait = e.retry_after if e.retry_after is not None else 1.0
        return RateLimited(redact(f"{what}: Alpaca rate limit (HTTP 429: {detail}); not "
                                  f"processed, retry after {wait:g} s"), wait)
    if write:
        return OutcomeUnknown(redact(f"{what}: HTTP {e.status} ({detail}); it may have taken "
                                     f"effect: settle by lookup, never resend"))
    return TemporaryBrokerError(redact(f"{what}: HTTP {e.status} ({detail})"))


def _api_error(what: str, e: APIError, write: bool) -> Exception:
    status, text = e.status_code, str(e)
    detail = _message(text)
    if status == 422 and _DUPLICATE in detail.lower():
        return DuplicateClientOrderId(redact(f"{what}: {detail}"))
    if status == 404:
        return OrderNotFound(redact(f"{what}: not found (HTTP 404: {detail})"))
    if not write:
        return TemporaryBrokerError(redact(f"{what}: HTTP {status} ({detail})"))
    if status is not None and status >= 500:
        return OutcomeUnknown(redact(f"{what}: HTTP {status} ({detail}); settle by lookup"))
    return OrderRejected(redact(f"{what}: refused by Alpaca (HTTP {status}: {detail})"),
                         redact(f"HTTP {status}: {detail}"))


def _body(text: str):
    try:
        return json.loads(text)
    except (ValueError, TypeError):
        return None


def _message(text: str) -> str:
    body = _body(text)
    if isinstance(body, dict) and "message" in body:
        text = str(body["message"])
    return one_line(text) or "no message"


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."
