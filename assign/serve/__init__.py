"""The HTTP service: a stateless tick, a micro-batch window mode, metrics and authentication.

``assign serve`` runs :func:`serve`; :func:`create_app` is the ASGI app for other servers or
tests. See docs/serve.md.
"""
from assign.serve.app import create_app
from assign.serve.config import ServeConfig
from assign.serve.server import serve

__all__ = ["ServeConfig", "create_app", "serve"]
