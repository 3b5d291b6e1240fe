"""Airflow version checks, kept in one place (as official providers do)."""

from __future__ import annotations

from packaging.version import Version


def _airflow_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


AIRFLOW_V_3_3_PLUS = _airflow_version() >= Version("3.3.0")
