"""The REST API (FastAPI): authentication by API key, authorisation per route and role,
RFC 9457 problems, Idempotency-Key replay, limits; ``create_app`` builds it and
``fidelite serve`` runs it on uvicorn. It holds no business rules: it calls
:mod:`fidelite.processing`, :mod:`fidelite.ledger`, :mod:`fidelite.privacy` and
:mod:`fidelite.webhooks`.
"""

from fidelite.api.app import Services, Settings, create_app

__all__ = ["Services", "Settings", "create_app"]
