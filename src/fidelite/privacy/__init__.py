"""Data protection: export everything held on a member; erase their personal data.

See :mod:`fidelite.privacy.export` and :mod:`fidelite.privacy.erasure`. Both take the
caller's connection (a reading one for export, a writing one for erasure), so the API
and the CLI decide the transaction.
"""

from fidelite.privacy.erasure import Erasure, erase_member
from fidelite.privacy.export import export_member

__all__ = ["Erasure", "erase_member", "export_member"]
