"""MQTT 3.1.1 / 5.0 client-side packet codec: bytes in, packets out; packets in, bytes out.

Pure and synchronous (no sockets, no asyncio), so it can be fuzzed on its own.
Only what a client needs: encoders for the packets a client sends, a decoder for
the packets a server sends.  Anything else a server might send (CONNECT,
SUBSCRIBE, AUTH, reserved types), a malformed length, a reserved flag, a topic
that is not UTF-8, QoS 3, packet id 0 … raises ``MqttCodecError`` and nothing
else: the caller drops the connection, because a byte stream cannot be
re-synchronised after a bad frame.

Hot path: ``Decoder.next()`` parses a PUBLISH into one slotted object (the
caller may pass a subclass, so the transport's message *is* the packet and no
second object is made per message).  The buffer is kept as ``bytes`` with a
read offset: slicing ``bytes`` gives the payload as ``bytes`` in one copy,
where a ``bytearray`` (or a ``memoryview`` of one) needs a slice object and a
second copy; the unread tail is joined to the next read once per socket read,
not per packet.  v5 properties of a PUBLISH are kept raw and parsed only on
request (``parse_properties``).

References: MQTT 3.1.1 (OASIS, 2014) §2–3, MQTT 5.0 (OASIS, 2019) §2–3.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final, Iterable, Literal

Version = Literal[4, 5]  # the protocol level byte: 4 = MQTT 3.1.1, 5 = MQTT 5.0

DEFAULT_MAX_PACKET: Final = 1 << 20


class MqttCodecError(ValueError):
    """A frame that breaks the protocol, or a packet that cannot be encoded."""


class PacketType(IntEnum):
    CONNECT = 1
    CONNACK = 2
    PUBLISH = 3
    PUBACK = 4
    PUBREC = 5
    PUBREL = 6
    PUBCOMP = 7
    SUBSCRIBE = 8
    SUBACK = 9
    UNSUBSCRIBE = 10
    UNSUBACK = 11
    PINGREQ = 12
    PINGRESP = 13
    DISCONNECT = 14
    AUTH = 15


class Prop(IntEnum):
    """MQTT 5 property identifiers (§2.2.2.2)."""

    PAYLOAD_FORMAT_INDICATOR = 0x01
    MESSAGE_EXPIRY_INTERVAL = 0x02
    CONTENT_TYPE = 0x03
    RESPONSE_TOPIC = 0x08
    CORRELATION_DATA = 0x09
    SUBSCRIPTION_IDENTIFIER = 0x0B
    SESSION_EXPIRY_INTERVAL = 0x11
    ASSIGNED_CLIENT_IDENTIFIER = 0x12
    SERVER_KEEP_ALIVE = 0x13
    AUTHENTICATION_METHOD = 0x15
    AUTHENTICATION_DATA = 0x16
    REQUEST_PROBLEM_INFORMATION = 0x17
    WILL_DELAY_INTERVAL = 0x18
    REQUEST_RESPONSE_INFORMATION = 0x19
    RESPONSE_INFORMATION = 0x1A
    SERVER_REFERENCE = 0x1C
    REASON_STRING = 0x1F
    RECEIVE_MAXIMUM = 0x21
    TOPIC_ALIAS_MAXIMUM = 0x22
    TOPIC_ALIAS = 0x23
    MAXIMUM_QOS = 0x24
    RETAIN_AVAILABLE = 0x25
    USER_PROPERTY = 0x26
    MAXIMUM_PACKET_SIZE = 0x27
    WILDCARD_SUBSCRIPTION_AVAILABLE = 0x28
    SUBSCRIPTION_IDENTIFIER_AVAILABLE = 0x29
    SHARED_SUBSCRIPTION_AVAILABLE = 0x2A


class RetainHandling(IntEnum):
    """v5 subscription option (§3.8.3.1)."""

    SEND_ON_SUBSCRIBE = 0
    SEND_IF_NEW_SUBSCRIPTION = 1
    DO_NOT_SEND = 2


# property id → wire type: b byte, h two-byte int, i four-byte int, v varint, s UTF-8, d binary, p string pair
_PROP_KIND: Final[dict[int, str]] = {
    0x01: "b", 0x02: "i", 0x03: "s", 0x08: "s", 0x09: "d", 0x0B: "v", 0x11: "i", 0x12: "s",
    0x13: "h", 0x15: "s", 0x16: "d", 0x17: "b", 0x18: "i", 0x19: "b", 0x1A: "s", 0x1C: "s",
    0x1F: "s", 0x21: "h", 0x22: "h", 0x23: "h", 0x24: "b", 0x25: "b", 0x26: "p", 0x27: "i",
    0x28: "b", 0x29: "b", 0x2A: "b",
}
_PROP_REPEATABLE: Final = frozenset({0x0B, 0x26})

PropValue = int | str | bytes | list[int] | list[tuple[str, str]]
Properties = dict[int, PropValue]


# ---------------------------------------------------------------------------------- packets


class Publish:
    """An inbound PUBLISH.  ``properties`` is the raw v5 property block (None when empty)."""

    __slots__ = ("topic", "payload", "qos", "dup", "retain", "packet_id", "properties")
    type: Final = PacketType.PUBLISH  # type: ignore[misc]

    def __init__(self, topic: str, payload: bytes, qos: int, dup: bool, retain: bool, packet_id: int,
                 properties: bytes | None) -> None:
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.dup = dup
        self.retain = retain
        self.packet_id = packet_id
        self.properties = properties

    def props(self) -> Properties:
        """The v5 properties, parsed now (``MqttCodecError`` if they are malformed)."""
        return parse_properties(self.properties) if self.properties else {}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(topic={self.topic!r}, qos={self.qos}, dup={self.dup}, "
                f"retain={self.retain}, packet_id={self.packet_id}, payload={len(self.payload)} B)")


class Connack:
    __slots__ = ("session_present", "reason", "properties")
    type: Final = PacketType.CONNACK  # type: ignore[misc]

    def __init__(self, session_present: bool, reason: int, properties: Properties) -> None:
        self.session_present = session_present
        self.reason = reason  # v5 reason code, or the v3.1.1 return code (0 = accepted)
        self.properties = properties

    def __repr__(self) -> str:
        return f"Connack(session_present={self.session_present}, reason={self.reason:#04x})"


class Suback:
    __slots__ = ("packet_id", "codes", "properties")
    type: Final = PacketType.SUBACK  # type: ignore[misc]

    def __init__(self, packet_id: int, codes: list[int], properties: Properties) -> None:
        self.packet_id = packet_id
        self.codes = codes  # one per filter: granted QoS 0..2, or ≥ 0x80 refused
        self.properties = properties


class Unsuback:
    __slots__ = ("packet_id", "codes")
    type: Final = PacketType.UNSUBACK  # type: ignore[misc]

    def __init__(self, packet_id: int, codes: list[int]) -> None:
        self.packet_id = packet_id
        self.codes = codes  # v5 only; empty for v3.1.1


class Ack:
    """PUBACK, PUBREC, PUBREL or PUBCOMP (``type`` says which)."""

    __slots__ = ("type", "packet_id", "reason")

    def __init__(self, type: PacketType, packet_id: int, reason: int) -> None:
        self.type = type
        self.packet_id = packet_id
        self.reason = reason

    def __repr__(self) -> str:
        return f"Ack({self.type.name}, packet_id={self.packet_id}, reason={self.reason:#04x})"


class Pingresp:
    __slots__ = ()
    type: Final = PacketType.PINGRESP  # type: ignore[misc]


class Disconnect:
    __slots__ = ("reason", "properties")
    type: Final = PacketType.DISCONNECT  # type: ignore[misc]

    def __init__(self, reason: int, properties: Properties) -> None:
        self.reason = reason
        self.properties = properties


Packet = Publish | Connack | Suback | Unsuback | Ack | Pingresp | Disconnect
PINGRESP: Final = Pingresp()


# ---------------------------------------------------------------------------------- helpers


def encode_varint(n: int) -> bytes:
    if not 0 <= n <= 268_435_455:
        raise MqttCodecError(f"variable byte integer out of range: {n}")
    out = bytearray()
    while True:
        n, digit = divmod(n, 128)
        if n:
            out.append(digit | 0x80)
        else:
            out.append(digit)
            return bytes(out)


def _varint(buf: bytes, pos: int, end: int, what: str) -> tuple[int, int]:
    """Decode a variable byte integer at ``pos`` (strict: ≤ 4 bytes, minimal)."""
    value = 0
    mult = 1
    for i in range(4):
        if pos >= end:
            raise MqttCodecError(f"{what}: truncated variable byte integer")
        b = buf[pos]
        pos += 1
        value += (b & 0x7F) * mult
        if b < 0x80:
            if b == 0 and i:
                raise MqttCodecError(f"{what}: variable byte integer not minimally encoded")
            return value, pos
        mult <<= 7
    raise MqttCodecError(f"{what}: variable byte integer longer than 4 bytes")


def encode_string(s: str, what: str = "string") -> bytes:
    if "\x00" in s:
        raise MqttCodecError(f"{what} contains U+0000")
    try:
        b = s.encode("utf-8")
    except UnicodeEncodeError as exc:  # lone surrogates
        raise MqttCodecError(f"{what} is not valid UTF-8: {exc}") from None
    if len(b) > 0xFFFF:
        raise MqttCodecError(f"{what} longer than 65535 bytes")
    return len(b).to_bytes(2, "big") + b


def _binary(b: bytes, what: str) -> bytes:
    if len(b) > 0xFFFF:
        raise MqttCodecError(f"{what} longer than 65535 bytes")
    return len(b).to_bytes(2, "big") + b


def _utf8(buf: bytes, pos: int, end: int, what: str) -> tuple[str, int]:
    if pos + 2 > end:
        raise MqttCodecError(f"{what}: truncated string length")
    n = (buf[pos] << 8) | buf[pos + 1]
    pos += 2
    if pos + n > end:
        raise MqttCodecError(f"{what}: string runs past the packet")
    try:
        s = buf[pos:pos + n].decode("utf-8")
    except UnicodeDecodeError:
        raise MqttCodecError(f"{what}: not valid UTF-8") from None
    if "\x00" in s:
        raise MqttCodecError(f"{what}: contains U+0000")
    return s, pos + n


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + encode_varint(len(body)) + body


def encode_properties(props: Properties | None) -> bytes:
    """A v5 property block (length + properties)."""
    if not props:
        return b"\x00"
    out = bytearray()
    for pid, value in props.items():
        kind = _PROP_KIND.get(pid)
        if kind is None:
            raise MqttCodecError(f"unknown property {pid:#04x}")
        values = value if pid in _PROP_REPEATABLE and isinstance(value, list) else [value]
        for v in values:
            out += encode_varint(pid)
            if kind == "b":
                out.append(int(v))  # type: ignore[arg-type]
            elif kind == "h":
                out += int(v).to_bytes(2, "big")  # type: ignore[arg-type]
            elif kind == "i":
                out += int(v).to_bytes(4, "big")  # type: ignore[arg-type]
            elif kind == "v":
                out += encode_varint(int(v))  # type: ignore[arg-type]
            elif kind == "s":
                out += encode_string(str(v), f"property {pid:#04x}")
            elif kind == "d":
                out += _binary(bytes(v), f"property {pid:#04x}")  # type: ignore[arg-type]
            else:
                k, val = v  # type: ignore[misc]
                out += encode_string(k, "user property") + encode_string(val, "user property")
    return encode_varint(len(out)) + bytes(out)


def parse_properties(data: bytes, pos: int = 0, end: int | None = None) -> Properties:
    """Parse a property *list* (the bytes after the length) from ``data[pos:end]``."""
    end = len(data) if end is None else end
    props: Properties = {}
    while pos < end:
        pid, pos = _varint(data, pos, end, "property id")
        kind = _PROP_KIND.get(pid)
        if kind is None:
            raise MqttCodecError(f"unknown property {pid:#04x}")
        value: int | str | bytes | tuple[str, str]
        if kind == "b":
            if pos + 1 > end:
                raise MqttCodecError(f"property {pid:#04x}: truncated")
            value = data[pos]
            pos += 1
        elif kind == "h":
            if pos + 2 > end:
                raise MqttCodecError(f"property {pid:#04x}: truncated")
            value = (data[pos] << 8) | data[pos + 1]
            pos += 2
        elif kind == "i":
            if pos + 4 > end:
                raise MqttCodecError(f"property {pid:#04x}: truncated")
            value = int.from_bytes(data[pos:pos + 4], "big")
            pos += 4
        elif kind == "v":
            value, pos = _varint(data, pos, end, f"property {pid:#04x}")
        elif kind == "s":
            value, pos = _utf8(data, pos, end, f"property {pid:#04x}")
        elif kind == "d":
            if pos + 2 > end:
                raise MqttCodecError(f"property {pid:#04x}: truncated")
            n = (data[pos] << 8) | data[pos + 1]
            if pos + 2 + n > end:
                raise MqttCodecError(f"property {pid:#04x}: runs past the packet")
            value = bytes(data[pos + 2:pos + 2 + n])
            pos += 2 + n
        else:
            k, pos = _utf8(data, pos, end, "user property")
            v, pos = _utf8(data, pos, end, "user property")
            value = (k, v)
        if pid in _PROP_REPEATABLE:
            props.setdefault(pid, []).append(value)  # type: ignore[union-attr, arg-type]
        elif pid in props:
            raise MqttCodecError(f"property {pid:#04x} given twice")
        else:
            props[pid] = value  # type: ignore[assignment]
    return props


def _property_block(buf: bytes, pos: int, end: int, what: str) -> tuple[Properties, int]:
    n, pos = _varint(buf, pos, end, f"{what} properties")
    if pos + n > end:
        raise MqttCodecError(f"{what}: properties run past the packet")
    return parse_properties(buf, pos, pos + n), pos + n


def check_topic(topic: str) -> None:
    """A topic *name* a client may publish to."""
    if not topic:
        raise MqttCodecError("empty topic")
    if "+" in topic or "#" in topic:
        raise MqttCodecError(f"topic {topic!r} contains a wildcard")
    encode_string(topic, "topic")


def check_filter(pattern: str) -> None:
    """A topic *filter* (§4.7): ``+`` a whole level, ``#`` a whole last level."""
    if not pattern:
        raise MqttCodecError("empty topic filter")
    encode_string(pattern, "topic filter")
    levels = pattern.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            raise MqttCodecError(f"invalid topic filter {pattern!r}: '#' must be a whole last level")
        if "+" in level and level != "+":
            raise MqttCodecError(f"invalid topic filter {pattern!r}: '+' must be a whole level")


