"""A named style's ONNX network as a file for the page's Live mode, which runs it in the browser.

The bytes are read and checked against the manifest's sha256 on every request (a few hundred KB),
so the checksum the API sends as the ETag is always the checksum of the bytes it sends.

    data, sha256 = style_network(models.styles, "vangogh")
"""

from __future__ import annotations

from service.contract.manifest import read_file_verified
from service.inference.styles import StyleCatalog


class NoStyleNetwork(LookupError):
    """No named style of this name is installed, so there is no network to send."""


def style_network(catalog: StyleCatalog, name: str) -> tuple[bytes, str]:
    """The network's bytes and their sha256, checked against the manifest."""
    entry = catalog.entries.get(name)
    if entry is None:
        known = ", ".join(catalog.entries) or "none are installed"
        raise NoStyleNetwork(f"no style named '{name}'; known styles: {known}")
    data = read_file_verified(catalog.models_dir, entry.name, entry.file, entry.sha256)
    return data, entry.sha256
