"""Caboose: a self-hosted, Railway-style platform-as-a-service."""

__version__ = "0.1.0"
