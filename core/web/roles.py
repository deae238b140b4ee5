"""Roles, and what each may see and do (the permissions every page, API call and stream checks).

The sets below are the permissions; ``Principal`` (``accounts``) asks them.  A role other
than admin and integrator sees only the units and organisations assigned to its user.
"""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"  # everything, every unit, user management
    INTEGRATOR = "integrator"  # commissioning: every unit, plugins, bus health
    UNIT_MANAGER = "unit_manager"  # 消防安全管理人: their units, alarm actions
    DUTY_OFFICER = "duty_officer"  # 值班员: their units, alarm actions
    MAINTENANCE_ENGINEER = "maintenance_engineer"  # 维保工程师: the units they serve, alarm actions, repairs
    SUPERVISOR = "supervisor"  # 行业/属地监管: reads across their units and organisations, urges
    FIRE_INSPECTOR = "fire_inspector"  # 消防监督员: reads across their organisations, urges


#: Roles that see every unit (and devices with no unit at all).
ALL_UNIT_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR})
#: Roles that may acknowledge, silence and give a verdict (and, by the same rule, act on a
#: plugin's records: rectify a hazard).  A maintenance engineer answers faults and false
#: alarms of the units they serve; supervisors and inspectors watch and urge, the unit acts.
ALARM_ACTION_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.UNIT_MANAGER, Role.DUTY_OFFICER,
                                Role.MAINTENANCE_ENGINEER})
#: Roles that may urge (催促) a unit: ``firebus.sdk.web.URGE_ROLES`` (the supervision plugin).
URGE_ROLES = frozenset({Role.SUPERVISOR, Role.FIRE_INSPECTOR, Role.ADMIN})
#: Roles that see system pages: plugins, bus health, the full notification log.
SYSTEM_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR})