# ---------------------------------------------------------------------------------- encoders


def encode_connect(
    client_id: str,
    *,
    version: Version = 5,
    clean_start: bool = False,
    keepalive: int = 60,
    session_expiry: int = 0,
    receive_maximum: int = 65535,
    maximum_packet_size: int = 0,
    username: str | None = None,
    password: str | bytes | None = None,
) -> bytes:
    if not 0 <= keepalive <= 0xFFFF:
        raise MqttCodecError("keepalive must be 0..65535 s")
    if version not in (4, 5):
        raise MqttCodecError(f"unsupported protocol level {version}")
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
    if password is not None:
        if version == 4 and username is None:
            raise MqttCodecError("MQTT 3.1.1 needs a username with a password")
        flags |= 0x40
    body = bytearray(b"\x00\x04MQTT")
    body.append(version)
    body.append(flags)
    body += keepalive.to_bytes(2, "big")
    if version == 5:
        props: Properties = {}
        if session_expiry:
            props[Prop.SESSION_EXPIRY_INTERVAL] = session_expiry
        if receive_maximum != 65535:
            if not 1 <= receive_maximum <= 65535:
                raise MqttCodecError("receive_maximum must be 1..65535")
            props[Prop.RECEIVE_MAXIMUM] = receive_maximum
        if maximum_packet_size:
            props[Prop.MAXIMUM_PACKET_SIZE] = maximum_packet_size
        body += encode_properties(props)
    body += encode_string(client_id, "client id")
    if username is not None:
        body += encode_string(username, "username")
    if password is not None:
        body += _binary(password.encode() if isinstance(password, str) else password, "password")
    return _packet(0x10, bytes(body))


