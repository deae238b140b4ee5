"""firebus.sdk.links: signed, expiring links to one alarm for one person."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firebus.sdk import LinkClaim, links

KEY = bytes(range(32))
NOW = 1_800_000_000.0


def test_a_signed_link_verifies_until_it_expires() -> None:
    token = links.sign(KEY, "01HZX3ALARM", "wang", NOW + 3600)
    assert links.verify(KEY, token, NOW) == LinkClaim("01HZX3ALARM", "wang", NOW + 3600)
    assert links.verify(KEY, token, NOW + 3599.5) is not None
    assert links.verify(KEY, token, NOW + 3600) is None  # expired at the second it names
    assert links.link_path(token) == f"/-/plugins/app/a/{token}"


def test_token_is_url_safe_and_compact() -> None:
    token = links.sign(KEY, "01JDZ7Q7N5W3G2K8XH1V4M9B6C", "duty-officer-a", NOW + 86400)
    assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert len(token) < 90  # fits an SMS next to the alarm text


def test_tampered_or_foreign_tokens_are_refused() -> None:
    token = links.sign(KEY, "A1", "wang", NOW + 60)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    for i in range(len(raw)):
        changed = bytearray(raw)
        changed[i] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        assert links.verify(KEY, forged, NOW) is None, f"byte {i} changed and still accepted"
    assert links.verify(bytes(32), token, NOW) is None  # another database's key
    for junk in ("", "x", "!!!!", "A" * 2000, token[:-1], token + "A"):
        assert links.verify(KEY, junk, NOW) is None


def test_bad_arguments_are_said() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        links.sign(b"short", "A1", "wang", NOW)
    with pytest.raises(ValueError, match="NUL"):
        links.sign(KEY, "A\0", "wang", NOW)
    with pytest.raises(ValueError, match="unix time"):
        links.sign(KEY, "A1", "wang", 2**33)


@given(alarm=st.text(min_size=1, max_size=40).filter(lambda s: "\0" not in s),
       who=st.text(max_size=40).filter(lambda s: "\0" not in s))
def test_any_alarm_and_recipient_round_trip(alarm: str, who: str) -> None:
    claim = links.verify(KEY, links.sign(KEY, alarm, who, NOW + 10), NOW)
    assert claim == LinkClaim(alarm, who, NOW + 10)


def test_link_and_push_config_mistakes_name_their_path() -> None:
    from firebus.plugins.notify import CHANNELS, NotifyConfigError, load_config

    types = {c.type_key: c for c in CHANNELS}
    people = [{"name": "a", "roles": ["duty_officer"], "contacts": {"push": "fire-a"}},
              {"name": "b", "roles": ["duty_officer"], "contacts": {"push": "fire-b"}}]
    base = {"channels": [{"key": "push", "type": "ntfy"}], "people": people}
    cfg = load_config({**base, "links": {"base_url": "https://fire.example.org", "ttl": "12h"}}, types)
    assert cfg.links.ttl_s == 12 * 3600 and load_config(base, types).links.base_url is None
    cases = [
        ({"links": {"base_url": "fire.example.org"}}, "notify.links.base_url: 'fire.example.org' is not an http(s) URL"),
        ({"links": {"base_url": "https://x", "ttl": "soon"}}, "notify.links.ttl: 'soon' is not a duration"),
        ({"people": [people[0], {**people[1], "contacts": {"push": "fire-a"}}]},
         "notify.people[1].contacts.push: topic 'fire-a' is also 'a''s"),
        ({"people": [{**people[0], "contacts": {"push": "bad topic"}}]},
         "notify.people[0].contacts.push: 'bad topic' is not an ntfy topic"),
        ({"people": [people[0], {**people[1], "user": "a"}]}, "notify.people[1].user: 'a' is also the user of 'a'"),
    ]
    for change, message in cases:
        with pytest.raises(NotifyConfigError) as exc:
            load_config({**base, **change}, types)
        assert str(exc.value).startswith(message), str(exc.value)
