"""The words of the pages the server renders (the signed alarm link), in Chinese and English.

The shell's own words are in ``static/i18n.js``; category, state and role names are the
SDK's (``firebus.sdk.vocab``), the same the panel shows.
"""

from __future__ import annotations

from firebus.sdk.vocab import vocabulary_labels

LANGS = ("zh", "en")

STRINGS: dict[str, tuple[str, str]] = {
    "link_title": ("报警信息", "Alarm"),
    "what": ("事件", "What"),
    "where": ("位置", "Where"),
    "when": ("时间", "When"),
    "state": ("状态", "State"),
    "device": ("设备", "Device"),
    "verdict": ("判定", "Verdict"),
    "sign_in": ("登录后处理", "Sign in to act"),
    "language": ("English", "中文"),
    "bad_title": ("链接无效", "Invalid link"),
    "bad_text": ("此链接无效或已被改动，不能打开报警。请登录查看。",
                 "This link is not valid or has been altered; it does not open an alarm. Sign in to see your alarms."),
    "expired_title": ("链接已过期", "Link expired"),
    "expired_text": ("此链接已过期。请登录查看该报警。", "This link has expired. Sign in to see the alarm."),
    "gone_title": ("没有此报警", "No such alarm"),
    "gone_text": ("链接指向的报警不存在。", "The alarm this link points to does not exist."),
    "off_title": ("链接不可用", "Links unavailable"),
    "off_text": ("此系统尚未启用报警链接。请登录查看。", "Alarm links are not enabled on this system. Sign in to see your alarms."),
    **vocabulary_labels(),  # cat_*, st_*, role_*: the SDK's names (firebus.sdk.vocab)
    "silenced": ("已消音", "Silenced"),
    "late_alarm": ("补报", "Reported late"),
    "v_real_fire": ("真实火警", "Real fire"),
    "v_false_alarm": ("误报", "False alarm"),
    "v_test": ("测试", "Test"),
}


def t(lang: str, key: str) -> str:
    pair = STRINGS.get(key)
    if pair is None:
        return key
    return pair[1] if lang == "en" else pair[0]
