"""Providers, in the order they are tried: Python, Node, static sites."""

from __future__ import annotations

from caboose.engine.plan.providers.base import Provider, ProviderPlan
from caboose.engine.plan.providers.node import NodeProvider
from caboose.engine.plan.providers.python import PythonProvider
from caboose.engine.plan.providers.static import StaticProvider

PROVIDERS: tuple[Provider, ...] = (PythonProvider(), NodeProvider(), StaticProvider())

__all__ = [
    "PROVIDERS",
    "NodeProvider",
    "Provider",
    "ProviderPlan",
    "PythonProvider",
    "StaticProvider",
]
