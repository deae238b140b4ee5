"""Test-time tooling for plugin authors, shipped with the SDK (see docs/sdk.md).

* ``pytest_plugin`` — fixtures loaded through the ``pytest11`` entry point
  (``firebus_core``, ``firebus_recorder``, ``firebus_modbus_sim`` …);
* ``contracts`` — suites to subclass for drivers, notifiers and detectors, with
  bronze/silver/gold quality levels;
* ``waiting`` — ``eventually`` / ``wait``: the one way a test waits for something;
* ``harness``, ``recorder``, ``outbox``, ``mosquitto`` — the pieces behind them.

Unlike the rest of ``firebus.sdk`` this package drives the core (runtime,
simulator, web app); it imports those lazily so loading the pytest plugin
costs nothing.  Plugins themselves must not import it outside their tests.
"""
