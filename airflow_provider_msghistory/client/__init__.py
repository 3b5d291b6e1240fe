"""Vendor client for CPaaS export APIs. Imports nothing from Airflow."""

from __future__ import annotations

from airflow_provider_msghistory.client.api import AsyncExportClient, ExportClient
from airflow_provider_msghistory.client.config import DEFAULT_BASE_URL, ClientConfig
from airflow_provider_msghistory.client.errors import (
    ApiConnectionError,
    ApiError,
    ApiValidationError,
    AuthenticationError,
    ExportExpiredError,
    MsgHistoryError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnexpectedResponseError,
    WaitFailedError,
    WaitTimeoutError,
)
from airflow_provider_msghistory.client.models import (
    DownloadLink,
    ExportJob,
    ExportKind,
    ExportRequest,
    ExportStatus,
)
from airflow_provider_msghistory.client.refs import ExportRef
from airflow_provider_msghistory.client.windows import Window

__all__ = [
    "DEFAULT_BASE_URL",
    "ApiConnectionError",
    "ApiError",
    "ApiValidationError",
    "AsyncExportClient",
    "AuthenticationError",
    "ClientConfig",
    "DownloadLink",
    "ExportClient",
    "ExportExpiredError",
    "ExportJob",
    "ExportKind",
    "ExportRef",
    "ExportRequest",
    "ExportStatus",
    "MsgHistoryError",
    "NotFoundError",
    "RateLimitedError",
    "ServerError",
    "UnexpectedResponseError",
    "WaitFailedError",
    "WaitTimeoutError",
    "Window",
]
