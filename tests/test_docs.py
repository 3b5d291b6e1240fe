"""The docs site's promises that a build alone does not check (`make docs` builds it with --strict)."""

from __future__ import annotations

import importlib.util
import inspect
import re
from pathlib import Path

import pytest

from airflow_provider_msghistory.hooks.msghistory import MsgHistoryHook
from airflow_provider_msghistory.operators.export import MsgHistoryExportOperator
from airflow_provider_msghistory.sensors.export import MsgHistoryExportSensor
from airflow_provider_msghistory.transfers.export_to_storage import MsgHistoryExportToStorageOperator
from airflow_provider_msghistory.transfers.messages_to_storage import MsgHistoryMessagesToStorageOperator
from airflow_provider_msghistory.triggers.export import MsgHistoryExportTrigger

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PUBLIC = (
    MsgHistoryHook,
    MsgHistoryExportOperator,
    MsgHistoryExportToStorageOperator,
    MsgHistoryMessagesToStorageOperator,
    MsgHistoryExportSensor,
    MsgHistoryExportTrigger,
)


def undocumented(cls: type) -> list[str]:
    doc = inspect.getdoc(cls) or ""
    names = [
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    return [name for name in names if not re.search(rf"^:param {name}:", doc, re.MULTILINE)]


@pytest.mark.parametrize("cls", PUBLIC, ids=lambda cls: cls.__name__)
def test_every_public_argument_has_a_param_line(cls: type) -> None:
    # The reference pages are generated from these lines (mkdocstrings): a missing one is a missing row.
    assert undocumented(cls) == []


def test_the_check_sees_a_missing_param() -> None:
    class Sample:
        """:param a: documented."""

        def __init__(self, a: int, b: int) -> None: ...

    assert undocumented(Sample) == ["b"]


def test_each_class_has_its_reference_page() -> None:
    pages = "\n".join(p.read_text() for p in (DOCS / "reference").glob("*.md"))
    for cls in PUBLIC:
        assert f"::: {cls.__module__}.{cls.__name__}" in pages, cls.__name__


def test_code_samples_are_the_example_dags_themselves() -> None:
    # Included by pymdownx.snippets (check_paths: a missing file fails the build), never copied.
    included = set(re.findall(r'--8<-- "(example_dags/[^"]+)"', (DOCS / "examples.md").read_text()))
    assert included == {f"example_dags/{p.name}" for p in (REPO / "example_dags").glob("example_*.py")}


def test_each_vendor_has_its_page_and_the_code_cites_it() -> None:
    from airflow_provider_msghistory.client.dialects import DIALECTS

    for vendor in DIALECTS:
        assert (DOCS / "vendors" / f"{vendor}.md").is_file(), vendor
    package = REPO / "airflow_provider_msghistory"
    stale = [str(p) for p in package.rglob("*.py") if "shared/reference" in p.read_text()]
    assert stale == []


def test_the_vendors_nav_is_every_vendor_page_in_the_registrys_order() -> None:
    # mkdocs.yml leaves the section empty; its hook fills it, so a new vendor edits no nav.
    from types import SimpleNamespace

    from airflow_provider_msghistory.client.dialects import DIALECTS

    spec = importlib.util.spec_from_file_location("vendor_nav", REPO / "scripts" / "mkdocs_vendor_nav.py")
    assert spec is not None and spec.loader is not None
    hook = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(hook)
    assert "- Vendors: []" in (REPO / "mkdocs.yml").read_text()
    nav = [{"Home": "index.md"}, {"Vendors": []}]
    config = SimpleNamespace(config_file_path=str(REPO / "mkdocs.yml"), nav=nav)
    hook.on_config(config)
    assert config.nav[1] == {"Vendors": [f"vendors/{vendor}.md" for vendor in DIALECTS]}
