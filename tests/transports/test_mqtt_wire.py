"""The MQTT codec on its own: round trips, hand-made server frames, strict validation, fuzzing."""

from __future__ import annotations

import re

import pytest
from firebus.core.transports.mqtt_wire import (
    Ack,
    Connack,
    Decoder,
    Disconnect,
    MqttCodecError,
    PacketType,
    Pingresp,
    Prop,
    Publish,
    RetainHandling,
    Suback,
    Unsuback,
    check_filter,
    encode_connect,
    encode_disconnect,
    encode_properties,
    encode_puback,
    encode_pubcomp,
    encode_publish,
    encode_pubrec,
    encode_pubrel,
    encode_subscribe,
    encode_unsubscribe,
    encode_varint,
    parse_properties,
    set_dup,
)
from hypothesis import given, settings
from hypothesis import strategies as st

VERSIONS = [4, 5]


def frame(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def decode_all(data: bytes, version: int = 5, **kw) -> list:
    d = Decoder(version, **kw)  # type: ignore[arg-type]
    d.feed(data)
    out = list(d)
    assert d.pending == 0, "bytes left over"
    return out


def one(data: bytes, version: int = 5, **kw):
    pkts = decode_all(data, version, **kw)
    assert len(pkts) == 1
    return pkts[0]


# ---------------------------------------------------------------------------------- PUBLISH


topics = st.lists(st.text(st.characters(blacklist_characters="+#/\x00", blacklist_categories=("Cs",)), max_size=8),
                  min_size=1, max_size=5).map("/".join).filter(lambda t: t != "" and len(t.encode()) < 200)


@given(topic=topics, payload=st.binary(max_size=300), qos=st.sampled_from([0, 1, 2]), retain=st.booleans(),
       dup=st.booleans(), pid=st.integers(1, 65535), version=st.sampled_from(VERSIONS))
def test_publish_round_trips(topic, payload, qos, retain, dup, pid, version):
    dup = dup and qos > 0
    data = encode_publish(topic, payload, qos=qos, retain=retain, dup=dup, packet_id=pid if qos else 0,
                          version=version)
    p = one(data, version)
    assert isinstance(p, Publish)
    assert (p.topic, p.payload, p.qos, p.retain, p.dup) == (topic, payload, qos, retain, dup)
    assert p.packet_id == (pid if qos else 0)
    assert type(p.payload) is bytes


def test_publish_properties_are_kept_raw_and_parsed_on_request():
    props = {Prop.MESSAGE_EXPIRY_INTERVAL: 60, Prop.CONTENT_TYPE: "application/json",
             Prop.USER_PROPERTY: [("site", "42"), ("unit", "3")], Prop.SUBSCRIPTION_IDENTIFIER: [7]}
    p = one(encode_publish("a/b", b"x", qos=1, packet_id=9, properties=props))
    assert isinstance(p.properties, bytes)
    assert p.props() == props


def test_set_dup_marks_a_resend():
    p = one(set_dup(encode_publish("a", b"1", qos=1, packet_id=3)))
    assert p.dup and p.packet_id == 3


class Tagged(Publish):
    __slots__ = ("tag",)


def test_decoder_builds_the_callers_publish_class():
    d = Decoder(5, publish_cls=Tagged)
    d.feed(encode_publish("a", b"1"))
    assert type(d.next()) is Tagged


@given(st.lists(st.tuples(topics, st.binary(max_size=200), st.sampled_from([0, 1, 2])), min_size=1, max_size=20),
       st.data())
def test_any_split_of_a_stream_gives_the_same_packets(msgs, data):
    stream = b"".join(encode_publish(t, p, qos=q, packet_id=i + 1 if q else 0) for i, (t, p, q) in enumerate(msgs))
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    d = Decoder(5)
    got = []
    prev = 0
    for cut in [*cuts, len(stream)]:
        d.feed(stream[prev:cut])
        prev = cut
        got.extend((p.topic, p.payload, p.qos) for p in d)
    assert got == [(t, p, q) for t, p, q in msgs]


def test_incomplete_packet_waits_for_more_bytes():
    data = encode_publish("a/b", b"x" * 300, qos=1, packet_id=1)
    d = Decoder(5)
    for i in range(len(data) - 1):
        d.feed(data[i:i + 1])
        assert d.next() is None
    d.feed(data[-1:])
    assert d.next().payload == b"x" * 300


# ---------------------------------------------------------------------------------- strict validation


@pytest.mark.parametrize("data, what", [
    (b"\x30\xff\xff\xff\xff\x01", "longer than 4"),  # 5-byte remaining length
    (b"\x30\x80\x00", "minimally"),  # non-minimal remaining length
    (b"\x36\x05\x00\x01a\x00\x01", "QoS 3"),
    (b"\x32\x05\x00\x01a\x00\x00", "packet id 0"),
    (b"\x38\x04\x00\x01ax", "DUP"),  # DUP at QoS 0
    (b"\x30\x05\x00\x02\xff\xfex", "UTF-8"),
    (b"\x30\x04\x00\x01+x", "wildcard"),
    (b"\x30\x04\x00\x01\x00x", "U+0000"),
    (b"\x30\x03\x00\x00x", "empty"),  # topic alias without a topic: never allowed
    (b"\x30\x04\x00\x09ab", "past the packet"),
    (b"\x30\x01\x00", "too short"),
    (b"\x60\x02\x00\x01", "PUBREL"),  # PUBREL must carry flags 0010
    (b"\x41\x02\x00\x01", "reserved flags"),
    (b"\x40\x02\x00\x00", "packet id 0"),
    (b"\xd0\x01\x00", "PINGRESP with a body"),
    (b"\x82\x05\x00\x01\x00\x01a", "SUBSCRIBE"),  # a client-to-server packet
    (b"\x10\x00", "CONNECT"),
    (b"\xf0\x00", "AUTH"),
    (b"\x00\x00", "reserved type 0"),
    (b"\x20\x03\x02\x00\x00", "reserved acknowledge flags"),
    (b"\x90\x02\x00\x01", "SUBACK"),  # no property length (v5)
])
def test_malformed_frames_raise_the_codec_error(data, what):
    with pytest.raises(MqttCodecError, match=re.escape(what)):
        decode_all(data, 5)


@pytest.mark.parametrize("data, what", [
    (b"\x30\x04\x00\x01ax", None),  # sanity: valid in 3.1.1
    (b"\xe0\x00", "DISCONNECT"),  # a 3.1.1 server never sends DISCONNECT
    (b"\x40\x03\x00\x01\x00", "longer than 2"),
    (b"\x90\x03\x00\x01\x05", "invalid return code"),
    (b"\x20\x03\x00\x00\x00", "longer than 2"),
])
def test_v311_rules(data, what):
    if what is None:
        assert one(data, 4).payload == b"x"
        return
    with pytest.raises(MqttCodecError, match=what):
        decode_all(data, 4)


def test_packet_size_limit_is_enforced_before_the_body_arrives():
    d = Decoder(5, max_packet_size=1000)
    big = encode_publish("a", b"x" * 2000)
    d.feed(big[:5])  # only the header: the declared length is enough to refuse it
    with pytest.raises(MqttCodecError, match="exceeds the limit"):
        d.next()


# ---------------------------------------------------------------------------------- control packets from a server


def test_connack_v5_with_properties():
    props = encode_properties({Prop.RECEIVE_MAXIMUM: 20, Prop.SERVER_KEEP_ALIVE: 5, Prop.REASON_STRING: "ok"})
    c = one(frame(0x20, b"\x01\x00" + props))
    assert isinstance(c, Connack) and c.session_present and c.reason == 0
    assert c.properties == {Prop.RECEIVE_MAXIMUM: 20, Prop.SERVER_KEEP_ALIVE: 5, Prop.REASON_STRING: "ok"}


def test_connack_refusals():
    assert one(frame(0x20, b"\x00\x86\x00")).reason == 0x86
    assert one(b"\x20\x02\x00\x05", 4).reason == 5
    # a 3.1.1-only broker answers a level-5 CONNECT with a 2-byte CONNACK
    assert one(b"\x20\x02\x00\x01", 5).reason == 1


def test_suback_unsuback_and_acks():
    s = one(frame(0x90, b"\x00\x07\x00\x01\x80\x02"))
    assert isinstance(s, Suback) and s.packet_id == 7 and s.codes == [1, 0x80, 2]
    s4 = one(b"\x90\x04\x00\x07\x01\x80", 4)
    assert s4.codes == [1, 0x80]
    u = one(frame(0xB0, b"\x00\x08\x00\x00\x11"))
    assert isinstance(u, Unsuback) and u.codes == [0, 0x11]
    assert one(b"\xb0\x02\x00\x08", 4).codes == []
    for kind, enc in ((PacketType.PUBACK, encode_puback), (PacketType.PUBREC, encode_pubrec),
                      (PacketType.PUBREL, encode_pubrel), (PacketType.PUBCOMP, encode_pubcomp)):
        a = one(enc(513))
        assert isinstance(a, Ack) and a.type is kind and a.packet_id == 513 and a.reason == 0
        assert one(enc(513, 0x10)).reason == 0x10
        assert one(enc(513), 4).packet_id == 513
    a = one(frame(0x40, b"\x00\x01\x87" + encode_properties({Prop.REASON_STRING: "not authorised"})))
    assert a.reason == 0x87
    assert isinstance(one(b"\xd0\x00"), Pingresp)


def test_server_disconnect_v5():
    d = one(frame(0xE0, b"\x8b" + encode_properties({Prop.REASON_STRING: "bye"})))
    assert isinstance(d, Disconnect) and d.reason == 0x8B and d.properties[Prop.REASON_STRING] == "bye"
    assert one(b"\xe0\x00").reason == 0


# ---------------------------------------------------------------------------------- encoders


def test_connect_v5_carries_session_expiry_receive_maximum_and_credentials():
    data = encode_connect("firebus-1", version=5, clean_start=False, keepalive=3, session_expiry=604800,
                          receive_maximum=200, maximum_packet_size=1 << 20, username="u", password="p")
    assert data[0] == 0x10
    body = data[2:] if data[1] < 0x80 else data[3:]
    assert body[:7] == b"\x00\x04MQTT\x05"
    assert body[7] == 0xC0  # username + password, clean start off, no will
    assert body[8:10] == b"\x00\x03"
    plen = body[10]
    props = parse_properties(body, 11, 11 + plen)
    assert props == {Prop.SESSION_EXPIRY_INTERVAL: 604800, Prop.RECEIVE_MAXIMUM: 200,
                     Prop.MAXIMUM_PACKET_SIZE: 1 << 20}
    assert body[11 + plen:] == b"\x00\x09firebus-1\x00\x01u\x00\x01p"


def test_connect_v311_persistent_session():
    data = encode_connect("c", version=4, clean_start=False, keepalive=60)
    assert data == b"\x10\x0d\x00\x04MQTT\x04\x00\x00\x3c\x00\x01c"
    assert encode_connect("c", version=4, clean_start=True)[9] == 0x02
    with pytest.raises(MqttCodecError):
        encode_connect("c", version=4, password="p")  # 3.1.1: no password without a user name


def test_subscribe_options_and_unsubscribe():
    v5 = encode_subscribe(5, [("a/+/b", 1), ("c/#", 2)], version=5,
                          retain_handling=RetainHandling.SEND_IF_NEW_SUBSCRIPTION)
    assert v5 == frame(0x82, b"\x00\x05\x00" + b"\x00\x05a/+/b\x11" + b"\x00\x03c/#\x12")
    v4 = encode_subscribe(5, [("a/+/b", 1)], version=4)
    assert v4 == frame(0x82, b"\x00\x05\x00\x05a/+/b\x01")
    assert encode_unsubscribe(6, ["a/#"], version=5) == frame(0xA2, b"\x00\x06\x00\x00\x03a/#")
    assert encode_unsubscribe(6, ["a/#"], version=4) == frame(0xA2, b"\x00\x06\x00\x03a/#")
    for bad in ("a/#/b", "a+", "", "#x"):
        with pytest.raises(MqttCodecError):
            encode_subscribe(1, [(bad, 1)])


def test_disconnect_encodings():
    assert encode_disconnect(version=4) == b"\xe0\x00"
    assert encode_disconnect(version=5) == b"\xe0\x00"
    d = encode_disconnect(version=5, reason=0x04, session_expiry=0)
    assert d == frame(0xE0, b"\x04\x05\x11\x00\x00\x00\x00")


@pytest.mark.parametrize("kw", [dict(topic="a/+"), dict(topic="a/#"), dict(topic=""), dict(topic="a\x00"),
                                dict(qos=3), dict(qos=1, packet_id=0), dict(dup=True)])
def test_publish_encoder_refuses_what_cannot_be_sent(kw):
    args = dict(topic="a", payload=b"", qos=0, packet_id=0)
    args.update(kw)
    with pytest.raises(MqttCodecError):
        encode_publish(args.pop("topic"), args.pop("payload"), **args)


def test_check_filter():
    for ok in ("#", "+", "a/+/b", "a/#", "+/+", "$SYS/#", "a//b"):
        check_filter(ok)
    for bad in ("", "a#", "a/#/b", "a+/b", "x\x00"):
        with pytest.raises(MqttCodecError):
            check_filter(bad)


props_strategy = st.fixed_dictionaries({}, optional={
    Prop.PAYLOAD_FORMAT_INDICATOR: st.integers(0, 1),
    Prop.MESSAGE_EXPIRY_INTERVAL: st.integers(0, 2**32 - 1),
    Prop.CONTENT_TYPE: st.text(st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=20),
    Prop.CORRELATION_DATA: st.binary(max_size=20),
    Prop.TOPIC_ALIAS: st.integers(1, 65535),
    Prop.SUBSCRIPTION_IDENTIFIER: st.lists(st.integers(1, 268_435_455), min_size=1, max_size=3),
    Prop.USER_PROPERTY: st.lists(st.tuples(st.text(max_size=5).filter(lambda s: "\x00" not in s and not any(
        0xD800 <= ord(c) <= 0xDFFF for c in s)), st.just("v")), min_size=1, max_size=3),
})


@given(props_strategy)
def test_properties_round_trip(props):
    block = encode_properties(props)
    d = Decoder(5)
    length_end = 1 if block[0] < 0x80 else 2
    assert parse_properties(block, length_end) == props
    d.feed(encode_publish("t", b"", properties=props))
    assert d.next().props() == props


def test_properties_reject_duplicates_and_unknown_ids():
    with pytest.raises(MqttCodecError, match="twice"):
        parse_properties(b"\x02\x00\x00\x00\x01\x02\x00\x00\x00\x02")
    with pytest.raises(MqttCodecError, match="unknown"):
        parse_properties(b"\x7f\x00")


# ---------------------------------------------------------------------------------- fuzzing


@settings(max_examples=400)
@given(data=st.binary(max_size=400), version=st.sampled_from(VERSIONS), chunk=st.integers(1, 64))
def test_arbitrary_bytes_raise_only_the_codec_error(data, version, chunk):
    d = Decoder(version, max_packet_size=300)  # type: ignore[arg-type]
    try:
        for i in range(0, len(data), chunk):
            d.feed(data[i:i + chunk])
            for p in d:
                if isinstance(p, Publish):
                    p.props()  # the lazy part must obey the same rule
    except MqttCodecError:
        pass


valid_stream = st.lists(st.one_of(
    st.builds(lambda t, p, q, i: encode_publish(t, p, qos=q, packet_id=i if q else 0), topics,
              st.binary(max_size=40), st.sampled_from([0, 1, 2]), st.integers(1, 65535)),
    st.builds(encode_puback, st.integers(1, 65535)),
    st.builds(encode_pubrel, st.integers(1, 65535)),
    st.just(b"\xd0\x00"),
    st.just(frame(0x90, b"\x00\x01\x00\x01")),
), min_size=1, max_size=8).map(b"".join)


@settings(max_examples=300)
@given(stream=valid_stream, flips=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), max_size=4))
def test_mutated_valid_streams_raise_only_the_codec_error(stream, flips):
    data = bytearray(stream)
    for pos, value in flips:
        data[pos % len(data)] = value
    d = Decoder(5)
    d.feed(bytes(data))
    try:
        for p in d:
            if isinstance(p, Publish):
                p.props()
    except MqttCodecError:
        pass
