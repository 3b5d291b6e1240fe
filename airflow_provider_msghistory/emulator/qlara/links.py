"""Pre-signed download links: ``?expires=<epoch>&signature=<hmac>`` on the storage host."""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
from urllib.parse import quote

from .exports import Export


class LinkSigner:
    """Signs (export id, link generation, expiry) with a per-emulator secret.

    :param storage_base_url: ``http://host:port`` of the storage server.
    """

    def __init__(self, storage_base_url: str) -> None:
        self.storage_base_url = storage_base_url
        self._secret = secrets.token_bytes(32)

    def signature(self, export_id: str, generation: int, expires: int) -> str:
        message = f"{export_id}\n{generation}\n{expires}".encode()
        return hmac.new(self._secret, message, hashlib.sha256).hexdigest()

    def url(self, export: Export) -> str:
        expires = math.ceil(export.link_expires_at)
        signature = self.signature(export.export_id, export.generation, expires)
        path = f"/exports/{quote(export.export_id)}/{quote(export.filename)}"
        return f"{self.storage_base_url}{path}?expires={expires}&signature={signature}"

    def verify(self, export: Export, expires: str, signature: str) -> bool:
        if not expires.isdigit():
            return False
        expected = self.signature(export.export_id, export.generation, int(expires))
        return hmac.compare_digest(expected, signature)
