"""Variables: what a client sends and what it gets back (never a sealed value)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from caboose.variables.names import MASK, MAX_VARIABLES_PER_SET


class _VariablesBody(BaseModel):
    # Not StrictModel: it strips whitespace from every string, and a value's leading or
    # trailing spaces (or a PEM key's final newline) are part of the value.
    model_config = ConfigDict(extra="forbid")


class VariablesUpdate(_VariablesBody):
    """``PUT``: upsert these variables, or with ``replace`` make them the whole set."""

    variables: dict[str, str] = Field(
        description="KEY → value. Keys match [A-Za-z_][A-Za-z0-9_]*, at most 255 characters; "
        "PORT and CABOOSE_*/RAILWAY_* are reserved. Values are at most 32 KiB and may reference "
        "${{shared.KEY}}, ${{service.KEY}} or ${{KEY}} (resolved at deploy time; $${{ is a "
        f"literal ${{{{). Sending {MASK!r} for a sealed variable keeps its value."
    )
    replace: bool = Field(
        default=False, description="Delete every variable not in `variables` (default: merge)."
    )
    sealed: list[str] = Field(
        default_factory=list,
        max_length=MAX_VARIABLES_PER_SET,
        description="Keys to seal (sent now or already stored). A sealed value is used at "
        "deploy time and can never be read back; sealing cannot be undone.",
    )


class VariablesImport(_VariablesBody):
    """``POST …/import`` as JSON (a ``text/plain`` body is the ``.env`` text itself)."""

    text: str = Field(description="The contents of a .env file.")
    replace: bool = Field(default=False, description="Make the file the whole set.")
    sealed: list[str] = Field(
        default_factory=list, max_length=MAX_VARIABLES_PER_SET, description="Keys to seal."
    )


class VariableSetPublic(BaseModel):
    """A set as the caller may see it: ``variables`` masks what the caller's role may not read,
    and every sealed value."""

    variables: dict[str, str] = Field(description=f"KEY → value, or {MASK!r} where masked.")
    sealed: list[str] = Field(description="Keys whose values are sealed (always masked).")
    values_visible: bool = Field(
        description="Whether unsealed values are shown (admins and owners) or masked (members)."
    )
    undecryptable: list[str] = Field(
        default_factory=list,
        description="Keys whose stored value fails to decrypt (tampered, or its master key is "
        "gone); shown masked. Setting a new value repairs them.",
    )


class VariableWriteResult(VariableSetPublic):
    changed: list[str] = Field(description="Keys added, changed, sealed or deleted.")
    deploy_requested: bool = Field(
        description="`?deploy=true` was given: the change is rolled out by a new deployment. "
        "Without it, running deployments keep their variables until the next one."
    )
    deployments: list[uuid.UUID] = Field(
        default_factory=list,
        description="With `?deploy=true`: the deployments started to roll the change out (one "
        "per service that runs in the environment; none for a service never deployed there).",
    )


class VariableImportResult(VariableWriteResult):
    imported: list[str] = Field(description="Keys read from the text, in file order.")
