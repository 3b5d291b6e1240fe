"""MsgHistoryHook: an Airflow connection turned into export-API clients."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

from airflow.providers.common.compat.sdk import BaseHook

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import ClientConfig
from airflow_provider_msghistory.client.dialects import make_dialect
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    AuthenticationError,
    MsgHistoryError,
)
from airflow_provider_msghistory.client.options import ConnectionOption
from airflow_provider_msghistory.client.scrub import secret_forms
from airflow_provider_msghistory.hooks.connection import (
    EXTRA_FIELDS,
    UI_FIELD_BEHAVIOUR,
    config_from_connection,
    rate_limit_conn_id,
    redis_url,
)


def _secrets_to_mask(config: ClientConfig) -> list[str]:
    """Every form of every credential the dialect sends: the key or password, the header values derived
    from them (a Basic token leaks the password too) and their escaped forms."""
    flow = make_dialect(config).auth()
    return list(secret_forms([*config.secrets, *flow.secrets]))


def _mask(config: ClientConfig) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    for value in _secrets_to_mask(config):
        mask_secret(value)


def _mask_one(value: str) -> None:
    from airflow.providers.common.compat.sdk import mask_secret

    mask_secret(value)


def mask_link_query(url: str) -> None:
    """Mask a pre-signed link's query string (its signature) in task logs: it grants the download until it
    expires, and HTTP libraries log request lines at DEBUG."""
    from urllib.parse import urlsplit

    from airflow.providers.common.compat.sdk import mask_secret

    query = urlsplit(url).query
    if query:
        mask_secret(query)


async def _amask(config: ClientConfig) -> None:
    try:  # Airflow 3: masks without a blocking call to the supervisor
        from airflow.sdk.log import amask_secret
    except ImportError:
        from asgiref.sync import sync_to_async

        await sync_to_async(_mask)(config)
        return
    for value in _secrets_to_mask(config):
        await amask_secret(value)


def _widget(option: ConnectionOption) -> Any:
    """The WTForms field of a declared connection option."""
    from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
    from flask_babel import lazy_gettext
    from wtforms import BooleanField, IntegerField, StringField
    from wtforms.validators import AnyOf, NumberRange, Optional

    label = lazy_gettext(option.label)
    if option.choices:
        # Airflow 2's form takes only String/Integer/Password/Boolean fields (a SelectField drops the hook):
        # a text field that accepts the choices alone; Airflow 3's form shows them as a list (conn-fields).
        choices = list(option.choices)
        return StringField(
            label,
            validators=[Optional(), AnyOf(choices, message=f"one of: {', '.join(choices)}")],
            default=option.default,
            description=f"One of: {', '.join(choices)}.",
            widget=BS3TextFieldWidget(),
        )
    if option.type == "boolean":
        return BooleanField(label, default=option.default)
    if option.type == "integer":
        minimum = int(option.minimum) if option.minimum is not None else None
        validators = [Optional(), NumberRange(min=minimum)]
        return IntegerField(label, validators=validators, widget=BS3TextFieldWidget())
    return StringField(label, widget=BS3TextFieldWidget())  # numbers too: "30" and "7.5" both parse


class MsgHistoryHook(BaseHook):
    """Talks to a CPaaS message-history export API (Agile Telecom Qlara, 8x8, Messangi).

    Connection: host = API base URL (default ``https://lora-api.agiletelecom.com/api``, scheme optional),
    password alone = API key, login + password = Basic auth (Qlara) or a login that yields a 24 h key
    (Messangi); extras ``vendor`` (``qlara``, ``8x8``, ``messangi``), ``sub_account_id`` (8x8),
    ``report_emails`` and ``report_sender`` (Messangi), ``connect_timeout``, ``read_timeout``,
    ``call_timeout``, ``max_attempts``, ``max_retry_time``, ``requests_per_minute``,
    ``requests_per_second``, ``verify``, ``rate_limit_conn_id`` (a Redis connection: the fleet shares one
    rate limit per API key there; see the README's "Running on many workers"), declared by the dialects and
    ``client/options.py``, which the form is generated from.
    Use :meth:`get_client` / :meth:`aget_client` for the API calls.

    :param msghistory_conn_id: the Airflow connection to use.
    """

    conn_name_attr = "msghistory_conn_id"
    default_conn_name = "msghistory_default"
    conn_type = "msghistory"
    hook_name = "Message History"

    def __init__(self, msghistory_conn_id: str = default_conn_name, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.msghistory_conn_id = msghistory_conn_id
        self._client: ExportClient | None = None
        self._async_client: tuple[asyncio.AbstractEventLoop, AsyncExportClient] | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(msghistory_conn_id={self.msghistory_conn_id!r})"

    # --- connection form --------------------------------------------------------------------------------
    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """Extra fields of the connection form (Airflow 2.x UI; 3.x reads provider info too), one per
        declared connection option."""
        return {name: _widget(option) for name, option in EXTRA_FIELDS.items()}

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel and hide the standard fields so the form says what each one holds."""
        return {
            "hidden_fields": list(UI_FIELD_BEHAVIOUR["hidden_fields"]),
            "relabeling": dict(UI_FIELD_BEHAVIOUR["relabeling"]),
            "placeholders": dict(UI_FIELD_BEHAVIOUR["placeholders"]),
        }

    # --- configuration and clients ------------------------------------------------------------------------
    @property
    def _source(self) -> str:
        """How the clients' errors name their settings."""
        return f"connection {self.msghistory_conn_id!r}"

    def client_config(self) -> ClientConfig:
        """The client configuration from the connection (secrets registered with the masker)."""
        conn = self.get_connection(self.msghistory_conn_id)
        config = config_from_connection(
            self.msghistory_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=conn.extra_dejson,
            port=conn.port,
            schema=conn.schema,
        )
        store_id = rate_limit_conn_id(conn.extra_dejson)
        if store_id:
            store = self.get_connection(store_id)
            config = self._with_store(config, store_id, store, store.extra_dejson)
        _mask(config)
        return config

    def _with_store(self, config: ClientConfig, store_id: str, store: Any, extra: Any) -> ClientConfig:
        """``config`` pacing through the Redis connection ``store_id`` (its password is one of the config's
        secrets: masked with them)."""
        url = redis_url(
            self.msghistory_conn_id,
            store_id,
            conn_type=store.conn_type,
            host=store.host,
            port=store.port,
            login=store.login,
            password=store.password,
            extra=extra,
        )
        return dataclasses.replace(config, rate_limit_store=url)

    async def aclient_config(self) -> ClientConfig:
        """:meth:`client_config` without blocking the event loop (the lookup may hit a DB or the API)."""
        try:
            from airflow.providers.common.compat.connection import (
                get_async_connection,
                get_async_extra_dejson,
            )
        except ImportError:  # an older common-compat: the sync lookup, in a worker thread
            from asgiref.sync import sync_to_async

            get_async_connection = None
            conn = await sync_to_async(self.get_connection)(self.msghistory_conn_id)
            extra = await sync_to_async(lambda: conn.extra_dejson)()
        else:
            conn = await get_async_connection(self.msghistory_conn_id, hook=self)
            extra = await get_async_extra_dejson(conn)
        config = config_from_connection(
            self.msghistory_conn_id,
            host=conn.host,
            login=conn.login,
            password=conn.password,
            extra=extra,
            port=conn.port,
            schema=conn.schema,
        )
        store_id = rate_limit_conn_id(extra)
        if store_id:
            if get_async_connection is None:
                store = await sync_to_async(self.get_connection)(store_id)
                store_extra = await sync_to_async(lambda: store.extra_dejson)()
            else:
                store = await get_async_connection(store_id, hook=self)
                store_extra = await get_async_extra_dejson(store)
            config = self._with_store(config, store_id, store, store_extra)
        await _amask(config)
        return config

    def get_client(self) -> ExportClient:
        """The sync client (created once per hook)."""
        if self._client is None:
            self._client = ExportClient(self.client_config())
            self._client.auth.on_secret = _mask_one  # a login key obtained later is masked too
            self._client.source = self._source
        return self._client

    def get_conn(self) -> ExportClient:
        """Airflow's generic accessor: the sync client."""
        return self.get_client()

    async def aget_client(self) -> AsyncExportClient:
        """The async client of the running event loop (created once per loop, lookup off the loop)."""
        loop = asyncio.get_running_loop()
        cached = self._async_client
        if cached is None or cached[0] is not loop or cached[1].closed:
            config = await self.aclient_config()
            # Built in a thread: a first client loads the CA bundle, too slow for the event loop.
            client = await asyncio.to_thread(AsyncExportClient, config)
            client.auth.on_secret = _mask_one
            client.source = self._source
            current = self._async_client
            if current is not None and current is not cached and current[0] is loop and not current[1].closed:
                await client.aclose()  # another coroutine won the race
            else:
                self._async_client = (loop, client)
        return self._async_client[1]

    def close(self) -> None:
        """Close the sync client's pooled connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    async def aclose(self) -> None:
        """Close the async client."""
        if self._async_client is not None:
            _, client = self._async_client
            self._async_client = None
            await client.aclose()

    # --- test connection ----------------------------------------------------------------------------------
    def test_connection(self) -> tuple[bool, str]:
        """Make one cheap authenticated call and say in plain words what failed."""
        try:
            config = self.client_config()
            config = dataclasses.replace(
                config, max_attempts=min(config.max_attempts, 2), max_retry_time=15.0, read_timeout=20.0
            )
            client = ExportClient(config)
            client.source = self._source
            with client:
                client.check_connection()
        except AuthenticationError as exc:
            if exc.endpoint == "login":  # the vendor's login call says what to fix itself
                return False, exc.message
            # What every task's error says too (ApiError.hint), with the server's own words.
            return False, f"{client.dialect.status_help(exc.status_code)} Server said: {exc.message}"
        except ApiConnectionError as exc:
            return False, f"Could not reach the API at {config.base_url} ({self._source}): {exc.message}"
        except (MsgHistoryError, ValueError) as exc:
            return False, str(exc)
        return True, "Connection successful: the API accepted the credentials."
