"""The retry decisions both transports share (pure; the wire-level behaviour is in test_client_wire)."""

from __future__ import annotations

import pytest

from airflow_provider_msghistory.client.retry import NetworkFailure, RetryPolicy, retry_after_seconds

POLICY = RetryPolicy(max_attempts=4, max_retry_time=60.0, backoff_base=1.0, backoff_max=8.0)


def test_retry_after_header_wins_over_body_then_body_then_nothing() -> None:
    assert retry_after_seconds({"Retry-After": "3"}, {"retryAfter": 12}) == 3.0
    assert retry_after_seconds({}, {"retryAfter": 12}) == 12.0
    assert retry_after_seconds({"Retry-After": "soon"}, {"retryAfter": "7"}) == 7.0
    assert retry_after_seconds({}, None) is None
    assert retry_after_seconds({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, None) == 0.0


def test_429_waits_what_the_server_asked() -> None:
    assert POLICY.delay_for_status(429, {}, {"retryAfter": 12}, 1, 0.0, idempotent=True) == 12.0
    assert POLICY.delay_for_status(429, {}, {"retryAfter": 12}, 1, 0.0, idempotent=False) == 12.0


def test_429_beyond_the_time_budget_stops() -> None:
    assert POLICY.delay_for_status(429, {}, {"retryAfter": 61}, 1, 0.0, idempotent=True) is None
    assert POLICY.delay_for_status(429, {}, {"retryAfter": 12}, 1, 50.0, idempotent=True) is None


def test_max_wait_caps_any_single_wait() -> None:
    capped = RetryPolicy(max_attempts=4, max_retry_time=60.0, max_wait=0.01)
    assert capped.delay_for_status(429, {}, {"retryAfter": 12}, 1, 0.0, idempotent=True) == 0.01


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_server_errors_back_off_exponentially_with_jitter(status: int) -> None:
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0)):
        delay = POLICY.delay_for_status(status, {}, None, attempt, 0.0, idempotent=True)
        assert delay is not None and ceiling / 2 <= delay <= ceiling


def test_backoff_is_capped() -> None:
    policy = RetryPolicy(max_attempts=20, max_retry_time=1e9, backoff_base=1.0, backoff_max=8.0)
    assert all(policy.backoff(n) <= 8.0 for n in range(1, 20))


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_are_final(status: int) -> None:
    assert POLICY.delay_for_status(status, {}, None, 1, 0.0, idempotent=True) is None


def test_attempts_are_bounded() -> None:
    assert POLICY.delay_for_status(503, {}, None, 3, 0.0, idempotent=True) is not None
    assert POLICY.delay_for_status(503, {}, None, 4, 0.0, idempotent=True) is None
    assert POLICY.delay_for_failure(NetworkFailure.CONNECT, 4, 0.0, idempotent=True) is None


def test_submissions_are_retried_only_when_the_server_certainly_did_not_act() -> None:
    assert POLICY.delay_for_status(429, {}, None, 1, 0.0, idempotent=False) is not None
    assert POLICY.delay_for_status(503, {}, None, 1, 0.0, idempotent=False) is not None
    assert POLICY.delay_for_failure(NetworkFailure.CONNECT, 1, 0.0, idempotent=False) is not None
    for status in (500, 502, 504):
        assert POLICY.delay_for_status(status, {}, None, 1, 0.0, idempotent=False) is None
    assert POLICY.delay_for_failure(NetworkFailure.AFTER_SEND, 1, 0.0, idempotent=False) is None
    assert POLICY.delay_for_failure(NetworkFailure.AFTER_SEND, 1, 0.0, idempotent=True) is not None
