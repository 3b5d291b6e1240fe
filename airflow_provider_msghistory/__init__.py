"""Apache Airflow provider for CPaaS message-history exports."""

__version__ = "0.1.0"
