"""OpenLineage datasets of a transfer: what it read from the vendor's API and which file it wrote.

Lineage tools (Marquez, DataHub) learn what a task read and wrote from ``get_openlineage_facets_on_*``,
which only the OpenLineage listener calls, and only when ``apache-airflow-providers-openlineage`` is
installed (the ``[openlineage]`` extra): so the OpenLineage imports are made in the functions, the way
official providers make them, and importing this module costs nothing.

Naming follows OpenLineage's conventions: a file in a bucket is ``<scheme>://<bucket>`` + its key, a local
file is ``file`` + its absolute path; an API's data is ``<vendor>://<host>`` + what was read there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

    from airflow_provider_msghistory.transfers.destination import Destination


def api_namespace(base_url: str, vendor: str) -> str:
    """``<vendor>://<host[:port]>`` of the API, e.g. ``qlara://lora-api.agiletelecom.com``.

    :param base_url: the API base URL of the connection.
    :param vendor: the dialect's name.
    """
    return f"{vendor}://{urlsplit(base_url).netloc}"


def api_dataset(base_url: str, vendor: str, name: str) -> Dataset:
    """The data read from the vendor's API, e.g. ``name="exports/exp_123"`` for one export."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=api_namespace(base_url, vendor), name=name)


def destination_dataset(dest: Destination) -> Dataset:
    """The file written: ``file`` + absolute path locally, ``<scheme>://<bucket>`` + key in a store."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    if dest.is_local:
        return Dataset(namespace="file", name=dest.path)
    return Dataset(namespace=f"{dest.scheme}://{dest.bucket}", name=dest.path[len(dest.bucket) :].lstrip("/"))


def export_lineage(base_url: str, vendor: str, export_id: str, dest: Destination) -> OperatorLineage:
    """One export read, one file written; the export id as the run's external query id.

    :param base_url: the API base URL of the connection.
    :param vendor: the dialect's name.
    :param export_id: the export downloaded.
    :param dest: the file written.
    """
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    source = api_dataset(base_url, vendor, f"exports/{export_id}")
    query = ExternalQueryRunFacet(externalQueryId=export_id, source=source.namespace)
    return OperatorLineage(
        inputs=[source], outputs=[destination_dataset(dest)], run_facets={"externalQuery": query}
    )