def encode_publish(
    topic: str,
    payload: bytes,
    *,
    qos: int = 0,
    retain: bool = False,
    dup: bool = False,
    packet_id: int = 0,
    version: Version = 5,
    properties: Properties | None = None,
) -> bytes:
    check_topic(topic)
    if qos not in (0, 1, 2):
        raise MqttCodecError(f"QoS must be 0, 1 or 2, not {qos}")
    if qos and not 1 <= packet_id <= 0xFFFF:
        raise MqttCodecError("QoS > 0 needs a packet id 1..65535")
    if dup and not qos:
        raise MqttCodecError("DUP is only for QoS > 0")
    first = 0x30 | (0x08 if dup else 0) | (qos << 1) | (0x01 if retain else 0)
    parts = [encode_string(topic, "topic")]
    if qos:
        parts.append(packet_id.to_bytes(2, "big"))
    if version == 5:
        parts.append(encode_properties(properties))
    parts.append(bytes(payload))
    return _packet(first, b"".join(parts))


def set_dup(frame: bytes) -> bytes:
    """The same PUBLISH frame with DUP set (for a resend)."""
    return bytes((frame[0] | 0x08,)) + frame[1:]


def encode_subscribe(
    packet_id: int,
    filters: Iterable[tuple[str, int]],
    *,
    version: Version = 5,
    retain_handling: RetainHandling = RetainHandling.SEND_IF_NEW_SUBSCRIPTION,
    no_local: bool = False,
    retain_as_published: bool = False,
) -> bytes:
    if not 1 <= packet_id <= 0xFFFF:
        raise MqttCodecError("packet id must be 1..65535")
    body = bytearray(packet_id.to_bytes(2, "big"))
    if version == 5:
        body += b"\x00"
    n = 0
    for pattern, qos in filters:
        check_filter(pattern)
        if qos not in (0, 1, 2):
            raise MqttCodecError(f"QoS must be 0, 1 or 2, not {qos}")
        body += encode_string(pattern, "topic filter")
        if version == 5:
            body.append(qos | (0x04 if no_local else 0) | (0x08 if retain_as_published else 0) | (int(retain_handling) << 4))
        else:
            body.append(qos)
        n += 1
    if not n:
        raise MqttCodecError("SUBSCRIBE needs at least one filter")
    return _packet(0x82, bytes(body))


