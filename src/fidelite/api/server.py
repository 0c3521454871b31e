"""Running the API under uvicorn: the app factory reads its settings from the
environment, so ``--workers N`` processes each build the same application."""

from __future__ import annotations

import json
import os
from dataclasses import asdict

from fastapi import FastAPI

from fidelite.api.app import Settings, create_app

ENV = "FIDELITE_SERVE"


def export_config(db: str | None, program: str, settings: Settings) -> None:
    """Put the serve options where :func:`app_from_env` (in every worker) finds them."""
    os.environ[ENV] = json.dumps({"db": db, "program": program, "settings": asdict(settings)})


def app_from_env() -> FastAPI:
    """uvicorn factory (``fidelite.api.server:app_from_env``)."""
    config = json.loads(os.environ[ENV])
    return create_app(config["db"], config["program"], Settings(**config["settings"]))
