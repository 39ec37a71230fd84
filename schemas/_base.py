"""Envelope shared by every fact on the log (wire and at-rest contract layer)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

#: Pseudonymous codes only: letters, digits and a few separators, never a name.
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
#: One line of text: no control characters, so it can never inject an email header.
ShortText = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")]
Sha256Hex = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]


def _to_utc(value: datetime) -> datetime:
    # Stored and hashed in UTC so the canonical bytes never depend on the sender's offset.
    return value.astimezone(UTC)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]


class Contract(BaseModel):
    """Base of every wire model: frozen, unknown fields rejected, no NaN or infinity."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class Fact(Contract):
    """Envelope of a fact on the log; subclasses pin `event_type` and add a `payload`."""

    event_id: UUID
    schema_version: int = 1
    trial_id: Code
    site_id: Code | None = None
    participant_id: Code | None = None
    occurred_at: UtcDatetime = Field(description="Clinical time: when it happened.")
    recorded_at: UtcDatetime = Field(description="When safetymon learned it.")
    source: Code = Field(description="System the fact came from, e.g. 'edc', 'lab'.")
    source_ref: Annotated[str, Field(min_length=1, max_length=200)] = Field(
        description="The source's own id for the record; (source, source_ref) is unique."
    )
    actor: ShortText = Field(description="Who submitted it (user or system account).")
    causation_id: UUID | None = None
    correlation_id: UUID | None = None
    # Filled in once the fact is appended to the hash-chained log.
    seq: int | None = Field(default=None, ge=1)
    prev_hash: Sha256Hex | None = None
    hash: Sha256Hex | None = None


class ClinicalFact(Fact):
    """A fact about one participant at one site: both codes are required."""

    site_id: Code
    participant_id: Code