def encode_unsubscribe(packet_id: int, filters: Iterable[str], *, version: Version = 5) -> bytes:
    if not 1 <= packet_id <= 0xFFFF:
        raise MqttCodecError("packet id must be 1..65535")
    body = bytearray(packet_id.to_bytes(2, "big"))
    if version == 5:
        body += b"\x00"
    n = 0
    for pattern in filters:
        check_filter(pattern)
        body += encode_string(pattern, "topic filter")
        n += 1
    if not n:
        raise MqttCodecError("UNSUBSCRIBE needs at least one filter")
    return _packet(0xA2, bytes(body))


_ACK_FIRST: Final = {PacketType.PUBACK: 0x40, PacketType.PUBREC: 0x50, PacketType.PUBREL: 0x62,
                     PacketType.PUBCOMP: 0x70}
# The common case, precomputed: success acks are the fixed header + packet id (§3.4.2.1: a v5
# ack with reason 0 and no properties may omit both), identical in both versions.
PUBACK_HEAD: Final = b"\x40\x02"
PUBREC_HEAD: Final = b"\x50\x02"
PUBREL_HEAD: Final = b"\x62\x02"
PUBCOMP_HEAD: Final = b"\x70\x02"


def encode_ack(kind: PacketType, packet_id: int, reason: int = 0) -> bytes:
    first = _ACK_FIRST.get(kind)
    if first is None:
        raise MqttCodecError(f"{kind!r} is not an acknowledgement")
    if not 1 <= packet_id <= 0xFFFF:
        raise MqttCodecError("packet id must be 1..65535")
    if reason:
        return bytes((first, 3)) + packet_id.to_bytes(2, "big") + bytes((reason,))
    return bytes((first, 2)) + packet_id.to_bytes(2, "big")


