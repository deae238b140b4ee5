"""Words for people: point names, values as states, alarm history lines, in the reader's language.

Raw forms (``rule:two_detector:confirmed``, ``true``, ``level_2``, JSON details) stay in
the API for programs; the pages show what these functions make of them.
"""

from __future__ import annotations

import re
from typing import Any

from .i18n import ALARM_BOOL_CLASSES, has, translate

_CJK = re.compile(r"[\u3400-\u9fff]")
_ULID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}")
FAULT_BOOL_CLASSES = frozenset({"fault", "tamper"})
RUN_BOOL_CLASSES = frozenset({"pump_state", "fan_state"})
OPEN_BOOL_CLASSES = frozenset({"valve_state"})


class Human:
    """Bound to one language; templates get it as ``h``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang

    def t(self, key: str, **kw: Any) -> str:
        return translate(self.lang, key, **kw)

    # -- points and values ---------------------------------------------------------------

    def point(self, name: str, key: str, point_class: str, *, qualify: bool = False) -> str:
        """A point's name: a person's (or a Chinese driver's) name as given; otherwise, in
        Chinese, the name of what it measures (with the key when two points share it)."""
        unnamed = not name or name == key  # the driver gave no name: say what it measures
        if (self.lang != "zh" and not unnamed) or _CJK.search(name or "") or not has(f"pc_{point_class}"):
            return name or key
        label = self.t(f"pc_{point_class}")
        return f"{label}（{key}）" if qualify and key != point_class else label

    def value(self, value: Any, unit: str = "", point_class: str = "") -> str:
        if value is None:
            return "—"
        if isinstance(value, bool):
            if point_class in ALARM_BOOL_CLASSES or point_class.endswith("_alarm"):
                key = "val_alarm" if value else "val_normal"
            elif point_class in FAULT_BOOL_CLASSES or point_class.endswith("_fault"):
                key = "val_fault" if value else "val_normal"
            elif point_class in RUN_BOOL_CLASSES:
                key = "val_running" if value else "val_stopped"
            elif point_class in OPEN_BOOL_CLASSES:
                key = "val_open" if value else "val_closed"
            else:
                key = "val_on" if value else "val_off"
            return self.t(key)
        if isinstance(value, str):
            return self.t(f"val_{value}") if has(f"val_{value}") else value
        if isinstance(value, float):
            text = f"{value:.3f}".rstrip("0").rstrip(".")
        else:
            text = str(value)
        return f"{text} {unit}".strip()

    # -- alarm history -------------------------------------------------------------------

    def rule(self, name: str) -> str:
        """``two_detector:confirmed`` → 双探测器确认 · 确认火警 (unknown rules keep their site-file name)."""
        base, _, group = name.partition(":")
        label = self.t(f"rule_{base}") if has(f"rule_{base}") else base
        if group:
            label += " · " + (self.t(f"grp_{group}") if has(f"grp_{group}") else group)
        return label

    def actor(self, kind: str, actor: str) -> str:
        """Who did it: a person by name, a rule by its human name, the system."""
        if ":" in actor and kind in ("", "system") and actor.split(":", 1)[0] in ("rule", "user", "transport"):
            kind, actor = actor.split(":", 1)  # "cleared_by" strings: "rule:x", "user:x", "transport:x"
        if kind == "user":
            return actor
        if kind == "rule":
            return self.t("actor_rule", name=self.rule(actor))
        if kind == "transport":
            return self.t("actor_transport", name=actor)
        if kind == "plugin":
            return self.t("actor_plugin", name=actor)
        if kind == "device":
            return self.t("actor_device") + (f" {actor}" if actor else "")
        return self.t("actor_system")

    def transition(self, name: str) -> str:
        return self.t(f"tr_{name}") if has(f"tr_{name}") else name

    def severity(self, level: Any) -> str:
        return self.t(f"sev_{level}") if has(f"sev_{level}") else str(level)

    def detail(self, detail: dict[str, Any], unit: str = "", point_class: str = "") -> str:
        parts: list[str] = []
        for key, v in (detail or {}).items():
            if key == "value":
                parts.append(self.t("d_value", v=self.value(v, unit, point_class)))
            elif key == "note" and v:
                parts.append(self.t("d_note", v=v))
            elif key == "step":
                parts.append(self.t("d_step", v=v))
            elif key == "severity":
                parts.append(self.t("d_severity", a=self.severity(detail.get("from", "")), b=self.severity(v)))
            elif key == "verdict":
                parts.append(self.t("d_verdict", v=self.t(v)))
            elif key == "previous":
                parts.append(self.t("d_previous", v=self.t(v)))
            elif key == "reason":
                parts.append(self.t("d_reason", v=v))
            elif key == "devices":
                parts.append(self.t("d_devices", v=v))
            # "from" is shown with "severity"; "due" (a timer's time) is for programs.
        return " · ".join(parts)

    def history(self, transitions: list[Any], unit: str = "", point_class: str = "") -> list[dict[str, Any]]:
        return [{"ts": tr.ts, "what": self.transition(tr.transition), "who": self.actor(tr.actor_kind, tr.actor),
                 "detail": self.detail(tr.detail, unit, point_class), "transition": tr.transition}
                for tr in transitions]

    def subscriber(self, name: str) -> str:
        """A bus subscriber's name without the per-connection id (``web-events-01J…``)."""
        base = _ULID.sub("", name).rstrip("-_: ")
        key = "sub_" + base.replace("-", "_")
        return self.t(key) if has(key) else base or name

    def kind(self, prefix: str, value: Any) -> str:
        """A stored state word (``ns_sent``, ``kind_floor`` …) or the word itself if unknown."""
        return self.t(f"{prefix}_{value}") if has(f"{prefix}_{value}") else ("—" if value in (None, "") else str(value))
