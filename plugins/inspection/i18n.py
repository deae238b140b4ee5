"""Every word the inspection pages, labels and forms show, in Chinese and English."""

from __future__ import annotations

TEXT: dict[str, tuple[str, str]] = {
    # patrol page
    "patrol_title": ("消防巡查", "Fire patrol"),
    "scan": ("扫码", "Scan QR"),
    "nfc": ("碰一碰 NFC", "Tap NFC tag"),
    "nfc_ready": ("请将手机靠近 NFC 标签", "Hold the phone to the NFC tag"),
    "nfc_none": ("此浏览器不支持 NFC，请扫码或输入编码", "This browser has no NFC: scan or type the code"),
    "camera_none": ("此浏览器不支持扫码，请输入标签编码", "This browser cannot scan codes: type the tag code"),
    "camera_denied": ("无法打开摄像头", "The camera could not be opened"),
    "code": ("标签编码", "Tag code"),
    "go": ("确定", "Go"),
    "stop": ("停止", "Stop"),
    "tasks": ("我的巡查任务", "My patrol tasks"),
    "no_tasks": ("当前没有巡查任务", "No patrol task now"),
    "due": ("截止", "due"),
    "done": ("已完成", "done"),
    "missed": ("漏检", "missed"),
    "open": ("进行中", "open"),
    "checkpoint": ("巡查点位", "Checkpoint"),
    "unknown_tag": ("未找到此标签对应的点位", "No checkpoint has this tag"),
    "items": ("检查项目", "Items to check"),
    "normal": ("正常", "Normal"),
    "fault": ("异常", "Fault"),
    "major": ("重大隐患", "Major hazard"),
    "note": ("备注", "Notes"),
    "photo": ("拍照", "Photo"),
    "submit": ("提交记录", "Submit record"),
    "queued": ("待发送", "waiting to send"),
    "sent": ("已发送", "sent"),
    "offline": ("离线：记录已保存，联网后自动发送", "Offline: saved, sent when the connection is back"),
    "online": ("在线", "Online"),
    "saved": ("记录已保存", "Record saved"),
    "send_failed": ("发送失败，将重试", "Sending failed; will retry"),
    "rejected": ("记录被拒绝", "Record refused"),
    "all_items_done": ("本周期内各项已检查", "Every item checked this period"),
    "choose": ("选择点位", "Pick a checkpoint"),
    "language": ("English", "中文"),
    # hazard board
    "hazards_title": ("隐患整改", "Hazards and rectification"),
    "state_open": ("待处理", "open"),
    "state_assigned": ("已指派", "assigned"),
    "state_rectifying": ("整改中", "rectifying"),
    "state_submitted": ("待复查", "submitted"),
    "state_closed": ("已关闭", "closed"),
    "overdue": ("已逾期", "overdue"),
    "deadline": ("整改期限", "Deadline"),
    "responsible": ("责任人", "Responsible"),
    "description": ("隐患描述", "Description"),
    "severity": ("等级", "Severity"),
    "general": ("一般隐患", "General"),
    "no_hazards": ("没有隐患", "No hazards"),
    # labels
    "label_hint": ("巡查点 · 请扫码或碰 NFC 打卡", "Checkpoint: scan or tap to log a patrol"),
    "labels_title": ("巡查点标签", "Checkpoint labels"),
    # forms (GB 25201 records)
    "form_patrol": ("建筑消防设施巡查记录表", "Patrol record of building fire facilities"),
    "form_duty": ("消防控制室值班记录表", "Fire control room duty record"),
    "form_hazards": ("火灾隐患整改记录表", "Hazard rectification record"),
    "month": ("月份", "Month"),
    "unit": ("单位", "Unit"),
    "time": ("时间", "Time"),
    "place": ("位置", "Place"),
    "item": ("项目", "Item"),
    "result": ("结果", "Result"),
    "patroller": ("巡查人", "Patrolled by"),
    "method": ("方式", "Method"),
    "shift": ("班次", "Shift"),
    "officers": ("值班人员", "Officers on duty"),
    "handover": ("交接班情况", "Handover"),
    "alarms_handled": ("处理报警数", "Alarms handled"),
    "state": ("状态", "State"),
    "created": ("发现时间", "Found"),
    "closed": ("关闭时间", "Closed"),
    "generated": ("生成时间", "Generated"),
    "none": ("无记录", "No records"),
    "retention": ("依 GB 25201：巡查、值班记录保存不少于 1 年", "GB 25201: patrol and duty records are kept at least 1 year"),
    "presence": ("到位", "visited"),
    "signature": ("检查人签名", "Signature"),
}

LANGS = ("zh", "en")


def t(lang: str, key: str) -> str:
    zh, en = TEXT[key]
    return en if lang == "en" else zh


def both(key: str) -> str:
    """``中文 / English`` for forms and labels read by either."""
    zh, en = TEXT[key]
    return f"{zh} / {en}"


def table(lang: str) -> dict[str, str]:
    return {k: (en if lang == "en" else zh) for k, (zh, en) in TEXT.items()}
