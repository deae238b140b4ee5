"""Fire water supply: tank levels, pipe-network pressure, fire pumps (Modbus) and hydrant monitors (MQTT).

Drivers (register maps and the hydrant payload are data in ``profiles/``):

* ``water.level`` — level transmitter in a fire pool / roof tank; with the tank's
  geometry in the device options it also reports usable volume (m³), percent of the
  normal level, and how many minutes the water lasts at the rated fire flow;
* ``water.pressure`` — hydrant / sprinkler pipe-network pressure transmitter (MPa);
* ``water.pump`` — fire-pump control cabinet: running, fault, power, auto/manual, start/stop;
* ``water.hydrant`` — wireless hydrant monitors over MQTT: pressure, open/close and
  water drawn, tilt and impact, GNSS position (``latitude`` / ``longitude`` points).

Alarms (see ``rules.py`` and docs/plugins/water.md for every default and its source):
low/high network pressure (generic ``threshold``, GB 50974 5.2.2), tank low/high level,
hydrant low/high pressure (7.2.8) and tilt (``water_threshold``), pump not in
automatic mode, power loss and hydrant impact (``water_status``), "fire pump failed to
start" (generic ``demand_feedback``, 120 s, 11.0.3), hydrant misuse
(``hydrant_misuse``) and offline devices (``water_offline``: reported heartbeat or Modbus reachability).
"""

from __future__ import annotations

from typing import Any

from firebus.sdk import Manifest, hookimpl

from .drivers import DRIVERS
from .rules import RULES

FIREBUS_MANIFEST = Manifest(
    name="water",
    description="Fire water supply: tank level and endurance, network pressure, fire pumps, hydrant monitors",
    point_classes=("water_level", "pressure", "pump_state", "pump_mode", "hydrant_open", "latitude", "longitude"),
    transports=("modbus_tcp", "modbus_rtu", "mqtt"),
    documentation="docs/plugins/water.md",
)

POINT_CLASSES = [
    "water_volume", "water_level_percent", "water_endurance", "power_loss", "outlet_pressure", "command",
    "hydrant_pressure", "hydrant_open", "water_use", "tilt", "knock", "latitude", "longitude",
    "heartbeat_interval",
]


@hookimpl
def firebus_register_drivers(core: Any) -> list[type]:
    return list(DRIVERS)


@hookimpl
def firebus_register_rules(core: Any) -> list[type]:
    return list(RULES)


@hookimpl
def firebus_register_point_classes(core: Any) -> list[str]:
    return list(POINT_CLASSES)


@hookimpl
def firebus_register_simulators(sim: Any) -> None:
    from .sim import add_command

    add_command(sim)  # firebus sim hydrant