def encode_puback(packet_id: int, reason: int = 0) -> bytes:
    return encode_ack(PacketType.PUBACK, packet_id, reason)


def encode_pubrec(packet_id: int, reason: int = 0) -> bytes:
    return encode_ack(PacketType.PUBREC, packet_id, reason)


def encode_pubrel(packet_id: int, reason: int = 0) -> bytes:
    return encode_ack(PacketType.PUBREL, packet_id, reason)


def encode_pubcomp(packet_id: int, reason: int = 0) -> bytes:
    return encode_ack(PacketType.PUBCOMP, packet_id, reason)


PINGREQ: Final = b"\xc0\x00"


def encode_pingreq() -> bytes:
    return PINGREQ


def encode_disconnect(*, version: Version = 5, reason: int = 0, session_expiry: int | None = None) -> bytes:
    if version == 4:
        return b"\xe0\x00"
    if reason == 0 and session_expiry is None:
        return b"\xe0\x00"
    props: Properties = {} if session_expiry is None else {Prop.SESSION_EXPIRY_INTERVAL: session_expiry}
    return _packet(0xE0, bytes((reason,)) + encode_properties(props))


# ---------------------------------------------------------------------------------- decoder


class Decoder:
    """Incremental decoder of server → client packets.

    ``feed(data)`` appends bytes; ``next()`` returns the next complete packet,
    or None when more bytes are needed.  A caller may stop calling ``next`` (to
    apply backpressure) and resume later: unread bytes stay buffered.
    ``publish_cls`` (a ``Publish`` subclass with the same constructor) is what
    PUBLISH packets are built as.
    """

    # ``_buf[_pos:]`` is being parsed; bytes fed meanwhile wait in ``_later`` and are joined
    # only when ``_buf`` runs out of whole packets.  Re-concatenating on every feed copied the
    # whole unparsed backlog per socket read: quadratic while the session hands over in
    # slices and the broker keeps sending (37 % of the core's CPU at 50k msg/s offered).
    __slots__ = ("version", "max_packet_size", "publish_cls", "_buf", "_pos", "_later", "_later_len")

    def __init__(self, version: Version = 5, *, max_packet_size: int = DEFAULT_MAX_PACKET,
                 publish_cls: type[Publish] = Publish) -> None:
        if version not in (4, 5):
            raise ValueError(f"unsupported protocol level {version}")
        self.version = version
        self.max_packet_size = max_packet_size
        self.publish_cls = publish_cls
        self._buf = b""
        self._pos = 0
        self._later: list[bytes] = []
        self._later_len = 0

    @property
    def pending(self) -> int:
        """Bytes received and not yet parsed."""
        return len(self._buf) - self._pos + self._later_len

    def feed(self, data: bytes | bytearray | memoryview) -> None:
        if self._later_len or self._pos < len(self._buf):
            self._later.append(bytes(data))
            self._later_len += len(data)
        else:
            self._buf = bytes(data)
            self._pos = 0

    def _join(self) -> bool:
        """Move the bytes fed meanwhile behind the unparsed rest; False if there were none."""
        if not self._later_len:
            return False
        self._buf = b"".join([self._buf[self._pos:], *self._later])
        self._pos = 0
        self._later.clear()
        self._later_len = 0
        return True

    def reset(self) -> None:
        self._buf = b""
        self._pos = 0
        self._later.clear()
        self._later_len = 0

    def __iter__(self) -> "Decoder":
        return self

    def __next__(self) -> Packet:
        pkt = self.next()
        if pkt is None:
            raise StopIteration
        return pkt

    def next(self) -> Packet | None:
        pkt = self._next()
        if pkt is None and self._join():
            pkt = self._next()
        return pkt

    def _next(self) -> Packet | None:
        buf = self._buf
        pos = self._pos
        n = len(buf)
        if n - pos < 2:
            return None
        first = buf[pos]
        b = buf[pos + 1]
        if b < 0x80:
            length = b
            start = pos + 2
        else:
            length = b & 0x7F
            mult = 128
            i = pos + 2
            while True:
                if i >= n:
                    if i - pos - 1 >= 4:
                        raise MqttCodecError("remaining length longer than 4 bytes")
                    return None
                b = buf[i]
                i += 1
                length += (b & 0x7F) * mult
                if b < 0x80:
                    break
                if i - pos - 1 >= 4:
                    raise MqttCodecError("remaining length longer than 4 bytes")
                mult <<= 7
            if b == 0:
                raise MqttCodecError("remaining length not minimally encoded")
            start = i
        end = start + length
        if end - pos > self.max_packet_size:
            raise MqttCodecError(f"packet of {end - pos} bytes exceeds the limit of {self.max_packet_size}")
        if end > n:
            return None
        self._pos = end
        kind = first >> 4
        if kind == 3:
            # PUBLISH, inline: the one packet type on the hot path.
            qos = (first >> 1) & 3
            if qos == 3:
                raise MqttCodecError("PUBLISH with QoS 3")
            dup = (first & 0x08) != 0
            if dup and not qos:
                raise MqttCodecError("PUBLISH with DUP set at QoS 0")
            if length < 2:
                raise MqttCodecError("PUBLISH too short for its topic")
            p = start + 2
            te = p + ((buf[start] << 8) | buf[start + 1])
            if te > end:
                raise MqttCodecError("PUBLISH topic runs past the packet")
            try:
                topic = buf[p:te].decode("utf-8")
            except UnicodeDecodeError:
                raise MqttCodecError("PUBLISH topic is not valid UTF-8") from None
            if not topic or "\x00" in topic or "+" in topic or "#" in topic:
                # Empty: a v5 topic alias, which we never allow (no Topic Alias Maximum sent).
                raise MqttCodecError(f"PUBLISH topic {topic!r} is empty or has a wildcard or U+0000")
            if qos:
                if te + 2 > end:
                    raise MqttCodecError("PUBLISH too short for its packet id")
                packet_id = (buf[te] << 8) | buf[te + 1]
                if not packet_id:
                    raise MqttCodecError("PUBLISH with packet id 0")
                p = te + 2
            else:
                packet_id = 0
                p = te
            props = None
            if self.version == 5:
                if p >= end:
                    raise MqttCodecError("PUBLISH without its property length")
                plen = buf[p]
                if plen < 0x80:
                    p += 1
                else:
                    plen, p = _varint(buf, p, end, "PUBLISH properties")
                if plen:
                    if p + plen > end:
                        raise MqttCodecError("PUBLISH properties run past the packet")
                    props = buf[p:p + plen]
                    p += plen
            return self.publish_cls(topic, buf[p:end], qos, dup, (first & 1) == 1, packet_id, props)
        return self._control(kind, first & 0x0F, buf, start, end)

    def _control(self, kind: int, flags: int, buf: bytes, start: int, end: int) -> Packet:
        v5 = self.version == 5
        length = end - start
        if kind in (0, 1, 8, 10, 12, 15) or (kind == 14 and not v5):
            name = PacketType(kind).name if kind else "reserved type 0"
            raise MqttCodecError(f"a server does not send {name}" + ("" if v5 or kind != 14 else " in MQTT 3.1.1"))
        if kind == 6:
            if flags != 0x02:
                raise MqttCodecError("PUBREL with reserved flags other than 0010")
        elif flags:
            raise MqttCodecError(f"packet type {kind} with reserved flags {flags:#x}")
        if kind in (4, 5, 6, 7):
            if length < 2:
                raise MqttCodecError(f"{PacketType(kind).name} shorter than 2 bytes")
            packet_id = (buf[start] << 8) | buf[start + 1]
            if not packet_id:
                raise MqttCodecError(f"{PacketType(kind).name} with packet id 0")
            reason = 0
            if length > 2:
                if not v5:
                    raise MqttCodecError(f"{PacketType(kind).name} longer than 2 bytes in MQTT 3.1.1")
                reason = buf[start + 2]
                if length > 3:
                    _property_block(buf, start + 3, end, PacketType(kind).name)  # validated, not kept
            return Ack(PacketType(kind), packet_id, reason)
        if kind == 13:
            if length:
                raise MqttCodecError("PINGRESP with a body")
            return PINGRESP
        if kind == 2:
            if length < 2:
                raise MqttCodecError("CONNACK shorter than 2 bytes")
            ack_flags = buf[start]
            if ack_flags & 0xFE:
                raise MqttCodecError("CONNACK with reserved acknowledge flags")
            reason = buf[start + 1]
            props: Properties = {}
            if v5 and length > 2:
                props, p = _property_block(buf, start + 2, end, "CONNACK")
                if p != end:
                    raise MqttCodecError("CONNACK has bytes after its properties")
            elif length != 2:
                raise MqttCodecError("CONNACK longer than 2 bytes in MQTT 3.1.1")
            # (A v5 CONNACK of exactly 2 bytes is what a 3.1.1-only broker sends to refuse level 5.)
            return Connack(bool(ack_flags & 1), reason, props)
        if kind == 9 or kind == 11:
            name = "SUBACK" if kind == 9 else "UNSUBACK"
            if length < 2:
                raise MqttCodecError(f"{name} shorter than 2 bytes")
            packet_id = (buf[start] << 8) | buf[start + 1]
            if not packet_id:
                raise MqttCodecError(f"{name} with packet id 0")
            p = start + 2
            props = {}
            if v5:
                props, p = _property_block(buf, p, end, name)
            codes = list(buf[p:end])
            if kind == 9:
                if not codes:
                    raise MqttCodecError("SUBACK without return codes")
                if not v5 and any(c not in (0, 1, 2, 0x80) for c in codes):
                    raise MqttCodecError("SUBACK with an invalid return code")
                return Suback(packet_id, codes, props)
            if v5 and not codes:
                raise MqttCodecError("UNSUBACK without reason codes")
            if not v5 and codes:
                raise MqttCodecError("UNSUBACK longer than 2 bytes in MQTT 3.1.1")
            return Unsuback(packet_id, codes)
        if kind == 14 and v5:
            reason = buf[start] if length else 0
            props = {}
            if length > 1:
                props, p = _property_block(buf, start + 1, end, "DISCONNECT")
                if p != end:
                    raise MqttCodecError("DISCONNECT has bytes after its properties")
            return Disconnect(reason, props)
        raise MqttCodecError(f"unexpected packet type {kind}")  # unreachable: every type is handled above
