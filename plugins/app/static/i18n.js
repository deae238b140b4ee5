// Every word of the app in Chinese and English (zh by default; the header button switches and
// the choice is kept in localStorage).  Category and state names are the panel's.

const S = {
  tab_alarms: ["报警", "Alarms"], tab_hazards: ["隐患", "Hazards"], tab_patrol: ["巡检", "Patrol"],
  tab_reports: ["报告", "Reports"],
  online: ["在线", "Online"], offline: ["离线", "Offline"], updated: ["最后更新 {t}", "last updated {t}"],
  never: ["尚无数据", "no data yet"], loading: ["加载中…", "Loading…"],
  signed_out: ["登录已失效，请重新登录。", "You are signed out. Sign in again."], sign_in: ["登录", "Sign in"],
  my_alarms: ["我的报警", "My alarms"], no_alarms: ["暂无未处理报警", "No open alarms"],
  back: ["‹ 返回", "‹ Back"], unit: ["单位", "Unit"], where: ["位置", "Where"], device: ["设备", "Device"],
  value: ["数值", "Value"], started: ["开始时间", "Started"], state: ["状态", "State"], history: ["处理记录", "History"],
  ack: ["确认", "Acknowledge"], silence: ["消音", "Silence"], verdict: ["判定", "Verdict"],
  real_fire: ["真实火警", "Real fire"], false_alarm: ["误报", "False alarm"], test: ["测试", "Test"],
  done: ["已完成", "Done"], read_only: ["您的角色只能查看报警，不能处理。", "Your role may view alarms, not act on them."],
  failed: ["操作失败：{m}", "Failed: {m}"],
  offline_act: ["离线时不能操作，请联网后重试。", "Offline: actions need the network. Try again when online."],
  not_found: ["没有此报警（或不在您的范围内）。", "No such alarm (or not in your scope)."],
  silenced: ["已消音", "Silenced"], late_alarm: ["补报", "Reported late"], count: ["次数", "Count"],
  cat_fire: ["火警", "Fire"], cat_gas: ["可燃气体", "Gas"], cat_electrical_pre_alarm: ["电气火灾预警", "Electrical pre-alarm"],
  cat_electrical_alarm: ["电气火灾报警", "Electrical alarm"], cat_supervisory: ["监管", "Supervisory"],
  cat_fault: ["故障", "Fault"], cat_offline: ["离线", "Offline"],
  st_active_unack: ["报警中·未确认", "Active, unacknowledged"], st_active_ack: ["报警中·已确认", "Active, acknowledged"],
  st_cleared_unack: ["已恢复·未确认", "Cleared, unacknowledged"], st_cleared_ack: ["已处理", "Closed"],
  tr_new: ["报警", "Raised"], tr_update: ["更新", "Updated"], tr_acknowledged: ["已确认", "Acknowledged"],
  tr_silenced: ["已消音", "Silenced"], tr_cleared: ["已恢复", "Cleared"], tr_verdict: ["判定", "Verdict"],
  tr_escalate: ["升级提醒", "Escalated"],
  hazards: ["我的隐患", "My hazards"], no_hazards: ["暂无待整改隐患", "No hazards to rectify"],
  major: ["重大隐患", "Major hazard"], general: ["一般隐患", "Hazard"],
  state_open: ["待指派", "Open"], state_assigned: ["已指派", "Assigned"], state_rectifying: ["整改中", "Rectifying"],
  state_submitted: ["待复查", "Submitted"], state_closed: ["已关闭", "Closed"],
  overdue: ["已超期", "Overdue"], deadline: ["整改期限", "Deadline"], responsible: ["责任人", "Responsible"],
  start: ["开始整改", "Start"], submit: ["提交整改", "Submit rectification"], verify: ["复查通过", "Verify and close"],
  photo: ["整改照片", "Photo of the rectification"], note: ["备注", "Note"],
  photo_first: ["请先拍摄整改照片。", "Take a photo of the rectification first."],
  board: ["打开隐患看板", "Open the hazard board"],
  no_inspection: ["本系统未启用巡检与隐患功能。", "Patrols and hazards are not enabled on this system."],
  patrol: ["巡检", "Patrol"], open_tasks: ["待完成的巡检任务", "Open patrol tasks"], no_tasks: ["暂无待完成任务", "No open patrol tasks"],
  start_patrol: ["开始巡检（扫码）", "Start patrol (scan)"], due: ["截止 {t}", "due {t}"],
  reports: ["单位报告", "Unit reports"], no_reports: ["暂无报告", "No reports yet"], score: ["得分", "Score"],
  live_score: ["实时评分", "Live score"], all_reports: ["全部报告", "All reports"],
  no_report_plugin: ["本系统未启用报告功能。", "Reports are not enabled on this system."],
  grade_A: ["优", "A (good)"], grade_B: ["良", "B (fair)"], grade_C: ["中", "C (poor)"], grade_D: ["差", "D (failing)"],
  push_on: ["开启推送通知", "Turn on push notifications"], push_off: ["关闭推送通知", "Turn off push notifications"],
  push_enabled: ["本机已开启推送通知", "Push notifications are on for this phone"],
  push_unsupported: ["此浏览器不支持网页推送，请使用企业微信、钉钉、飞书或 ntfy 接收通知。",
    "This browser has no Web Push; receive notifications by WeCom, DingTalk, Feishu or ntfy."],
  push_denied: ["通知权限被拒绝，请在浏览器设置中允许。", "Notifications are blocked; allow them in the browser's settings."],
  push_failed: ["推送订阅失败：{m}", "Could not subscribe: {m}"],
  role_admin: ["管理员", "Admin"], role_integrator: ["集成商", "Integrator"], role_unit_manager: ["消防安全管理人", "Unit manager"],
  role_duty_officer: ["值班员", "Duty officer"], role_supervisor: ["监管", "Supervisor"],
  role_maintenance_engineer: ["维保工程师", "Maintenance engineer"], role_fire_inspector: ["消防监督员", "Fire inspector"],
  language: ["English", "中文"], app_title: ["消防监控", "Fire monitoring"],
};

const KEY = "firebus.app.lang";
let lang = "zh";

export function setLang(value, remember) {
  lang = value === "en" ? "en" : "zh";
  if (remember) localStorage.setItem(KEY, lang);
  document.documentElement.lang = lang === "en" ? "en" : "zh-CN";
}

export function chosenLang() { return localStorage.getItem(KEY); }
export function currentLang() { return lang; }

export function t(key, args) {
  const pair = S[key];
  let text = pair ? pair[lang === "en" ? 1 : 0] : key;
  for (const [k, v] of Object.entries(args || {})) text = text.replace("{" + k + "}", v);
  return text;
}

export function has(key) { return key in S; }
