"""The install extras, read from the installed package's metadata, and where the README names them."""

from __future__ import annotations

from importlib.metadata import metadata, requires
from pathlib import Path

from packaging.requirements import Requirement

DIST = "airflow-provider-msghistory"
README = Path(__file__).resolve().parents[1] / "README.md"
# What each user extra must bring, as official providers declare their optional dependencies.
USER_EXTRAS = {
    "amazon": {"apache-airflow-providers-amazon", "s3fs"},
    "google": {"apache-airflow-providers-google", "gcsfs"},
    "openlineage": {"apache-airflow-providers-openlineage"},
}


def requirements_of(extra: str | None) -> set[str]:
    """Names of the distributions required with ``extra`` (``None``: without any extra)."""
    names = set()
    for line in requires(DIST) or []:
        requirement = Requirement(line)
        marker = requirement.marker
        needed = marker is None if extra is None else marker is not None and marker.evaluate({"extra": extra})
        if needed:
            names.add(requirement.name)
    return names


def test_user_extras_are_declared_with_what_each_feature_needs() -> None:
    declared = set(metadata(DIST).get_all("Provides-Extra") or [])
    assert set(USER_EXTRAS) <= declared
    for extra, needs in USER_EXTRAS.items():
        assert requirements_of(extra) == needs, extra
    base = requirements_of(None)
    assert not base & set().union(*USER_EXTRAS.values())  # optional: never pulled in by a plain install


def test_dev_installs_every_user_extra_the_tests_use() -> None:
    # google is declared but not tested against (the tests write to local disk and a local S3).
    assert USER_EXTRAS["amazon"] | USER_EXTRAS["openlineage"] <= requirements_of("dev")


def test_the_readme_shows_how_to_install_each_extra() -> None:
    text = README.read_text()
    for extra in USER_EXTRAS:
        assert f'pip install "{DIST}[{extra}]"' in text, extra
