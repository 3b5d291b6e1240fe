"""Each dialect's declarations (capabilities, connection options) match what it implements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from airflow_provider_msghistory.client.dialects import DIALECTS, Dialect, connection_options
from airflow_provider_msghistory.client.options import COMMON_OPTIONS

# capability -> the methods a dialect implements exactly when the capability says so
CAPABILITY_METHODS: dict[str, tuple[Callable[[type[Dialect]], bool], tuple[str, ...]]] = {
    "list tracking": (lambda d: d.caps.tracking == "list", ("list_exports", "parse_export_list")),
    "job tracking": (lambda d: d.caps.tracking == "job", ("get_export", "parse_export")),
    "one download link per export": (
        lambda d: d.caps.delivery == "links" and not d.caps.links_in_job,
        ("download_link", "parse_download_link"),
    ),
    "regenerate": (lambda d: d.caps.regenerate, ("regenerate_download_link",)),
    "cancel": (lambda d: d.caps.cancel, ("cancel_export",)),
    "e-mail delivery": (lambda d: d.caps.delivery == "email", ("email_recipients",)),
    "message list": (lambda d: d.message_list is not None, ("message_history", "parse_history")),
}


def implements(cls: type[Dialect], method: str) -> bool:
    return getattr(cls, method) is not getattr(Dialect, method)


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
@pytest.mark.parametrize("capability", sorted(CAPABILITY_METHODS))
def test_declared_capabilities_match_the_implemented_methods(vendor: str, capability: str) -> None:
    cls = DIALECTS[vendor]
    declared, methods = CAPABILITY_METHODS[capability]
    implemented = {method: implements(cls, method) for method in methods}
    assert set(implemented.values()) == {declared(cls)}, (
        f"{vendor}: {capability} is {'declared' if declared(cls) else 'not declared'} "
        f"but implemented: {implemented}"
    )


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
def test_a_dialect_declares_the_options_it_reads_and_nothing_common(vendor: str) -> None:
    cls: Any = DIALECTS[vendor]
    names = [option.name for option in cls.connection_options]
    assert len(names) == len(set(names))
    assert not set(names) & {option.name for option in COMMON_OPTIONS} and "vendor" not in names
    for option in cls.connection_options:
        assert option.label and option.description and option.placeholder, option
    # the parse-time stand-ins cover exactly the options a dialect cannot be built without
    assert set(cls.placeholder_options) <= set(names)


def test_option_names_are_unique_across_vendors() -> None:
    names = [option.name for option in connection_options()]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("vendor", sorted(DIALECTS))
def test_list_page_sizes_are_the_dialects(vendor: str) -> None:
    cls = DIALECTS[vendor]
    assert 1 <= cls.list_fallback_page_size <= cls.list_page_size
