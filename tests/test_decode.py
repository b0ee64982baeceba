"""Every rejection reason of SPEC §1, and the rules valid input must pass."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from schemas.events import CallLogged, DealStageChanged, EmailActivity, InputTopic, MeetingActivity, RepProfile
from schemas.outputs import DeadLetterReason as Reason
from streams.ingest.decode import Rejection, decode

NOW = 1_700_000_000.0
CALL = {
    "event_id": "e1",
    "occurred_at": "2023-11-14T22:00:00+01:00",
    "deal_id": "d1",
    "rep_id": "r1",
    "call_id": "c1",
    "direction": "outbound",
    "outcome": "connected",
    "talk_seconds": 30,
}


STAGE = {"event_id": "s", "occurred_at": "2023-11-14T10:00:00Z", "deal_id": "d1", "rep_id": "r", "stage": "new"}


def run(topic: InputTopic, value: object, key: bytes | None = b"d1") -> object:
    raw = value if isinstance(value, bytes) else json.dumps(value).encode()
    return decode(topic, key, raw, now=NOW, max_future_skew_seconds=300)


def rejected(topic: InputTopic, value: object, key: bytes | None = b"d1") -> Reason:
    result = run(topic, value, key)
    assert isinstance(result, Rejection), result
    assert result.detail
    return result.reason


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"event_id": ', Reason.INVALID_JSON),
        (b"\xff\xfe{}", Reason.INVALID_ENCODING),
        (b'"just a string"', Reason.NOT_AN_OBJECT),
        (b"[]", Reason.NOT_AN_OBJECT),
        ({**CALL, "pad": "x" * 70_000}, Reason.TOO_LARGE),
        ({k: v for k, v in CALL.items() if k != "outcome"}, Reason.MISSING_FIELD),
        ({**CALL, "rep_id": None}, Reason.MISSING_FIELD),
        ({**CALL, "talk_seconds": "30"}, Reason.WRONG_TYPE),
        ({**CALL, "deal_id": 12345}, Reason.WRONG_TYPE),
        ({**CALL, "talk_seconds": True}, Reason.WRONG_TYPE),
        ({**CALL, "occurred_at": "2023-11-14T22:00:00"}, Reason.BAD_TIMESTAMP),
        ({**CALL, "occurred_at": 1700000000}, Reason.BAD_TIMESTAMP),
        ({**CALL, "occurred_at": "yesterday"}, Reason.BAD_TIMESTAMP),
        ({**CALL, "direction": "Outbound"}, Reason.INVALID_VALUE),
        ({**CALL, "talk_seconds": 86401}, Reason.OUT_OF_RANGE),
        ({**CALL, "talk_seconds": -1}, Reason.OUT_OF_RANGE),
        ({**CALL, "event_id": ""}, Reason.OUT_OF_RANGE),
        ({**CALL, "event_id": "x" * 129}, Reason.OUT_OF_RANGE),
        ({**CALL, "occurred_at": "2023-11-14T22:20:00+00:00"}, Reason.FUTURE_EVENT),  # 400 s ahead
    ],
)
def test_each_bad_call_gets_its_reason(value: object, reason: Reason) -> None:
    assert rejected(InputTopic.CALLS, value) is reason


def test_a_key_that_is_not_the_deal_id_is_rejected() -> None:
    assert rejected(InputTopic.CALLS, CALL, key=b"d2") is Reason.KEY_MISMATCH
    assert rejected(InputTopic.CALLS, CALL, key=None) is Reason.KEY_MISMATCH


def test_up_to_the_future_skew_is_accepted() -> None:
    assert isinstance(run(InputTopic.CALLS, {**CALL, "occurred_at": "2023-11-14T22:18:20+00:00"}), CallLogged)


@pytest.mark.parametrize(
    ("amount", "expected"), [(1234.5, Decimal("1234.5")), ("1234.50", Decimal("1234.50")), (0, Decimal(0))]
)
def test_money_is_a_number_or_a_decimal_string(amount: object, expected: Decimal) -> None:
    stage = {**STAGE, "amount": amount}
    event = run(InputTopic.DEAL_STAGES, stage)
    assert isinstance(event, DealStageChanged) and event.amount == expected


@pytest.mark.parametrize(
    ("amount", "reason"),
    [("12,50", Reason.INVALID_VALUE), (-3, Reason.OUT_OF_RANGE), (True, Reason.WRONG_TYPE), ([1], Reason.WRONG_TYPE)],
)
def test_bad_money(amount: object, reason: Reason) -> None:
    stage = {**STAGE, "amount": amount}
    assert rejected(InputTopic.DEAL_STAGES, stage) is reason


def test_null_optional_fields_take_their_defaults_and_unknown_fields_are_ignored() -> None:
    stage = {
        "event_id": "s",
        "occurred_at": "2023-11-14T10:00:00Z",
        "deal_id": "d1",
        "rep_id": "r",
        "stage": "new",
        "currency": None,
        "deal_type": None,
        "team": None,
        "crm_internal": {"x": 1},
    }
    event = run(InputTopic.DEAL_STAGES, stage)
    assert isinstance(event, DealStageChanged)
    # deal_type stays unset: the deal keeps the type an earlier stage event gave (else new_business)
    assert (event.currency, event.deal_type, event.team) == ("USD", None, None)
    assert rejected(InputTopic.DEAL_STAGES, {**stage, "currency": "usd"}) is Reason.INVALID_VALUE


def test_email_and_meeting_events() -> None:
    base = {"event_id": "m", "occurred_at": "2023-11-14T10:00:00Z", "deal_id": "d1", "rep_id": "r"}
    email = run(InputTopic.EMAILS, {**base, "email_id": "x", "action": "sent"})
    assert isinstance(email, EmailActivity) and email.personalized is False
    assert rejected(InputTopic.EMAILS, {**base, "email_id": "x", "action": "sent", "personalized": 1}) is (
        Reason.WRONG_TYPE
    )
    meeting = run(InputTopic.MEETINGS, {**base, "meeting_id": "x", "action": "no_show"})
    assert isinstance(meeting, MeetingActivity)


def test_rep_profiles() -> None:
    profile = {
        "rep_id": "r",
        "team": "emea",
        "role": "ae",
        "updated_at": "2023-11-14T10:00:00Z",
        "timezone": "Europe/Berlin",
        "working_hours": {"monday": ["08:30", "17:00"]},
        "monthly_quota": "5000",
    }
    event = run(InputTopic.REPS, profile, key=b"r")
    assert isinstance(event, RepProfile)
    assert event.working_hours == {"mon": ("08:30", "17:00")} and event.monthly_quota == Decimal(5000)
    assert rejected(InputTopic.REPS, {**profile, "timezone": "Mars/Olympus"}, key=b"r") is Reason.INVALID_VALUE
    assert rejected(InputTopic.REPS, {**profile, "working_hours": {"mon": ["18:00", "09:00"]}}, key=b"r") is (
        Reason.INVALID_VALUE
    )
    assert rejected(InputTopic.REPS, {**profile, "working_hours": {"mon": ["9:00", "17:00"]}}, key=b"r") is (
        Reason.INVALID_VALUE
    )
    assert rejected(InputTopic.REPS, profile, key=b"someone-else") is Reason.KEY_MISMATCH


def test_every_reason_is_covered_by_a_test() -> None:
    covered = {
        Reason.INVALID_JSON,
        Reason.INVALID_ENCODING,
        Reason.NOT_AN_OBJECT,
        Reason.TOO_LARGE,
        Reason.MISSING_FIELD,
        Reason.WRONG_TYPE,
        Reason.BAD_TIMESTAMP,
        Reason.INVALID_VALUE,
        Reason.OUT_OF_RANGE,
        Reason.FUTURE_EVENT,
        Reason.KEY_MISMATCH,
    }
    assert covered == set(Reason)


@pytest.mark.parametrize(
    ("field", "value", "reason"),
    [
        ("occurred_at", "0001-01-01T00:00:00+01:00", Reason.BAD_TIMESTAMP),  # cannot be placed in a calendar
        ("occurred_at", "1969-12-31T23:59:59Z", Reason.BAD_TIMESTAMP),
        ("occurred_at", "1700000000", Reason.BAD_TIMESTAMP),  # a number in a string is not a timestamp
        ("occurred_at", "2023-11-14T22:00Z", Reason.BAD_TIMESTAMP),  # RFC 3339 needs seconds
        ("occurred_at", "2023-11-14T22:00:00+0100", Reason.BAD_TIMESTAMP),  # and a colon in the offset
        ("occurred_at", "2023-02-30T22:00:00Z", Reason.BAD_TIMESTAMP),
        ("amount", 1e20, Reason.OUT_OF_RANGE),  # would not fit the table record
        ("amount", "100\n", Reason.INVALID_VALUE),
        ("amount", "\u0661\u0662", Reason.INVALID_VALUE),  # Arabic-Indic digits
    ],
)
def test_inputs_that_once_crashed_or_slipped_through(field: str, value: object, reason: Reason) -> None:
    assert rejected(InputTopic.DEAL_STAGES, {**STAGE, field: value}) is reason


@pytest.mark.parametrize("zone", ["America", "Etc", "__pycache__", "x" * 300, "../../etc/passwd"])
def test_a_timezone_that_is_not_a_zone_is_rejected_not_raised(zone: str) -> None:
    profile = {"rep_id": "r", "team": "t", "role": "ae", "updated_at": "2023-11-14T10:00:00Z", "timezone": zone}
    assert rejected(InputTopic.REPS, profile, key=b"r") is Reason.INVALID_VALUE


@pytest.mark.parametrize("quota", [1e11, "0.0000001", 0.5, "1000000000000"])
def test_stored_profiles_read_back(quota: object) -> None:
    from decimal import Decimal

    from streams.state.codec import decode_profile_history, encode_profile, encode_profile_history, profile_from_json

    profile = {"rep_id": "r", "team": "t", "role": "ae", "updated_at": "2023-11-14T10:00:00Z", "monthly_quota": quota}
    event = run(InputTopic.REPS, profile, key=b"r")
    assert isinstance(event, RepProfile)
    stored = profile_from_json(encode_profile(event))
    assert decode_profile_history(encode_profile_history(3, (stored,))) == (3, (stored,))
    assert stored.monthly_quota_micro == round(Decimal(str(quota)) * 1_000_000)
    assert RepProfile.model_validate_json(stored.record) == event


PERSONAL = "jane.roe@example.com"
PROFILE = {"rep_id": "r", "team": "emea", "role": "ae", "updated_at": "2023-11-14T10:00:00Z"}
VALID_BY_TOPIC = {
    InputTopic.DEAL_STAGES: (STAGE, "deal_id"),
    InputTopic.CALLS: (CALL, "deal_id"),
    InputTopic.EMAILS: ({**STAGE, "email_id": "m", "action": "sent"}, "deal_id"),
    InputTopic.MEETINGS: ({**STAGE, "meeting_id": "m", "action": "held"}, "deal_id"),
    InputTopic.REPS: (PROFILE, "rep_id"),
}
OPTIONAL_FIELDS = [
    "team", "amount", "currency", "source", "deal_type", "expected_close_date", "lost_reason", "wrap_up_seconds",
    "personalized", "scheduled_for", "timezone", "working_hours", "monthly_quota", "targets",
]  # fmt: skip


def test_rejection_details_never_repeat_a_value_of_the_payload() -> None:
    """Payloads may carry personal data; a detail names the field and the rule, not the value."""
    shapes = [
        PERSONAL,
        PERSONAL * 10,
        {"email": PERSONAL},
        [PERSONAL, PERSONAL],
        {PERSONAL: ["09:00", "17:00"]},
        {"mon": [PERSONAL, "17:00"]},
        {"calls_per_day": PERSONAL},
    ]
    checked = 0
    for topic, (valid, key_field) in VALID_BY_TOPIC.items():
        for field in [*valid, *OPTIONAL_FIELDS]:
            for shape in shapes:
                value = {**valid, field: shape}
                key = value[key_field].encode() if isinstance(value[key_field], str) else None
                result = run(topic, value, key)
                if isinstance(result, Rejection):
                    checked += 1
                    assert "jane" not in result.detail, (topic, field, result.detail)
        for key in (PERSONAL.encode(), None):  # a key that is not the id, and a missing key
            result = run(topic, {**valid, key_field: PERSONAL}, key if key is None else b"other")
            assert isinstance(result, Rejection) and "jane" not in result.detail, result
    assert checked > 300


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_even_in_an_ignored_field(token: str) -> None:
    raw = json.dumps({**CALL, "note": "placeholder"}).replace('"placeholder"', token).encode()
    assert rejected(InputTopic.CALLS, raw) is Reason.INVALID_JSON
    words = run(InputTopic.CALLS, {**CALL, "note": f"{token} in a string is just text"})
    assert isinstance(words, CallLogged)
