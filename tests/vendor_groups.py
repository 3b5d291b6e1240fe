"""The vendors a layer test runs over, grouped by what their dialects declare (a new one joins by itself)."""

from __future__ import annotations

from airflow_provider_msghistory.client.dialects import DIALECTS

#: exports that are waited for (an e-mailed report is done once accepted: nothing to poll or sense)
WAITED = [vendor for vendor, dialect in DIALECTS.items() if dialect.caps.tracking != "none"]
#: exports that are downloaded (an e-mailed report never reaches the transfer)
DOWNLOADED = [vendor for vendor, dialect in DIALECTS.items() if dialect.caps.delivery == "links"]
