"""Apache Airflow provider for CPaaS message-history exports."""

# The one place the version is written: pyproject.toml reads it (setuptools dynamic version) and so does
# get_provider_info().
__version__ = "0.1.0"

_REPO = "https://github.com/msghistory/airflow-provider-msghistory"
#: the package metadata's Project-URLs (pyproject.toml [project.urls] says the same; a test checks)
PROJECT_URLS = {
    "Documentation": f"{_REPO}/tree/main/docs",
    "Source": _REPO,
    "Changelog": f"{_REPO}/blob/main/CHANGELOG.md",
    "Issues": f"{_REPO}/issues",
}
