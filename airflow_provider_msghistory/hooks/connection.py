"""Airflow connection fields -> ClientConfig, and the connection form's metadata, both generated from the
connection options the dialects and ``client/options.py`` declare (no vendor is named here).

Pure Python (no Airflow import), so ``get_provider_info`` can read the declarative form metadata that
Airflow >= 3.2 prefers, and tests can check the mapping without a metadata database.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit, urlunsplit

from airflow_provider_msghistory.client.config import DEFAULT_BASE_URL, ClientConfig, validate_base_url
from airflow_provider_msghistory.client.dialects import (
    DEFAULT_VENDOR,
    connection_options,
    credential_forms,
    dialect_class,
    make_dialect,
)
from airflow_provider_msghistory.client.options import CONFIG_FIELDS, ConnectionOption

CONN_TYPE = "msghistory"
HOST_FIELD = "host (API base URL)"

#: every connection extra, as the vendors and the client declare them
EXTRA_FIELDS: dict[str, ConnectionOption] = {option.name: option for option in connection_options()}


def _example(option: ConnectionOption) -> bool:
    """Whether the extra JSON's placeholder shows the option (those a user is likely to set)."""
    return bool(option.default) and option.type in ("string", "integer")


UI_FIELD_BEHAVIOUR: dict[str, Any] = {
    "hidden_fields": ["schema", "port"],
    "relabeling": {
        "host": "API base URL",
        "password": "API key (or login password)",
        "login": "Username (login + password forms only)",
    },
    "placeholders": {
        "host": DEFAULT_BASE_URL,
        "password": credential_forms(),
        "login": "leave empty when the password field holds an API key",
        **{o.name: o.placeholder for o in EXTRA_FIELDS.values() if o.placeholder},
        "extra": json.dumps({o.name: o.default for o in EXTRA_FIELDS.values() if _example(o)}),
    },
}


def _schema(option: ConnectionOption) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [option.type, "null"], "default": option.default}
    if option.choices:
        schema["enum"] = list(option.choices)
    if option.minimum is not None:
        schema["minimum"] = option.minimum
    return schema


def provider_connection_metadata() -> dict[str, Any]:
    """``conn-fields`` and ``ui-field-behaviour`` in the provider-info form read by Airflow >= 3.2."""
    conn_fields = {
        name: {"label": option.label, "description": option.description, "schema": _schema(option)}
        for name, option in EXTRA_FIELDS.items()
    }
    behaviour = {
        "hidden-fields": UI_FIELD_BEHAVIOUR["hidden_fields"],
        "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
        "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
    }
    return {"conn-fields": conn_fields, "ui-field-behaviour": behaviour}


def base_url_from_fields(host: str | None, port: int | None = None, schema: str | None = None) -> str:
    """The API base URL from the connection's host (with or without scheme) and, from a URI, port/schema."""
    text = (host or "").strip()
    if not text:
        return DEFAULT_BASE_URL
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        has_port = parts.port is not None
    except ValueError:
        return validate_base_url(text, HOST_FIELD)  # raises, naming the field
    netloc = parts.netloc
    if port and not has_port and "@" not in netloc:
        netloc = f"{netloc}:{int(port)}"
    path = parts.path
    if schema and path in ("", "/"):
        path = "/" + schema.strip("/")
    return validate_base_url(
        urlunsplit((parts.scheme, netloc, path, parts.query, parts.fragment)), HOST_FIELD
    )


def _extra(extra: Mapping[str, Any], name: str) -> Any:
    """An extra by plain name, or by the ``extra__msghistory__`` prefix older forms wrote; '' = unset."""
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        value = extra.get(key)
        if value is not None and value != "":
            return value
    return None


def _number(conn_id: str, name: str, value: Any, integer: bool = False) -> float | int | None:
    if value is None:
        return None
    example = "5" if integer else "30"
    try:
        if isinstance(value, bool) or not math.isfinite(float(value)):
            raise ValueError
        number = int(value) if integer else float(value)
        if integer and float(value) != number:
            raise ValueError
    except (TypeError, ValueError, OverflowError):
        raise ValueError(
            f"Connection {conn_id!r} extra {name!r}: {value!r} is not a number; use e.g. {example}"
        ) from None
    if number <= 0:
        raise ValueError(f"Connection {conn_id!r} extra {name!r}: must be positive, e.g. {example}")
    return number


def _verify(conn_id: str, value: Any) -> bool | str:
    if value is None or isinstance(value, bool):
        return True if value is None else value
    text = str(value).strip()
    if text.lower() in ("true", "1", "yes", "on"):
        return True
    if text.lower() in ("false", "0", "no", "off"):
        return False
    if text.startswith(("/", "~", ".")) or text.endswith((".pem", ".crt")):
        return text  # a CA bundle path
    raise ValueError(
        f"Connection {conn_id!r} extra 'verify': {value!r} is neither true/false nor a CA bundle path; "
        "use e.g. true or /etc/ssl/certs/ca.pem"
    )


