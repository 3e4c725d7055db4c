"""The provider interface: recognise a kind of app, and say how it installs, builds and starts."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from caboose.engine.plan.runtimes import Runtimes


@dataclass(frozen=True, slots=True)
class ProviderPlan:
    """A provider's defaults; ``plan_build`` lays overrides, config and Procfile on top.

    ``start_hint`` explains, when ``start_command`` is None, what the user can add.
    """

    provider: str
    runtime: str
    runtime_version: str
    package_manager: str | None = None
    dependency_files: tuple[str, ...] = ()
    install_command: str | None = None
    build_command: str | None = None
    start_command: str | None = None
    static_dir: str | None = None
    spa: bool = False
    requested_runtime_version: str | None = None
    notes: tuple[str, ...] = ()
    start_hint: str | None = None


class Provider(Protocol):
    """One language or kind of app. ``detect`` is cheap; ``plan`` may read manifests."""

    name: str
    markers: str  # what detect() looks for, for the "unrecognised tree" message

    def detect(self, source_dir: Path) -> bool: ...

    def plan(self, source_dir: Path, runtimes: Runtimes) -> ProviderPlan: ...
