"""Configuration of the health check: scoring weights, grade bands, analysis parameters.

Every default is justified in docs/reports.md (section "Weights and their
sources"); those marked *design choice* there are firebus's own and meant to be
tuned per site (the site file's ``reports:`` section, or ``--scoring FILE``).
"""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Grade(StrEnum):
    A = "A"  # 优
    B = "B"  # 良
    C = "C"  # 中
    D = "D"  # 差


class Rate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """deduction = weight × min(1, rate / full); rate per device-month (or a share)."""

    weight: float
    full: float


class Each(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """deduction = min(cap, per × Σ severity) over the things found (severity 1 unless said)."""

    per: float
    cap: float


class Ramp(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """deduction = weight × clip((x − good) / (bad − good), 0, 1); ``bad`` may be below ``good``."""

    weight: float
    good: float
    bad: float


class Band(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    grade: Grade
    min_score: float


class DirectCriteria(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A-class items (直接判定项): any one makes the grade D whatever the points say."""

    online_below: float = 0.80  # the unit's monitoring ran less than this share of the period
    unhandled_hours: float = 24.0  # an electrical alarm active and unacknowledged this long
    persistent_share: float = 0.05  # a circuit at or over its alarm setting this share of its hours
    major_hazard: bool = True  # an open hazard judged major (重大火灾隐患, GB 35181-2025)
    score_cap: float = 59.0  # the score shown is at most this when a direct criterion holds


class ScoringConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    # -- item caps (sum 100) ------------------------------------------------------------
    cap_alarms: float = 25.0
    cap_margin: float = 20.0
    cap_trends: float = 15.0
    cap_system: float = 15.0
    cap_response: float = 15.0
    cap_hazards: float = 10.0
    # -- I1 alarms --------------------------------------------------------------------
    electrical_alarms: Rate = Rate(20.0, 0.5)  # alarms per device-month
    pre_alarms: Rate = Rate(8.0, 1.0)
    recurring: Each = Each(2.0, 5.0)  # per recurring group (same point, same hour)
    # -- I2 margin to the alarm setting -------------------------------------------------
    residual_margin: Each = Each(3.0, 10.0)  # per point × its margin severity
    temperature_margin: Each = Each(3.0, 10.0)
    margin_quantile: float = 0.95  # of the hourly maxima
    margin_low: float = 0.60  # ratio to the setting where the margin severity starts
    margin_high: float = 0.90  # ratio where it is 1
    # -- I3 trends and events -----------------------------------------------------------
    trends: Each = Each(4.0, 8.0)  # per point projected to cross its setting
    trend_bands: tuple[tuple[float, float], ...] = ((30.0, 1.0), (90.0, 0.5), (180.0, 0.25))  # (days ≤, severity)
    sudden: Each = Each(1.0, 5.0)  # per sudden residual-current change
    out_of_pattern: Each = Each(1.0, 5.0)  # per episode off the circuit's hour-of-week baseline
    # -- I4 the monitoring system -------------------------------------------------------
    online: Ramp = Ramp(10.0, 0.99, 0.90)  # device online rate
    flaky: Each = Each(2.0, 5.0)  # per flaky device
    faults: Rate = Rate(5.0, 0.5)  # fault alarms per device-month
    # -- I5 response ----------------------------------------------------------------------
    ack_p90: Ramp = Ramp(6.0, 300.0, 3600.0)  # seconds
    clear_p90: Ramp = Ramp(4.0, 3600.0, 259200.0)
    unacknowledged: Each = Each(1.0, 3.0)  # per alarm still unacknowledged at the period end
    false_alarms: Rate = Rate(2.0, 0.5)  # share of verdicts that say false alarm
    # -- I6 hazards and inspection (issue 20) ----------------------------------------------
    open_hazards: Each = Each(2.0, 6.0)
    overdue: Each = Each(3.0, 6.0)
    inspection: Ramp = Ramp(4.0, 0.95, 0.60)  # completion share
    # -- A-class and bands ------------------------------------------------------------------
    direct: DirectCriteria = DirectCriteria()
    bands: tuple[Band, ...] = (Band(Grade.A, 90.0), Band(Grade.B, 75.0), Band(Grade.C, 60.0), Band(Grade.D, 0.0))
    #: a device-month is this many device-days of exposure
    month_days: float = 30.0


class AnalysisConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    #: point classes the health check reads (circuits = devices with residual current or temperature)
    circuit_classes: tuple[str, ...] = ("residual_current", "temperature")
    #: classes checked against their own hour-of-week baseline
    baseline_classes: tuple[str, ...] = ("current",)
    # trend: Theil–Sen on daily peak hours, Mann–Kendall significance
    trend_window_days: float = 28.0  # at least this much history ending at the period end
    trend_min_days: int = 7
    trend_z: float = 1.96  # two-sided 5 %
    trend_horizon_days: float = 180.0  # projections further out are not findings
    # baseline: robust z against the same hour of the previous weeks
    baseline_weeks: int = 4
    baseline_min_weeks: int = 3
    baseline_z: float = 4.0
    baseline_min_hours: int = 2
    #: smallest difference from the baseline median that counts, per class (unit of the point)
    baseline_floor: dict[str, float] = msgspec.field(
        default_factory=lambda: {"current": 1.0, "residual_current": 20.0, "temperature": 3.0})
    night_hours: tuple[int, int] = (22, 6)  # local hours counted as night (from, to)
    # recurring alarms
    recurring_min_days: int = 3
    # sudden change: median of w 5-minute means after minus before
    sudden_jump: dict[str, float] = msgspec.field(default_factory=lambda: {"residual_current": 50.0})
    sudden_window: int = 12
    sudden_direction: str = "rise"  # rise | both
    sudden_max_windows: int = 400
    # flaky devices
    flaky_min_outages: int = 3
    flaky_online_below: float = 0.95
    hot_top: int = 10
    plot_top: int = 6


class ScheduleKind(StrEnum):
    WEEKLY = "weekly"  # the ISO week before, on Mondays
    MONTHLY = "monthly"  # the month before, on the 1st
    QUARTERLY = "quarterly"  # the quarter before, on the 1st of Jan/Apr/Jul/Oct


class OutFormat(StrEnum):
    PDF = "pdf"
    HTML = "html"
    JSON = "json"


class Recipients(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """Who is sent a scheduled report: people of ``notify.people`` with one of ``roles``
    (and the report's unit in their ``units``, or no units), on each of ``channels``
    (keys of ``notify.channels``; group channels get one message)."""

    roles: tuple[str, ...]
    channels: tuple[str, ...]


class Schedule(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One periodic report: made at ``at`` (HH:MM, site timezone) on the first day of the next period."""

    every: ScheduleKind
    at: str = "01:00"
    units: tuple[str, ...] = ()  # unit keys; empty: every unit
    formats: tuple[OutFormat, ...] = (OutFormat.PDF, OutFormat.HTML, OutFormat.JSON)
    languages: tuple[str, ...] = ()  # zh | en; empty: reports.language, else the site's
    recipients: tuple[Recipients, ...] = ()


class LiveConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    enabled: bool = True
    window_days: float = 30.0  # the trailing window the live score covers
    refresh_s: float = 60.0  # new rollup buckets are scored at most this often (an alarm: at once)


class ReportsConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The site file's ``reports:`` section."""

    scoring: ScoringConfig = ScoringConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    language: str = ""  # zh | en; empty: the site's language
    schedule: tuple[Schedule, ...] = ()
    live: LiveConfig = LiveConfig()
    #: where generated reports are written; relative paths are relative to the database's folder
    output_dir: str = "reports"
    #: the panel's address as people reach it, for links in messages (e.g. https://fire.example.cn)
    base_url: str = ""


def load_config(data: object) -> ReportsConfig:
    """``reports:`` as plain data → ReportsConfig (msgspec.ValidationError names the field)."""
    return msgspec.convert(data or {}, ReportsConfig, strict=False)
