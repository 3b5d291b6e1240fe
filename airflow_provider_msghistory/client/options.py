"""Connection options (the connection's extras) as declarations: each is written once, here for the ones
every vendor reads and in a dialect for its own, and the connection form, its Airflow >= 3.2 metadata and
the mapping onto :class:`ClientConfig` are generated from them (``hooks/connection.py``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

from airflow_provider_msghistory.client.config import ClientConfig


@dataclass(frozen=True)
class ConnectionOption:
    """One connection extra.

    :param name: the key in the connection's extra JSON.
    :param label: the form's label.
    :param type: its JSON-schema type.
    :param default: the value when unset (``None``: none).
    :param placeholder: the form's placeholder text.
    :param description: the form's help text.
    :param choices: the accepted values, shown as a drop-down (empty: free input).
    :param minimum: the smallest accepted number (numbers only).
    """

    name: str
    label: str
    type: Literal["string", "number", "integer", "boolean"] = "string"
    default: Any = None
    placeholder: str | None = None
    description: str = ""
    choices: tuple[str, ...] = ()
    minimum: float | None = None


_CONFIG_DEFAULTS = {f.name: f.default for f in dataclasses.fields(ClientConfig)}


def config_option(
    name: str, label: str, type: Literal["number", "integer"], description: str
) -> ConnectionOption:
    """An option that sets the :class:`ClientConfig` field of its name (default and placeholder from it)."""
    default = _CONFIG_DEFAULTS[name]
    shown = "the vendor's" if default is None else f"{default:g}"
    minimum = 1 if type == "integer" else None  # seconds must be > 0, which "minimum" cannot say
    return ConnectionOption(name, label, type, default, shown, description, minimum=minimum)


#: the options every vendor reads; ``ClientConfig`` fields are set from those that name one, the others go
#: to ``ClientConfig.options`` as they are (a new vendor-neutral extra is one line here).
COMMON_OPTIONS: tuple[ConnectionOption, ...] = (
    config_option("connect_timeout", "Connect timeout (s)", "number", "Seconds to establish a connection."),
    config_option("read_timeout", "Read timeout (s)", "number", "Seconds to wait for response data."),
    config_option(
        "call_timeout", "Call timeout (s)", "number", "Seconds one API call may take, first byte to last."
    ),
    config_option("max_attempts", "Max attempts", "integer", "Attempts per API call, the first included."),
    config_option(
        "max_retry_time", "Max retry time (s)", "number", "Seconds one API call may spend retrying in all."
    ),
    config_option(
        "requests_per_minute",
        "Requests per minute",
        "integer",
        "This key's per-minute limit, when not the vendor's published one (e.g. a trial key).",
    ),
    config_option(
        "requests_per_second",
        "Requests per second",
        "integer",
        "This key's per-second burst limit, when not the vendor's published one.",
    ),
    ConnectionOption("verify", "Verify TLS", "boolean", True, None, "Verify the API's TLS certificate."),
    ConnectionOption(
        "rate_limit_conn_id",
        "Shared rate limit (Redis connection id)",
        placeholder="redis_default (optional)",
        description="A Redis connection (type redis): every worker and triggerer on this API key then shares "
        "one rate limit there (needs the [redis] extra). Empty: each process paces on its own.",
    ),
)

#: the options that set a :class:`ClientConfig` field of their name
CONFIG_FIELDS = frozenset(o.name for o in COMMON_OPTIONS if o.name in _CONFIG_DEFAULTS)
