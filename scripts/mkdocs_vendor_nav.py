"""MkDocs hook (mkdocs.yml ``hooks:``): the nav's Vendors section lists ``docs/vendors/<vendor>.md`` of each
vendor the dialect registry finds, in its order, so a new vendor adds its page and edits no nav."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any


def on_config(config: Any, **kwargs: Any) -> Any:
    # The package of this checkout, as mkdocstrings reads it (its ``paths: ["."]``).
    sys.path.insert(0, str(Path(config.config_file_path).parent))
    from airflow_provider_msghistory.client.dialects import DIALECTS

    pages = [f"vendors/{vendor}.md" for vendor in DIALECTS]
    sections = [entry for entry in config.nav if isinstance(entry, dict) and "Vendors" in entry]
    if len(sections) != 1:
        raise ValueError("mkdocs.yml: the nav needs one `- Vendors: []` entry for the vendor pages")
    sections[0]["Vendors"] = pages
    return config
