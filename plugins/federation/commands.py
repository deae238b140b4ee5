"""Commands from the centre to a site, and the site's answers, on the wire.

A command is one JetStream message on ``firebus.<site_id>.command.<kind>`` (stream
``FIREBUS_CMD``), header ``Nats-Msg-Id`` = the command id, a ULID the centre (or
its caller) picks: JetStream drops a re-send inside its duplicate window, the
site's own table of commands drops it after that.  The answer is one message on
``firebus.<site_id>.command_result``, header ``Nats-Msg-Id`` ``result:<id>``.

Every refusal has a reason code and a sentence in English and in Chinese, made
here, so the site, the centre's API and its CLI all say the same thing.
"""

from __future__ import annotations

import re
from enum import StrEnum

import msgspec

from firebus.sdk.core_api import AlarmAction, AlarmActionOutcome

from .envelope import SUBJECT_PREFIX

DEFAULT_COMMAND_STREAM = "FIREBUS_CMD"
DEFAULT_EXPIRY_S = 24 * 3600.0
ULID = re.compile(r"^[0-9A-HJKMNP-TV-Z]{26}$")
MAX_NOTE = 1000
MAX_ALARM_ID = 128


def command_subject(site_id: str, kind: AlarmAction | str) -> str:
    return f"{SUBJECT_PREFIX}.{site_id}.command.{kind}"


def result_subject(site_id: str) -> str:
    return f"{SUBJECT_PREFIX}.{site_id}.command_result"


def stream_subjects() -> list[str]:
    return [command_subject("*", "*"), result_subject("*")]


def site_consumer(site_id: str) -> str:
    return f"site-{site_id}"


class Command(msgspec.Struct, frozen=True, kw_only=True):
    id: str  # a ULID: the idempotency key end to end
    site_id: str
    kind: AlarmAction
    alarm_id: str
    by: str  # the centre user who issued it
    role: str  # their role at the centre
    issued_at: float  # epoch seconds, centre clock
    expires_at: float  # a site receiving it later refuses it (reason "expired")
    note: str = ""


class Outcome(StrEnum):
    APPLIED = "applied"
    REFUSED = "refused"


class Reason(StrEnum):
    UNKNOWN_ALARM = "unknown_alarm"
    ALREADY_CLEARED = "already_cleared"
    ALREADY_DONE = "already_done"  # acknowledged / silenced before
    NOT_PERMITTED = "not_permitted"  # the site does not take this kind of command from the centre
    EXPIRED = "expired"
    INVALID = "invalid"  # not readable, or for another site
    OTHER = "other"  # the alarm engine refused it for another reason (``message`` says why)


class CommandResult(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    command_id: str
    site_id: str
    outcome: Outcome
    at: float  # when the site decided (site clock)
    reason: Reason | None = None
    message: str = ""
    message_zh: str = ""
    alarm_status: str = ""  # the alarm's status at the site afterwards (active_ack …)


KIND_ZH = {AlarmAction.ACKNOWLEDGE: "确认", AlarmAction.SILENCE: "消音", AlarmAction.CLEAR: "复位"}

_REASONS: dict[Reason, tuple[str, str]] = {
    Reason.UNKNOWN_ALARM: ("the site has no alarm {alarm}", "站点没有报警 {alarm}"),
    Reason.ALREADY_CLEARED: ("alarm {alarm} is already cleared", "报警 {alarm} 已复位"),
    Reason.ALREADY_DONE: ("alarm {alarm}: {kind} was done before", "报警 {alarm} 此前已{kind_zh}"),
    Reason.NOT_PERMITTED: ("the site does not accept {kind} from the centre",
                           "站点不接受中心的远程{kind_zh}"),
    Reason.EXPIRED: ("expired: issued {age}, the limit is {limit}", "已过期：{age_zh}发出，时限为{limit_zh}"),
    Reason.INVALID: ("the site could not read the command", "站点无法解析此命令"),
    Reason.OTHER: ("the site refused it", "站点拒绝执行"),
}

REASON_OF = {
    AlarmActionOutcome.UNKNOWN_ALARM: Reason.UNKNOWN_ALARM,
    AlarmActionOutcome.ALREADY_CLEARED: Reason.ALREADY_CLEARED,
    AlarmActionOutcome.ALREADY_DONE: Reason.ALREADY_DONE,
    AlarmActionOutcome.REFUSED: Reason.OTHER,
}


def _hours(seconds: float) -> tuple[str, str]:
    if seconds >= 3600:
        h = seconds / 3600
        return f"{h:.1f} h", f"{h:.1f} 小时"
    return f"{seconds:.0f} s", f"{seconds:.0f} 秒"


def refusal(cmd_id: str, site_id: str, reason: Reason, at: float, *, alarm: str = "",
            kind: AlarmAction | str = "", age_s: float = 0.0, limit_s: float = 0.0, detail: str = "",
            alarm_status: str = "") -> CommandResult:
    """A refused result with its sentence in both languages (``detail``: the engine's own words)."""
    en, zh = _REASONS[reason]
    age, age_zh = _hours(age_s)
    limit, limit_zh = _hours(limit_s)
    try:
        kind_zh = KIND_ZH[AlarmAction(kind)] if kind else ""
    except ValueError:
        kind_zh = str(kind)
    words = {"alarm": alarm, "kind": str(kind), "kind_zh": kind_zh, "age": f"{age} ago", "age_zh": f"{age_zh}前",
             "limit": limit, "limit_zh": limit_zh}
    message = en.format(**words) + (f" ({detail})" if detail else "")
    return CommandResult(command_id=cmd_id, site_id=site_id, outcome=Outcome.REFUSED, at=at, reason=reason,
                         message=message, message_zh=zh.format(**words), alarm_status=alarm_status)


_enc = msgspec.json.Encoder()
_cmd_dec = msgspec.json.Decoder(Command)
_res_dec = msgspec.json.Decoder(CommandResult)


def encode(item: Command | CommandResult) -> bytes:
    return _enc.encode(item)


def decode_command(body: bytes) -> Command:
    return _cmd_dec.decode(body)


def decode_result(body: bytes) -> CommandResult:
    return _res_dec.decode(body)


class _Id(msgspec.Struct):
    id: str = ""


def command_id_of(body: bytes) -> str:
    """The id of a command that does not decode as a whole ("" if there is none), to answer it."""
    try:
        found = msgspec.json.decode(body, type=_Id).id
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""
    return found if ULID.match(found) else ""
