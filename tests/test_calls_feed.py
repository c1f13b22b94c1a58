"""The call messages feed: the stand-in's Messages endpoint (whole days, `to` inclusive or not)
and the real client's fetch_calls against it (same login, token cache and retries)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import requests

from lib.errors import MoneypennyNoAnswer, MoneypennyUnavailable
from lib.sources.moneypenny import MoneypennyClient
from sandbox.standins.samples import sample_calls, tricky_calls
from sandbox.standins.server import Drop, Malformed, Status


def client_for(harness) -> MoneypennyClient:
    s = harness.settings()
    return MoneypennyClient(auth_url=s.moneypenny_auth_url, chats_url=s.moneypenny_chats_url,
                            calls_url=s.moneypenny_calls_url, username=s.moneypenny_username,
                            password=s.moneypenny_password, store=harness.open_store(), timeout=2,
                            clock=harness.clock, backoff=0.01)


def days_of(calls) -> set[str]:
    return {c["date"][:10] for c in calls}


@pytest.mark.parametrize("inclusive", [True, False])
def test_a_days_read_returns_the_messages_of_its_days_whatever_to_means(harness, inclusive):
    mp = harness.stand.moneypenny
    mp.calls_to_inclusive = inclusive
    for day in (5, 6, 7, 8):
        mp.add_calls(sample_calls(3, datetime(2024, 2, day, 22, 0, tzinfo=UTC), seed=day, spacing=timedelta(minutes=9)))
    got = client_for(harness).fetch_calls(date(2024, 2, 6), date(2024, 2, 7))
    assert days_of(got) == ({"2024-02-06", "2024-02-07"} if inclusive else {"2024-02-06"})
    assert len(got) == (6 if inclusive else 3)
    call = mp.calls("calls")[-1]
    assert call.query == {"from": "02/06/2024", "to": "02/07/2024"}


def test_the_call_read_shares_the_login_and_the_cached_token(harness):
    client = client_for(harness)
    harness.stand.moneypenny.add_calls(tricky_calls(datetime(2026, 11, 20, 9, 0, tzinfo=UTC)))
    client.fetch_window(date(2026, 11, 19), date(2026, 11, 21))
    assert len(client.fetch_calls(date(2026, 11, 19), date(2026, 11, 21))) == 6
    assert client.counters.auth == 1 and client.counters.calls == 1 and client.counters.window == 1
    harness.stand.moneypenny.expire_tokens()
    client.fetch_calls(date(2026, 11, 19), date(2026, 11, 21))  # a 401: one fresh login, one retry
    assert client.counters.auth == 2


@pytest.mark.parametrize("fault, error, words", [
    (Status(500), MoneypennyUnavailable, "call messages http://127.0.0.1"),
    (Malformed(), MoneypennyUnavailable, "a body that is not JSON"),
    (Drop(), MoneypennyNoAnswer, "did not answer"),
])
def test_a_failed_call_read_names_the_call_feed_and_no_message(harness, fault, error, words):
    mp = harness.stand.moneypenny
    mp.add_calls(sample_calls(2, datetime(2026, 11, 20, 9, 0, tzinfo=UTC)))
    mp.inject("calls", fault, times=None)
    with pytest.raises(error) as caught:
        client_for(harness).fetch_calls(date(2026, 11, 20), date(2026, 11, 21))
    assert words in str(caught.value) and caught.value.cause == "moneypenny_calls"
    assert "/clienttas" not in str(caught.value)
    assert not any(c["caller"] in str(caught.value) for c in mp.all_calls())


def test_a_transient_5xx_is_retried_by_the_http_layer(harness):
    mp = harness.stand.moneypenny
    mp.add_calls(sample_calls(2, datetime(2026, 11, 20, 9, 0, tzinfo=UTC)))
    mp.inject("calls", Status(503), times=1)
    assert len(client_for(harness).fetch_calls(date(2026, 11, 20), date(2026, 11, 21))) == 2
    assert [c.status for c in mp.calls("calls")] == [503, 200]


def test_the_endpoint_wants_both_days_and_a_token(harness):
    mp = harness.stand.moneypenny
    assert requests.get(mp.calls_url, params={"from": "02/06/2024", "to": "02/07/2024"}, timeout=5).status_code == 401
    token = client_for(harness).token()
    headers = {"Authorization": f"Bearer {token}"}
    assert requests.get(mp.calls_url, headers=headers, params={"from": "02/06/2024"}, timeout=5).status_code == 400


def test_samples_have_receptionists_actions_and_optional_missing_ids():
    calls = sample_calls(200, datetime(2026, 11, 20, tzinfo=UTC), seed=3, missing_ids=0.2)
    assert {"Email", "SMS", "Transfer"} <= {c["actionTaken"] for c in calls}
    assert len({c["employee"] for c in calls}) >= 4
    ids = [c.get("callId") for c in calls]
    assert 10 < ids.count(None) < 80
    present = [i for i in ids if i]
    assert len(present) == len(set(present))
    assert sample_calls(5, datetime(2026, 11, 20, tzinfo=UTC), seed=3) == sample_calls(5, datetime(2026, 11, 20, tzinfo=UTC), seed=3)
