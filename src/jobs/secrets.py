"""Secrets: read once, never shown; and where the marketplace they unlock is.

A `Secret` prints as `***` in logs, reprs and f-strings; only `reveal()` gives the
value, at the one place that sends it (an HTTP header).
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

from customer_activity.jobs.errors import ConfigurationError

logger = logging.getLogger(__name__)

API_KEY_VARIABLE = "ENTROPY_DATA_API_KEY"
HOST_VARIABLE = "ENTROPY_DATA_HOST"
DEFAULT_HOST = "https://api.entropy-data.com"
DEFAULT_SECRET_KEY = "entropy-data-api-key"


class Secret:
    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("a secret cannot be empty")
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not serialisable")


def redact(text: str, *secrets: Secret | None) -> str:
    """`text` with every secret's value replaced, for messages built from foreign text."""
    for secret in secrets:
        if secret is not None:
            text = text.replace(secret.reveal(), "***")
    return text


# `scheme://user:password@` (or `scheme://token@`): the credentials part of a URL. The
# password may itself hold an `@`: the credentials end at the last one before the path.
_URL_CREDENTIALS = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.-]*://)[^\s/?#]+@")


def mask_url_credentials(text: str) -> str:
    """`text` with the user and password of every URL in it replaced by `***`."""
    return _URL_CREDENTIALS.sub(r"\g<scheme>***@", text)


def mask_credentials_in_logs() -> None:
    """Make every log record, of any logger, mask credentials in the URLs it names.

    A record factory rather than a handler filter: it holds for handlers added later
    (by Spark, by libraries, by a test's log capture) too. The message, the traceback
    and the stack are masked; logging formats the traceback from the masked text.
    """
    previous = logging.getLogRecordFactory()
    if getattr(previous, "masks_url_credentials", False):
        return

    def masking(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            _mask_record(record)
        except Exception:  # noqa: BLE001 - a record that cannot be masked is still logged, as logging would
            return record
        return record

    masking.masks_url_credentials = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(masking)


class _MaskedError(Exception):
    """A logged exception's message, credentials masked, in its place."""


def _mask_record(record: logging.LogRecord) -> None:
    message = record.getMessage()
    masked = mask_url_credentials(message)
    if masked != message:
        record.msg, record.args = masked, ()
    if record.exc_info and record.exc_info[1] is not None and not record.exc_text:
        kind, value, trace = record.exc_info
        text = logging.Formatter().formatException(record.exc_info)
        if mask_url_credentials(text) != text:
            # Standard formatters print exc_text when it is set; others (PySpark's JSON
            # one) read the exception itself, so it is swapped for a masked stand-in.
            record.exc_text = mask_url_credentials(text)
            record.exc_info = (kind, _MaskedError(mask_url_credentials(str(value))), trace)
    if record.stack_info:
        record.stack_info = mask_url_credentials(record.stack_info)


def api_key_from_environment() -> Secret | None:
    value = os.environ.get(API_KEY_VARIABLE, "").strip()
    return Secret(value) if value else None


def api_key_from_databricks(scope: str, key: str) -> Secret | None:
    """The marketplace API key from a Databricks secret scope; None when it is not there.

    Read through databricks-sdk, which uses the runtime's own dbutils on Databricks.
    """
    # Importing databricks-sdk takes about two seconds; only this path needs it.
    from databricks.sdk import WorkspaceClient  # noqa: PLC0415
    from databricks.sdk.errors import NotFound, PermissionDenied  # noqa: PLC0415

    try:
        value = WorkspaceClient().dbutils.secrets.get(scope=scope, key=key)
    except NotFound:
        logger.warning("secret %s/%s does not exist: nothing goes to the marketplace with it", scope, key)
        return None
    except PermissionDenied as error:
        raise ConfigurationError(f"no permission to read secret {scope}/{key}: {error}") from None
    return Secret(value) if value else None


def configured_api_key(secret_scope: str | None, secret_key: str) -> Secret | None:
    """The marketplace API key: ENTROPY_DATA_API_KEY, else the Databricks secret scope, else None."""
    api_key = api_key_from_environment()
    if api_key is None and secret_scope:
        api_key = api_key_from_databricks(secret_scope, secret_key)
    return api_key


def marketplace_host(host: str | None = None) -> str:
    """The Entropy Data API to talk to: `host`, else ENTROPY_DATA_HOST, else Entropy Data's own."""
    return host or os.environ.get(HOST_VARIABLE) or DEFAULT_HOST
