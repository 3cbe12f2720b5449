"""A WebSocket subscription and notification hub speaking the rippled/Clio API."""

from .config import Config
from .errors import RPCError
from .server import Hub

__all__ = ["Config", "Hub", "RPCError"]
