"""The API's response bodies: one pydantic model each, the source of the OpenAPI document."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class ErrorBody(_Body):
    error: str = Field(description="What is wrong, naming the parameter or key.")


class FirstResponse(_Body):
    at: AwareDatetime
    kind: Literal["call", "email"]
    rep: str = Field(description="The deal's owner at the touch.")
    seconds: float
    business_seconds: float


class SlaState(_Body):
    state: Literal["waiting", "breached", "answered", "closed"]
    steps_seconds: list[float]
    steps_crossed: int = Field(description="Escalation steps the lead has crossed while waiting.")
    business_hours: bool


class Closed(_Body):
    outcome: Literal["won", "lost"]
    at: AwareDatetime
    lost_reason: str | None = None


class DealBody(_Body):
    deal_id: str
    stage: str = Field(description="The current stage as the CRM named it.")
    owner: str
    team: str = Field(description="The team now (SPEC §2).")
    source: str | None
    deal_type: str
    amount: str | None = Field(description="The latest amount, a decimal string.")
    currency: str
    expected_close_date: date | None
    created_at: AwareDatetime
    first_response: FirstResponse | None
    sla: SlaState
    closed: Closed | None
    alerts_sent: list[str] = Field(description="Keys of the alerts published about the deal.")
    stage_events: int
    activities: int
