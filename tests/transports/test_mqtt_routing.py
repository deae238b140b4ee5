"""Topic routing: the trie + exact map agrees with the MQTT matching rules (§4.7) on every input."""

from __future__ import annotations

from firebus.core.transports.mqtt import Router
from hypothesis import given, settings
from hypothesis import strategies as st


def reference_match(pattern: str, topic: str) -> bool:
    """MQTT §4.7, level by level: the oracle the router is checked against."""
    if topic.startswith("$") and pattern[:1] in ("+", "#"):
        return False
    p, t = pattern.split("/"), topic.split("/")
    for i, level in enumerate(p):
        if level == "#":
            return True  # also matches the parent level ("a/#" matches "a")
        if i >= len(t) or (level != "+" and level != t[i]):
            return False
    return len(p) == len(t)


levels = st.sampled_from(["a", "b", "c", "", "$SYS", "x1"])
topic_st = st.lists(levels, min_size=1, max_size=4).map("/".join).filter(bool)
filter_st = st.lists(st.sampled_from(["a", "b", "+", "", "$SYS"]), min_size=0, max_size=3).flatmap(
    lambda ls: st.sampled_from([ls, [*ls, "#"]])).map("/".join).filter(bool)


@settings(max_examples=300)
@given(patterns=st.lists(filter_st, max_size=8), topics=st.lists(topic_st, min_size=1, max_size=8),
       removed=st.sets(st.integers(0, 7)))
def test_router_matches_like_the_specification(patterns, topics, removed):
    r: Router[tuple[int, str]] = Router(lambda route: route[1])
    routes = [(i, p) for i, p in enumerate(patterns)]
    for route in routes:
        r.add(route)
    for topic in topics:  # twice: the second answer comes from the cache
        for _ in range(2):
            assert sorted(r.match(topic)) == sorted(x for x in routes if reference_match(x[1], topic))
    kept = [x for x in routes if x[0] not in removed]
    for route in routes:
        if route[0] in removed:
            r.remove(route)
    for topic in topics:
        assert sorted(r.match(topic)) == sorted(x for x in kept if reference_match(x[1], topic))
    assert sorted(r.patterns()) == sorted({p for _, p in kept})


def test_add_and_remove_report_when_a_filter_comes_and_goes():
    r: Router[str] = Router(lambda route: route.split("|")[0])
    assert r.add("a/+|1") is True
    assert r.add("a/+|2") is False  # same filter: already subscribed
    assert r.remove("a/+|1") is False  # one route left on it
    assert r.remove("a/+|2") is True  # last one: unsubscribe
    assert r.remove("a/+|2") is False
    assert r.match("a/b") == ()
    assert r._root.empty(), "emptied branches are pruned"


def test_ten_thousand_exact_topics_route_by_lookup():
    r: Router[str] = Router(lambda route: route)
    for i in range(10_000):
        r.add(f"dev/{i}/up")
    r.add("dev/+/up")
    assert r.match("dev/7777/up") == ("dev/7777/up", "dev/+/up")
    assert r.match("dev/x/up") == ("dev/+/up",)