def config_from_connection(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None,
    port: int | None = None,
    schema: str | None = None,
) -> ClientConfig:
    """A :class:`ClientConfig` from a connection's fields; ``ValueError`` names the faulty field."""
    extra = extra or {}
    base_url = base_url_from_fields(host, port, schema)
    vendor = str(_extra(extra, "vendor") or DEFAULT_VENDOR).strip().lower()
    try:
        dialect_class(vendor)  # unknown vendor -> ValueError listing the supported ones
    except ValueError as error:
        raise ValueError(f"Connection {conn_id!r} extra {error}") from None
    secret = password or ""
    if login and not secret:
        raise ValueError(
            f"Connection {conn_id!r}: login is set but the password is empty; a login needs both "
            "(or leave login empty and put the API key in the password field)"
        )
    if not secret.strip():
        raise ValueError(
            f"Connection {conn_id!r}: the API key is empty; put it in the connection's password field"
        )
    credentials: dict[str, str] = (
        {"username": login, "password": secret} if login else {"api_key": secret.strip()}
    )
    tuning = {
        name: _number(conn_id, name, _extra(extra, name), integer=EXTRA_FIELDS[name].type == "integer")
        for name in CONFIG_FIELDS - {"verify"}
    }
    # Everything else is the dialects' business: declared options under their plain name, the rest as is.
    options = {k: v for k, v in extra.items() if k != "vendor" and k not in CONFIG_FIELDS}
    for name in EXTRA_FIELDS.keys() - CONFIG_FIELDS - {"vendor"}:
        value = _extra(extra, name)
        if value is not None:
            options[name] = value
    verify = _verify(conn_id, _extra(extra, "verify"))
    try:
        config = ClientConfig(
            base_url=base_url,
            vendor=vendor,
            verify=verify,
            options=options,
            **credentials,
            **{k: v for k, v in tuning.items() if v is not None},
        )
    except ValueError as error:  # a range check of ClientConfig (it names the extra): name the connection
        raise ValueError(f"Connection {conn_id!r} extra {error}") from None
    try:
        make_dialect(config)  # the vendor's own options (8x8's sub_account_id) fail here, not mid-run
    except ValueError as error:
        raise ValueError(f"Connection {conn_id!r}: {error}") from None
    return config


def vendor_visible_at_parse(conn_id: str) -> str | None:
    """The vendor of connection ``conn_id`` when an ``AIRFLOW_CONN_*`` variable defines it, else ``None``.

    Read at DAG parse for the parse-time checks: an environment variable costs nothing, while a metadata-
    database or secrets-backend lookup would (those connections are checked at task start instead).
    """
    value = os.environ.get(f"AIRFLOW_CONN_{conn_id.upper()}")
    if not value:
        return None
    text = value.strip()
    extra: Any = None
    if text.startswith("{"):
        try:
            extra = json.loads(text).get("extra")
        except (ValueError, AttributeError):
            return None
        if isinstance(extra, str):
            try:
                extra = json.loads(extra)
            except ValueError:
                return None
    else:
        query = parse_qs(urlsplit(text).query)
        extra = {key: values[-1] for key, values in query.items()}
    vendor = _extra(extra, "vendor") if isinstance(extra, Mapping) else None
    return str(vendor).strip().lower() if vendor else DEFAULT_VENDOR


def rate_limit_conn_id(extra: Mapping[str, Any] | None) -> str | None:
    """The ``rate_limit_conn_id`` extra: the Redis connection of the shared rate limit, or ``None``."""
    value = _extra(extra or {}, "rate_limit_conn_id")
    return None if value is None else (str(value).strip() or None)


def redis_url(
    conn_id: str,
    store_conn_id: str,
    *,
    conn_type: str | None,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    extra: Mapping[str, Any] | None,
) -> str:
    """The Redis URL of connection ``store_conn_id`` (the fields the Redis provider's hook reads: host, port,
    login, password, extras ``db`` and ``ssl``); ``ValueError`` names the fix."""
    where = f"Connection {conn_id!r} extra 'rate_limit_conn_id': connection {store_conn_id!r}"
    if (conn_type or "").lower() != "redis":
        raise ValueError(f"{where} is of type {conn_type!r}; name a Redis connection (type 'redis')")
    if not host:
        raise ValueError(f"{where} has no host; set the Redis server's host name")
    extra = extra or {}
    if extra.get("cluster"):
        raise ValueError(f"{where} is a Redis Cluster; the shared rate limit needs a single Redis server")
    try:
        db = int(extra.get("db") or 0)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: extra 'db' is not a database number, e.g. 0") from None
    ssl = str(extra.get("ssl", "")).strip().lower() in ("true", "1", "yes", "on")
    secret = None if str(password).lower() in ("none", "false", "") else password
    auth = ""
    if secret:
        auth = f"{quote(login or '', safe='')}:{quote(secret, safe='')}@"
    netloc = f"{auth}{host.strip()}:{int(port or 6379)}"
    return urlunsplit(("rediss" if ssl else "redis", netloc, f"/{db}", "", ""))
