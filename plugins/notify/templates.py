"""Message templates: built-in Chinese and English texts per kind and alarm category.

A site can replace any of them (``notify.templates``), selecting by kind and
optionally channel, category and language; the most specific match wins.
Templates run in Jinja's sandbox: they come from a site file, not from code.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from firebus.sdk import AlarmCategory, Severity

from .config import NotifyConfig, NotifyConfigError

log = logging.getLogger("firebus.plugin.notify")

CATEGORY_LABEL = {
    "zh": {
        AlarmCategory.FIRE: "火警",
        AlarmCategory.GAS: "可燃气体报警",
        AlarmCategory.ELECTRICAL_PRE_ALARM: "电气火灾预警",
        AlarmCategory.ELECTRICAL_ALARM: "电气火灾报警",
        AlarmCategory.SUPERVISORY: "监管报警",
        AlarmCategory.FAULT: "故障",
        AlarmCategory.OFFLINE: "设备离线",
    },
    "en": {
        AlarmCategory.FIRE: "FIRE ALARM",
        AlarmCategory.GAS: "Gas alarm",
        AlarmCategory.ELECTRICAL_PRE_ALARM: "Electrical fire pre-alarm",
        AlarmCategory.ELECTRICAL_ALARM: "Electrical fire alarm",
        AlarmCategory.SUPERVISORY: "Supervisory alarm",
        AlarmCategory.FAULT: "Fault",
        AlarmCategory.OFFLINE: "Device offline",
    },
}

SEVERITY_LABEL = {
    "zh": {Severity.INFO: "提示", Severity.SUPERVISORY: "监管", Severity.FAULT: "故障",
           Severity.PRE_ALARM: "预警", Severity.ALARM: "报警", Severity.FIRE: "火警"},
    "en": {Severity.INFO: "info", Severity.SUPERVISORY: "supervisory", Severity.FAULT: "fault",
           Severity.PRE_ALARM: "pre-alarm", Severity.ALARM: "alarm", Severity.FIRE: "fire"},
}

# What the person told should do first, per category (the line people act on).
ADVICE = {
    "zh": {
        AlarmCategory.FIRE: "请立即到场核实火情，确认为真实火警时立即拨打119并组织疏散。",
        AlarmCategory.GAS: "请立即关闭气源、开窗通风，严禁明火和操作电气开关。",
        AlarmCategory.ELECTRICAL_PRE_ALARM: "请安排电工检查该回路的剩余电流/温度，排除隐患。",
        AlarmCategory.ELECTRICAL_ALARM: "请立即检查该回路，必要时切断电源。",
        AlarmCategory.SUPERVISORY: "请检查相关消防设施（水压、水位、阀门、水泵）状态。",
        AlarmCategory.FAULT: "请安排维保人员检修。",
        AlarmCategory.OFFLINE: "请检查设备供电与通信。",
    },
    "en": {
        AlarmCategory.FIRE: "Go and verify now; if the fire is real, call 119 and start evacuation.",
        AlarmCategory.GAS: "Shut off the gas supply and ventilate; no open flames, do not operate switches.",
        AlarmCategory.ELECTRICAL_PRE_ALARM: "Have an electrician check the circuit's residual current / temperature.",
        AlarmCategory.ELECTRICAL_ALARM: "Check the circuit now; cut the power if needed.",
        AlarmCategory.SUPERVISORY: "Check the fire-protection equipment (pressure, level, valves, pumps).",
        AlarmCategory.FAULT: "Have maintenance repair the device.",
        AlarmCategory.OFFLINE: "Check the device's power supply and communication link.",
    },
}

_DETAILS_ZH = """{{ category_label }}（{{ severity_label }}）
{% if unit %}单位：{{ unit }}
{% endif %}位置：{{ where or "未知" }}
{% if device %}设备：{{ device }}
{% endif %}{% if value is not none %}数值：{{ value }}
{% endif %}{% if message %}说明：{{ message }}
{% endif %}{% if occurred %}发生时间：{{ occurred }}（设备恢复通信后补报）
{% endif %}时间：{{ time }}
告警编号：{{ alarm_id }}"""

_DETAILS_EN = """{{ category_label }} ({{ severity_label }})
{% if unit %}Unit: {{ unit }}
{% endif %}Where: {{ where or "unknown" }}
{% if device %}Device: {{ device }}
{% endif %}{% if value is not none %}Value: {{ value }}
{% endif %}{% if message %}Details: {{ message }}
{% endif %}{% if occurred %}Happened: {{ occurred }} (reported late, after the device came back)
{% endif %}Time: {{ time }}
Alarm id: {{ alarm_id }}"""

#: (kind, language) → (title, body)
BUILTIN: dict[tuple[str, str], tuple[str, str]] = {
    ("new", "zh"): ("{% if occurred %}【补报】{% endif %}【{{ category_label }}】{{ where or device or alarm_id }}",
                    _DETAILS_ZH + "\n{{ advice }}\n请尽快在平台上确认（应答）该告警。"),
    ("new", "en"): ("{% if occurred %}[Reported late] {% endif %}[{{ category_label }}] {{ where or device or alarm_id }}",
                    _DETAILS_EN + "\n{{ advice }}\nPlease acknowledge the alarm on the platform."),
    ("escalate", "zh"): ("【升级】【{{ category_label }}】{{ where or device or alarm_id }}",
                         "该告警已{{ minutes }}分钟无人确认，现升级通知您（第{{ step }}级）。\n"
                         + _DETAILS_ZH + "\n{{ advice }}"),
    ("escalate", "en"): ("[ESCALATED] [{{ category_label }}] {{ where or device or alarm_id }}",
                         "Not acknowledged for {{ minutes }} min; escalated to you (step {{ step }}).\n"
                         + _DETAILS_EN + "\n{{ advice }}"),
    ("cleared", "zh"): ("【已恢复】{{ category_label }} {{ where or device or alarm_id }}",
                        "告警已恢复（{{ time }}）。\n位置：{{ where or \"未知\" }}\n告警编号：{{ alarm_id }}"),
    ("cleared", "en"): ("[Cleared] {{ category_label }} {{ where or device or alarm_id }}",
                        "The alarm cleared at {{ time }}.\nWhere: {{ where or \"unknown\" }}\nAlarm id: {{ alarm_id }}"),
    ("acknowledged", "zh"): ("【已确认】{{ category_label }} {{ where or device or alarm_id }}",
                             "告警已{% if by %}由{{ by }}{% endif %}确认（{{ time }}），停止升级通知。\n告警编号：{{ alarm_id }}"),
    ("acknowledged", "en"): ("[Acknowledged] {{ category_label }} {{ where or device or alarm_id }}",
                             "The alarm was acknowledged{% if by %} by {{ by }}{% endif %} at {{ time }}; escalation stopped.\nAlarm id: {{ alarm_id }}"),
    ("digest", "zh"): ("【通知汇总】{{ count }}条通知被合并",
                       "为避免刷屏，以下{{ count }}条通知被合并发送：\n"
                       "{% for item in items %}- {{ item }}\n{% endfor %}"
                       "{% if more %}……另有{{ more }}条\n{% endif %}请登录平台查看详情。"),
    ("digest", "en"): ("[Digest] {{ count }} notifications held back",
                       "To avoid a flood, {{ count }} notifications were combined:\n"
                       "{% for item in items %}- {{ item }}\n{% endfor %}"
                       "{% if more %}... and {{ more }} more\n{% endif %}See the platform for details."),
}


class Renderer:
    def __init__(self, cfg: NotifyConfig) -> None:
        self.cfg = cfg
        self.env = SandboxedEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False,
                                        trim_blocks=False, keep_trailing_newline=False)
        self._builtin = {key: (self.env.from_string(t), self.env.from_string(b)) for key, (t, b) in BUILTIN.items()}
        self._overrides = []
        for i, tpl in enumerate(cfg.templates):
            try:
                title = self.env.from_string(tpl.title) if tpl.title is not None else None
                body = self.env.from_string(tpl.body)
            except jinja2.TemplateSyntaxError as exc:
                raise NotifyConfigError(f"notify.templates[{i}]: line {exc.lineno}: {exc.message}") from None
            self._overrides.append((tpl, title, body))

    def _pick(self, kind: str, channel: str, category: str, language: str, *, builtin: bool = False) -> tuple[Any, Any]:
        # Title and body are chosen separately: an override may change only the body.
        best_title: tuple[int, Any] | None = None
        best_body: tuple[int, Any] | None = None
        for tpl, title, body in () if builtin else self._overrides:
            if tpl.kind != kind:
                continue
            if tpl.channel not in (None, channel) or tpl.category not in (None, category) or tpl.language not in (None, language):
                continue
            score = (tpl.channel is not None) * 4 + (tpl.category is not None) * 2 + (tpl.language is not None)
            if best_body is None or score > best_body[0]:
                best_body = (score, body)
            if title is not None and (best_title is None or score > best_title[0]):
                best_title = (score, title)
        b_title, b_body = self._builtin.get((kind, language)) or self._builtin[(kind, "en")]
        return (best_title[1] if best_title else b_title), (best_body[1] if best_body else b_body)

    def render(self, kind: str, channel: str, language: str, values: dict[str, Any]) -> tuple[str, str]:
        category = values.get("category") or ""
        lang = language if language in ("zh", "en") else "en"
        full = {**labels(category, values.get("severity"), lang, self.cfg.tz, values.get("ts"),
                         values.get("occurred_ts")), **values}
        title_t, body_t = self._pick(kind, channel, category, lang)
        try:
            return title_t.render(full).strip(), body_t.render(full).strip()
        except Exception as exc:  # a site's template must never cost an alarm its message
            log.error("notify: %s template for %s/%s failed (%s); using the built-in one", kind, channel, category, exc)
            title_t, body_t = self._pick(kind, channel, category, lang, builtin=True)
            return title_t.render(full).strip(), body_t.render(full).strip()


def labels(category: str, severity: Any, lang: str, tz: dt.tzinfo, ts: float | None,
           occurred_ts: float | None = None) -> dict[str, Any]:
    try:
        cat = AlarmCategory(category)
    except ValueError:
        cat = None
    try:
        sev = Severity(int(severity)) if severity is not None else None
    except ValueError:
        sev = None
    when = dt.datetime.fromtimestamp(ts, tz).strftime("%Y-%m-%d %H:%M:%S") if ts else ""
    # An alarm a late reading showed (AlarmEvent.occurred_ts, 补报): when it happened.
    occurred = dt.datetime.fromtimestamp(occurred_ts, tz).strftime("%Y-%m-%d %H:%M:%S") if occurred_ts else ""
    return {
        "category_label": CATEGORY_LABEL[lang].get(cat, category) if cat else category,
        "severity_label": SEVERITY_LABEL[lang].get(sev, str(severity)) if sev else "",
        "advice": ADVICE[lang].get(cat, "") if cat else "",
        "time": when,
        "occurred": occurred,
    }
