"""Every word the plugin shows, in Chinese and English."""

from __future__ import annotations

LANGS = ("zh", "en")

TEXT: dict[str, tuple[str, str]] = {
    "nav": ("监管", "Supervision"),
    "title_glance": ("单位总览", "Units at a glance"),
    "title_where": ("时间与地点分布", "Where and when"),
    "title_urges": ("督办", "Urges"),
    "language": ("English", "中文"),
    "unit": ("单位", "Unit"),
    "kind": ("类型", "Type"),
    "grade": ("评级", "Rating"),
    "score": ("得分", "Score"),
    "open_alarms": ("未处理报警", "Open alarms"),
    "alarms_month": ("本月报警", "Alarms this month"),
    "pre_alarms_month": ("本月预警", "Pre-alarms this month"),
    "hazards_open": ("隐患", "Hazards"),
    "overdue": ("逾期整改", "Overdue"),
    "online_rate": ("在线率", "Online"),
    "ack_median": ("确认用时（中位）", "To acknowledge (median)"),
    "ack_p90": ("确认用时（P90）", "To acknowledge (p90)"),
    "clear_median": ("消除用时（中位）", "To clear (median)"),
    "false_share": ("误报占比", "False alarms"),
    "last_inspection": ("最近巡查", "Last inspection"),
    "none": ("无", "none"),
    "not_assessed": ("未评估", "not assessed"),
    "never": ("从未", "never"),
    "filter": ("筛选", "Filter"),
    "all": ("全部", "all"),
    "org": ("组织", "Organisation"),
    "min_open": ("报警不少于", "Open alarms at least"),
    "only_overdue": ("仅看逾期", "Overdue only"),
    "apply": ("应用", "Apply"),
    "sort_by": ("排序", "Sort by"),
    "map": ("单位分布图", "Map of units"),
    "no_geo": ("未标注位置的单位", "Units without a position"),
    "no_units": ("您的范围内没有单位", "No units in your scope"),
    "heat_alarms": ("报警：星期 × 时段", "Alarms: weekday × hour"),
    "heat_pre": ("预警：星期 × 时段", "Pre-alarms: weekday × hour"),
    "heat_hazards": ("隐患：星期 × 时段", "Hazards: weekday × hour"),
    "by_place": ("按场所类型", "By place type"),
    "by_unit_kind": ("按单位类型", "By unit type"),
    "trend": ("月度趋势", "Trend by month"),
    "alarms": ("报警", "Alarms"),
    "pre_alarms": ("预警", "Pre-alarms"),
    "hazards": ("隐患", "Hazards"),
    "months": ("月份", "Months"),
    "unspecified": ("未注明", "unspecified"),
    "hour": ("时", "h"),
    "total": ("合计", "Total"),
    "urge_new": ("发起督办", "Urge a unit"),
    "urge_text": ("督办内容", "What the unit is to do"),
    "urge_due": ("期限", "Due"),
    "urge_send": ("发送", "Send"),
    "answer": ("回复", "Answer"),
    "answer_send": ("提交回复", "Send answer"),
    "status": ("状态", "Status"),
    "status_open": ("待回复", "open"),
    "status_answered": ("已回复", "answered"),
    "status_overdue": ("已逾期", "overdue"),
    "by": ("发起人", "By"),
    "when": ("时间", "When"),
    "no_urges": ("暂无督办", "No urges"),
    "sent": ("已发送", "Sent"),
    "failed": ("失败", "Failed"),
    "explain_glance": ("评级来自最近一期电气火灾体检报告；在线率为从未上报或离线报警未消除之外的设备占比；"
                       "用时为近 {days} 天报警与预警的中位数和第 90 百分位。",
                       "Rating: the latest periodic electrical-fire health report; online: devices neither "
                       "silent since installation nor with an offline alarm active; times: median and 90th "
                       "percentile of the last {days} days' alarms and pre-alarms."),
    "explain_where": ("近 {n} 个月（{first} 至 {last}）的数量，按单位所在时区计时。",
                      "Counts over the last {n} months ({first} to {last}), in the site's time zone."),
    "weekday_0": ("周一", "Mon"), "weekday_1": ("周二", "Tue"), "weekday_2": ("周三", "Wed"),
    "weekday_3": ("周四", "Thu"), "weekday_4": ("周五", "Fri"), "weekday_5": ("周六", "Sat"),
    "weekday_6": ("周日", "Sun"),
    # unit kinds (core/config.py UNIT_KINDS) and the usual place kinds of the example site
    "ukind_school": ("学校", "school"), "ukind_hospital": ("医院", "hospital"), "ukind_mall": ("商场", "mall"),
    "ukind_factory": ("工厂", "factory"), "ukind_warehouse": ("仓库", "warehouse"), "ukind_hotel": ("酒店", "hotel"),
    "ukind_office": ("办公楼", "office"), "ukind_residential": ("住宅", "residential"),
    "ukind_public_entertainment": ("公共娱乐场所", "public entertainment"), "ukind_other": ("其他", "other"),
    "pkind_kitchen": ("厨房", "kitchen"), "pkind_switch room": ("配电室", "switch room"),
    "pkind_pump room": ("泵房", "pump room"), "pkind_tank": ("水箱", "tank"),
    "pkind_boiler room": ("锅炉房", "boiler room"), "pkind_warehouse": ("库房", "warehouse"),
    "pkind_dormitory": ("宿舍", "dormitory"), "pkind_server room": ("机房", "server room"),
}


def t(lang: str, key: str, **kw: object) -> str:
    zh, en = TEXT.get(key, (key, key))
    text = en if lang == "en" else zh
    return text.format(**kw) if kw else text


def kind_label(lang: str, prefix: str, kind: str) -> str:
    """A unit or place kind in the page's language (free text as written when unknown)."""
    if not kind:
        return t(lang, "unspecified")
    key = f"{prefix}_{kind}"
    return t(lang, key) if key in TEXT else kind
