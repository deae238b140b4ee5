"""Every word of a report in Chinese and English (key → (zh, en)); ``t(key, lang, **fields)``."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

TEXT: dict[str, tuple[str, str]] = {
    # -- titles and headings -------------------------------------------------------------
    "title": ("电气火灾监控 健康体检报告", "Electrical-fire monitoring health check"),
    "summary_title": ("电气火灾监控 健康体检汇总", "Electrical-fire monitoring health check: summary"),
    "period_week": ("周报", "weekly report"),
    "period_month": ("月报", "monthly report"),
    "period_quarter": ("季报", "quarterly report"),
    "period_window": ("实时", "live"),
    "partial": ("（周期未结束，数据截至 {until}）", " (period not over: data up to {until})"),
    "unit": ("联网单位", "Unit"),
    "period": ("统计周期", "Period"),
    "generated": ("生成时间", "Generated"),
    "circuits": ("监测回路", "Circuits monitored"),
    "points_n": ("监测点", "Points"),
    "score": ("健康得分", "Health score"),
    "grade": ("等级", "Grade"),
    "grade_A": ("优", "A (good)"),
    "grade_B": ("良", "B (fair)"),
    "grade_C": ("中", "C (poor)"),
    "grade_D": ("差", "D (failing)"),
    "h_score": ("一、健康评分与扣分明细", "1. Score and deductions"),
    "h_direct": ("直接判定项（A类）", "Direct criteria (A-class)"),
    "h_findings": ("二、分析发现与整改建议", "2. Findings and rectification"),
    "h_charts": ("三、趋势与统计图", "3. Trends and statistics"),
    "h_hot": ("四、高风险回路排名", "4. Hottest circuits"),
    "h_alarms": ("五、报警记录", "5. Alarms"),
    "h_hazards": ("六、隐患与整改", "6. Hazards and rectification"),
    "h_places": ("七、分区得分", "7. Scores by place"),
    "h_method": ("附：评分与分析方法", "Appendix: scoring and analysis methods"),
    "h_units": ("各单位得分", "Units"),
    "no_direct": ("无直接判定项。", "No direct criterion holds."),
    "direct_note": ("存在直接判定项，等级直接判为“差”，得分不高于 {cap}。",
                    "A direct criterion holds: the grade is D and the score is capped at {cap}."),
    "no_findings": ("本周期未发现异常。", "Nothing abnormal was found in this period."),
    "no_alarms": ("本周期无报警。", "No alarms in this period."),
    "not_assessed": ("未评估（无数据来源）", "not assessed (no data source)"),
    "no_hazard_register": ("隐患与巡检登记尚未接入（待隐患巡检模块上线），本项不扣分。",
                           "No hazard or inspection register yet (it comes with the hazards and inspection module): no deduction."),
    "no_open_hazards": ("周期末无未整改隐患。", "No hazard open at the end of the period."),
    "more": ("……另有 {n} 条", "… and {n} more"),
    "method_text": (
        "得分 = 100 − 各项扣分之和；每项扣分不超过该项分值；要素扣分依据列于每行。"
        "裕度：小时最大值的第95百分位与报警设定值之比；趋势：每日峰值（小时均值最大）的Theil–Sen斜率，"
        "Mann–Kendall检验|Z|≥1.96；用电异常：与前4周同一“周内小时”的中位数/MAD稳健z值≥4；"
        "突变：5分钟均值前后各1小时中位数之差；重复报警：同一测点同一小时≥3天。详见 docs/reports.md。",
        "Score = 100 − the sum of the item deductions; no item loses more than its points; each "
        "element's evidence is listed. Margin: 95th percentile of the hourly maxima over the alarm setting; "
        "trend: Theil–Sen slope of the daily peak hour, Mann–Kendall |Z| ≥ 1.96; out-of-pattern use: robust "
        "z ≥ 4 against the median/MAD of the same hour of the 4 previous weeks; sudden change: medians of "
        "the 5-minute means an hour before and after; recurring alarms: same point, same hour, ≥ 3 days. "
        "See docs/reports.md.",
    ),
    # -- table headers -------------------------------------------------------------------
    "col_item": ("评分项", "Item"),
    "col_element": ("评分要素", "Element"),
    "col_points": ("分值", "Points"),
    "col_deducted": ("扣分", "Deducted"),
    "col_input": ("输入", "Input"),
    "col_evidence": ("依据", "Evidence"),
    "col_time": ("时间", "Time"),
    "col_device": ("设备/回路", "Device / circuit"),
    "col_place": ("位置", "Place"),
    "col_category": ("类别", "Category"),
    "col_value": ("数值", "Value"),
    "col_ack": ("确认用时", "To acknowledge"),
    "col_clear": ("恢复用时", "To clear"),
    "col_status": ("状态", "Status"),
    "col_finding": ("发现", "Finding"),
    "col_seen": ("所见", "What was seen"),
    "col_action": ("整改建议", "Suggested rectification"),
    "col_rank": ("排名", "Rank"),
    "col_residual": ("剩余电流 P95", "Residual current P95"),
    "col_temp": ("温度 P95", "Temperature P95"),
    "col_ratio": ("占设定值", "Of setting"),
    "col_alarms": ("报警数", "Alarms"),
    "col_score": ("得分", "Score"),
    "col_grade": ("等级", "Grade"),
    "col_hazard": ("隐患", "Hazard"),
    "col_due": ("整改期限", "Due"),
    "col_unit": ("单位", "Unit"),
    "col_direct": ("A类项", "A-class"),
    "col_online": ("在线率", "Online"),
    "status_active": ("未恢复", "active"),
    "status_cleared": ("已恢复", "cleared"),
    "status_unack": ("未确认", "unacknowledged"),
    "false_alarm_v": ("误报", "false alarm"),
    # -- categories ------------------------------------------------------------------------
    "cat_fire": ("火警", "fire"),
    "cat_gas": ("可燃气体", "gas"),
    "cat_electrical_alarm": ("电气火灾报警", "electrical alarm"),
    "cat_electrical_pre_alarm": ("电气火灾预警", "electrical pre-alarm"),
    "cat_supervisory": ("监管", "supervisory"),
    "cat_fault": ("故障", "fault"),
    "cat_offline": ("离线", "offline"),
    "class_residual_current": ("剩余电流", "residual current"),
    "class_temperature": ("温度", "temperature"),
    "class_current": ("电流", "current"),
    # -- items and elements --------------------------------------------------------------------
    "item_alarms": ("报警情况", "Alarms"),
    "item_margin": ("运行裕度", "Margin to the settings"),
    "item_trends": ("趋势与突变", "Trends and sudden changes"),
    "item_system": ("监控系统运行", "Monitoring system"),
    "item_response": ("处置响应", "Response"),
    "item_hazards": ("隐患与巡检", "Hazards and inspection"),
    "el_electrical_alarms": ("电气火灾报警（每设备·月）", "Electrical alarms per device-month"),
    "el_pre_alarms": ("电气火灾预警（每设备·月）", "Pre-alarms per device-month"),
    "el_recurring": ("重复报警（同测点同时段）", "Recurring alarms (same point, same hour)"),
    "el_residual_margin": ("剩余电流裕度", "Residual-current margin"),
    "el_temperature_margin": ("线缆温度裕度", "Cable-temperature margin"),
    "el_trends": ("上升趋势（预计越限）", "Rising trends (projected to cross)"),
    "el_sudden": ("剩余电流突变", "Sudden residual-current changes"),
    "el_out_of_pattern": ("用电规律异常（如夜间用电）", "Use out of the usual pattern (e.g. at night)"),
    "el_online": ("设备在线率", "Device online rate"),
    "el_flaky": ("通信不稳定设备", "Flaky devices"),
    "el_faults": ("故障报警（每设备·月）", "Fault alarms per device-month"),
    "el_ack_p90": ("确认用时（90%分位）", "Time to acknowledge (90th percentile)"),
    "el_clear_p90": ("恢复用时（90%分位）", "Time to clear (90th percentile)"),
    "el_unacknowledged": ("周期末未确认报警", "Alarms unacknowledged at the period end"),
    "el_false_alarms": ("误报判定比例", "Share of false-alarm verdicts"),
    "el_open_hazards": ("未整改隐患", "Open hazards"),
    "el_overdue": ("逾期未整改", "Overdue rectifications"),
    "el_inspection": ("巡检完成率", "Inspection completion"),
    # -- inputs ------------------------------------------------------------------------------------
    "in_rate": ("{count} 次 / {dm} 设备·月 = {rate}", "{count} / {dm} device-months = {rate}"),
    "in_count": ("{count} 项", "{count}"),
    "in_severity": ("{count} 个测点，严重度合计 {sum}", "{count} point(s), severity sum {sum}"),
    "in_online": ("{rate}%", "{rate} %"),
    "in_duration": ("{value}（{n} 次报警）", "{value} ({n} alarms)"),
    "in_share": ("{count}/{total} = {rate}%", "{count}/{total} = {rate} %"),
    "in_none": ("无", "none"),
    "in_completion": ("{done}/{due} = {rate}%", "{done}/{due} = {rate} %"),
    # -- evidence lines ------------------------------------------------------------------------------
    "ev_alarm": ("{device} {point}：{value}，{time}", "{device} {point}: {value} at {time}"),
    "ev_recurring": ("{device} {point}：{category}，{days} 天于 {hour}:00 时段（{dates}）",
                     "{device} {point}: {category} in the {hour}:00 hour on {days} days ({dates})"),
    "ev_margin": ("{device} {point}：P95 {q}{unit}，为设定值 {setting}{unit} 的 {ratio}%，严重度 {sev}",
                  "{device} {point}: P95 {q} {unit} = {ratio} % of the {setting} {unit} setting, severity {sev}"),
    "ev_trend": ("{device} {point}：每日上升 {slope}{unit}，约 {days} 天后（{date}）达到设定值 {setting}{unit}",
                 "{device} {point}: +{slope} {unit}/day, reaches the {setting} {unit} setting in about {days} days ({date})"),
    "ev_sudden": ("{device} {point}：{before} → {after}{unit}，{time}", "{device} {point}: {before} → {after} {unit} at {time}"),
    "ev_episode": ("{device} {point}：{start}–{end} 均值 {value}{unit}，平时 {baseline}{unit}（z={z}）",
                   "{device} {point}: {value} {unit} from {start} to {end}, usually {baseline} {unit} (z = {z})"),
    "ev_flaky": ("{device}：离线 {outages} 次，在线率 {rate}%，最长 {longest}",
                 "{device}: {outages} outages, online {rate} %, longest {longest}"),
    "ev_slowest": ("{device}：{category}，{time} 起，用时 {value}", "{device}: {category} from {time}, took {value}"),
    "ev_unack": ("{device}：{category}，{time} 起未确认", "{device}: {category} since {time}, not acknowledged"),
    "ev_verdict": ("{device}：{time} 判定为误报", "{device}: false alarm at {time}"),
    "ev_hazard": ("{title}（{time} 发现）", "{title} (found {time})"),
    "ev_overdue": ("{title}：期限 {due}", "{title}: due {due}"),
    # -- direct criteria --------------------------------------------------------------------------------
    "dc_online": ("监控系统在线率 {rate}% 低于 {limit}%，系统不能正常运行",
                  "monitoring online {rate} %, below {limit} %: the system does not run normally"),
    "dc_unhandled": ("{device} {point} 报警 {hours} 小时未确认（{time} 起）",
                     "{device} {point}: alarm unacknowledged for {hours} h (from {time})"),
    "dc_persistent": ("{device} {point} 在 {share}% 的时间处于报警值以上",
                      "{device} {point} at or over its alarm setting {share} % of the time"),
    "dc_major": ("存在未整改的重大火灾隐患：{title}", "an open major fire hazard: {title}"),
    # -- findings ------------------------------------------------------------------------------------------
    "f_trend": ("上升趋势", "Rising trend"),
    "f_trend_seen": ("{point}每日峰值上升 {slope}{unit}/天（Mann–Kendall Z={z}），按此趋势约 {days} 天后（{date}）达到报警设定值 {setting}{unit}。",
                     "The daily peak of {point} rises {slope} {unit}/day (Mann–Kendall Z = {z}); at this rate it reaches the {setting} {unit} alarm setting in about {days} days ({date})."),
    "f_trend_do_residual_current": ("检查该回路绝缘（兆欧表测试），排查受潮、老化线路与漏电设备，必要时分路排查。",
                                    "Test the circuit's insulation (megger), look for damp or aged wiring and leaking appliances; split the circuit to find the branch if needed."),
    "f_trend_do_temperature": ("检查接线端子是否松动、氧化，核对负荷与线径，必要时紧固或更换，并红外测温复核。",
                               "Check the terminals for looseness and oxidation, compare the load with the cable size, tighten or replace, and confirm with an infrared scan."),
    "f_night": ("夜间/非常规时段用电", "Load at night / out of hours"),
    "f_pattern": ("用电规律异常", "Use out of the usual pattern"),
    "f_pattern_seen": ("{point}共 {n} 段（{spans}）均值 {value}{unit}，而前几周同一时段中位数为 {baseline}{unit}（稳健z最大 {z}）。",
                       "{n} spells of {point} ({spans}) averaged {value} {unit}; the same hours of the previous weeks had a median of {baseline} {unit} (robust z up to {z})."),
    "f_pattern_do": ("核查该时段是否有人员违规用电或设备未关闭（如大功率电器、私拉乱接），落实下班断电制度。",
                     "Find out who or what used power at that time (high-power appliances, illegal connections, equipment left on) and enforce switching off after hours."),
    "f_recurring": ("重复报警", "Recurring alarm"),
    "f_recurring_seen": ("{point}的{category}在 {days} 天内都发生于 {hour}:00 时段：{dates}。",
                         "{point}: {category} in the {hour}:00 hour on {days} days: {dates}."),
    "f_recurring_do": ("对照该时段的用电设备（定时启动的负载、空调、水泵等），排查周期性漏电或过载源。",
                       "Look at what runs at that hour (timed loads, air conditioning, pumps) and find the periodic source of the leakage or overload."),
    "f_sudden": ("剩余电流突变", "Sudden residual-current change"),
    "f_sudden_seen": ("{time} {point}由 {before}{unit} 变为 {after}{unit}（变化 {delta}{unit}）。",
                      "At {time} {point} went from {before} {unit} to {after} {unit} ({delta} {unit})."),
    "f_sudden_do": ("检查突变时刻投入的设备与线路，排查绝缘击穿、进水或违规接入。",
                    "Check what was switched on at that moment: insulation breakdown, water ingress or an illegal connection."),
    "f_flaky": ("通信不稳定", "Flaky communication"),
    "f_flaky_seen": ("离线 {outages} 次，累计 {offline}，在线率 {rate}%，故障报警 {faults} 次。",
                     "{outages} outages totalling {offline}, online {rate} %, {faults} fault alarms."),
    "f_flaky_do": ("检查设备供电、通信线路（RS-485 接线、终端电阻）或无线信号强度，必要时更换通信模块。",
                   "Check the device's power supply and communication line (RS-485 wiring, termination) or radio signal; replace the module if needed."),
    "f_margin": ("运行裕度不足", "Little margin to the setting"),
    "f_margin_seen": ("{point}小时最大值的P95为 {q}{unit}，达到报警设定值 {setting}{unit} 的 {ratio}%；{share}% 的小时超过设定值的80%。",
                      "The 95th percentile of {point}'s hourly maxima is {q} {unit}, {ratio} % of the {setting} {unit} alarm setting; {share} % of the hours were above 80 % of it."),
    "f_margin_do_residual_current": ("排查回路上的漏电设备与线路绝缘，必要时分回路供电，降低自然泄漏。",
                                     "Find the leaking appliances and weak insulation on the circuit; split the circuit to lower its natural leakage if needed."),
    "f_margin_do_temperature": ("核查负荷是否超过线缆载流量，检查接头，必要时均衡负荷或更换线缆。",
                                "Check the load against the cable's ampacity and the joints; balance the load or replace the cable if needed."),
    "sev_high": ("高", "high"),
    "sev_medium": ("中", "medium"),
    "sev_low": ("低", "low"),
    # -- charts --------------------------------------------------------------------------------------------
    "ch_trend": ("{cls}：每日峰值（前 {n} 个回路）与设定值", "{cls}: daily peak of the top {n} circuits, with the settings"),
    "ch_alarm_setting": ("报警设定值", "alarm setting"),
    "ch_pre_setting": ("预警设定值", "pre-alarm setting"),
    "ch_by_category": ("按类别报警数", "Alarms by category"),
    "ch_by_hour": ("按小时报警数", "Alarms by hour of day"),
    "ch_online": ("每日设备在线率", "Device online rate per day"),
    "ch_response": ("确认与恢复用时（分钟）", "Minutes to acknowledge and to clear"),
    "ch_ack": ("确认", "acknowledge"),
    "ch_clear": ("恢复", "clear"),
    "ch_score": ("各项得分（满分）", "Points kept per item (of the maximum)"),
    "ch_pattern": ("{device} {point}：小时均值与平时（前4周同时段中位数）", "{device} {point}: hourly mean and the usual (median of the same hour, 4 previous weeks)"),
    "ch_usual": ("平时", "usual"),
    "ch_value": ("实测", "measured"),
    "ch_margin": ("小时最大值 / 设定值 分布", "Hourly maxima over the setting"),
    "ch_no_data": ("无数据", "no data"),
    # -- the running plugin: messages and panel pages ------------------------------------------
    "sched_weekly": ("周报", "weekly report"),
    "sched_monthly": ("月报", "monthly report"),
    "sched_quarterly": ("季报", "quarterly report"),
    "msg_title": ("电气火灾健康体检{kind}：{unit} {period}", "Electrical-fire health check {kind}: {unit} {period}"),
    "msg_body": ("{unit} {period} {kind}已生成：健康得分 {score}，等级 {grade}。下载：",
                 "The {kind} of {unit} for {period} is ready: health score {score}, grade {grade}. Download:"),
    "live_title": ("实时健康体检", "Live health check"),
    "live_window": ("统计窗口：{start} 至 {end}（近 {days} 天）", "Window: {start} to {end} (last {days} days)"),
    "live_deductions": ("扣分明细", "Deductions"),
    "live_none": ("无扣分。", "No deductions."),
    "live_not_ready": ("实时评分尚在加载，请稍后刷新。", "The live score is still loading; reload shortly."),
    "list_title": ("体检报告", "Health-check reports"),
    "list_none": ("尚无已生成的报告。", "No report has been made yet."),
    "col_created": ("生成时间", "Created"),
    "col_kind": ("类型", "Kind"),
    "col_files": ("下载", "Download"),
    "col_sent": ("发送", "Sent"),
    "sent_ok": ("已发送 {n}", "sent {n}"),
    "sent_failed": ("失败 {n}", "failed {n}"),
    "err_unit": ("没有单位 {unit}", "no unit {unit}"),
    "err_report": ("没有报告 {id}", "no report {id}"),
    "err_file": ("报告 {id} 没有文件 {name}", "report {id} has no file {name}"),
}


def t(key: str, lang: str, **fields: object) -> str:
    zh, en = TEXT[key]
    text = zh if lang == "zh" else en
    return text.format(**fields) if fields else text


def when(ts: float | None, tz: str, seconds: bool = False) -> str:
    if ts is None:
        return "-"
    return dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def day(ts: float | None, tz: str) -> str:
    return "-" if ts is None else dt.datetime.fromtimestamp(ts, ZoneInfo(tz)).strftime("%Y-%m-%d")


def duration(seconds: float | None, lang: str) -> str:
    if seconds is None:
        return "-"
    s = max(0.0, seconds)
    if s < 3600:
        return f"{s / 60:.0f} 分钟" if lang == "zh" else f"{s / 60:.0f} min"
    if s < 172800:
        return f"{s / 3600:.1f} 小时" if lang == "zh" else f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} 天" if lang == "zh" else f"{s / 86400:.1f} d"


def num(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text
