"""Request bodies as pydantic models: strict types, so a wrong type is an error, not a guess."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator,
                      model_validator)

from billing_core import validate
from billing_core.services.usage import MAX_DURATION_MS, MAX_TOKENS

MIN_YEAR = 2000  # usage older than this is a broken clock, not a fact to bill


def parse_rfc3339(value: Any) -> datetime:
    """An RFC 3339 date-time (billing_core.validate), in UTC; a time that cannot be a usage fact is refused."""
    if not isinstance(value, str) or len(value) > 40:
        raise ValueError("must be an RFC 3339 string")
    utc = validate.parse_rfc3339(value)
    if utc.year < MIN_YEAR:
        raise ValueError(f"must not be before {MIN_YEAR}")
    return utc


def _printable(value: str) -> str:
    if not validate.is_printable(value):
        raise ValueError(validate.PRINTABLE_RULE)
    return value


# A name or an id a person reads: no control, format or line-separator characters.
PrintableStr = Annotated[StrictStr, AfterValidator(_printable)]
# An event's text fields, checked in one pass (one Python call per event, not per field: ingest is hot).
_EVENT_TEXT = ("id", "project_id", "agent", "model", "run_id", "provider", "account_id")


class UsageEventBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: StrictStr = Field(min_length=1, max_length=128)
    project_id: StrictStr = Field(min_length=1, max_length=40)
    kind: Literal["compute", "tokens"]
    timestamp: datetime | None = Field(None, description="RFC 3339; default: now")
    duration_ms: StrictInt | None = Field(None, ge=0, le=MAX_DURATION_MS)
    model: StrictStr | None = Field(None, min_length=1, max_length=100)
    provider: StrictStr | None = Field(None, max_length=40)
    input_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    output_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    key_source: Literal["platform", "byok"] = "platform"
    agent: StrictStr | None = Field(None, max_length=100)
    run_id: StrictStr | None = Field(None, max_length=128)
    account_id: StrictStr | None = Field(None, max_length=40, description="edge token only")

    @field_validator("timestamp", mode="before")
    @classmethod
    def _rfc3339(cls, value: Any) -> datetime | None:
        return None if value is None else parse_rfc3339(value)

    @model_validator(mode="after")
    def _whole_event(self) -> "UsageEventBody":
        for name in _EVENT_TEXT:
            value = getattr(self, name)
            if value is not None and not value.isprintable() and not validate.is_printable(value):
                raise ValueError(f"{name}: {validate.PRINTABLE_RULE}")
        if self.kind == "compute" and self.duration_ms is None:
            raise ValueError("a compute event needs duration_ms")
        if self.kind == "tokens" and not self.model:
            raise ValueError("a tokens event needs a model")
        return self


class UsageBatchBody(BaseModel):
    """Documented shape of POST /api/v1/usage (events are checked one by one)."""

    events: list[UsageEventBody] = Field(min_length=1, max_length=1000)


class CheckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["compute", "tokens"]
    duration_ms: StrictInt = Field(0, ge=0, le=MAX_DURATION_MS)
    model: StrictStr | None = Field(None, max_length=100)
    input_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    output_tokens: StrictInt = Field(0, ge=0, le=MAX_TOKENS)
    account_id: StrictStr | None = Field(None, max_length=40, description="edge token only")

    @model_validator(mode="after")
    def _kind_fields(self) -> "CheckBody":
        if self.kind == "compute" and "duration_ms" not in self.model_fields_set:
            raise ValueError("a compute check needs duration_ms")
        if self.kind == "tokens" and not self.model:
            raise ValueError("a tokens check needs a model")
        return self


class SummaryQuery(BaseModel):
    start: date
    end: date
    group_by: Literal["day", "project", "agent", "model"] = "day"
