"""What the two storage operators share: the destination's checks and asset, ``if_exists``, partitioning,
compression, the hook, and a part file's lifecycle (open, fill, commit whole or remove)."""

from __future__ import annotations

from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from airflow.providers.common.compat.sdk import BaseOperator

from airflow_provider_msghistory.arguments import is_templated
from airflow_provider_msghistory.transfers.destination import (
    Destination,
    check_templated_destination,
    denied,
    parse_destination,
    validate_compression,
    validate_if_exists,
)
from airflow_provider_msghistory.transfers.partitions import check_template, partitioning
from airflow_provider_msghistory.transfers.streaming import PartFile

if TYPE_CHECKING:
    from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

T = TypeVar("T")


class StorageTransferOperator(BaseOperator):
    """Base of the operators that write to a destination URL (not used on its own).

    :param destination: file URL to write; templated; holds ``{partition}`` when partitioned.
    :param storage_conn_id: Airflow connection of the destination's store.
    :param if_exists: ``"fail"``, ``"replace"`` or ``"skip"`` when the file is already there.
    :param compression: ``None`` or ``"gzip"``.
    :param msghistory_conn_id: Airflow connection of the API.
    :param partition_by: ``None``, ``"day"`` or ``"hour"``.
    :param partition_timezone: IANA zone of the partitions.
    """

    def __init__(
        self,
        *,
        destination: Any,
        storage_conn_id: str | None,
        if_exists: str,
        compression: str | None,
        msghistory_conn_id: str,
        partition_by: str | None,
        partition_timezone: str,
        **kwargs: Any,
    ) -> None:
        self.if_exists = validate_if_exists(if_exists)
        self.partitioning = partitioning(partition_by, partition_timezone, self.if_exists)
        self.compression = validate_compression(compression)
        static_destination = (
            None if is_templated(destination) else parse_destination(destination, storage_conn_id)
        )
        if static_destination is None:
            check_templated_destination(destination)  # its static prefix: scheme installed, not relative
        else:
            check_template(static_destination.url, self.partitioning)
        if static_destination is not None and self.partitioning is None:
            from airflow.providers.common.compat.sdk import Asset

            kwargs["outlets"] = [*_as_list(kwargs.get("outlets")), Asset(static_destination.url)]
        super().__init__(**kwargs)
        self.destination = destination
        self.storage_conn_id = storage_conn_id
        self.msghistory_conn_id = msghistory_conn_id

    @cached_property
    def hook(self) -> MsgHistoryHook:
        from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook

        return MsgHistoryHook(msghistory_conn_id=self.msghistory_conn_id)

    def _rendered_destination(self) -> Destination:
        """The destination after rendering, checked before any request."""
        dest = parse_destination(self.destination, self.storage_conn_id)
        check_template(dest.url, self.partitioning)
        return dest

    def _opened_part(self, dest: Destination, fs: Any) -> PartFile:
        """The hidden part file beside ``dest``, opened (a store refusing it: ``denied``)."""
        part = PartFile(dest, fs, self.compression)
        try:
            part.open()
        except PermissionError as error:
            raise denied(dest, error) from None
        return part

    def _fill_and_commit(
        self,
        dest: Destination,
        part: PartFile,
        fill: Callable[[], T],
        cleanup: Callable[[], None] = lambda: None,
    ) -> tuple[T, int]:
        """``fill()`` the part, then move it into place whole (per ``if_exists``); on any failure the part
        is removed (after ``cleanup()``), so nothing partial is left. Returns what ``fill`` returned and the
        bytes stored."""
        try:
            result = fill()
            stored = part.finish()  # checks the stored size against the bytes written
            part.commit(replace=self.if_exists != "fail")
        except PermissionError as error:
            cleanup()
            part.abort()
            raise denied(dest, error) from None
        except BaseException:
            cleanup()
            part.abort()
            raise
        return result, stored


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
