"""Built-in transports ("hubs"): one shared connection per MQTT broker or Modbus line.

* ``mqtt`` — ``firebus.core.transports.mqtt.MqttTransport``
* ``modbus_tcp`` / ``modbus_rtu`` — ``firebus.core.transports.modbus``

Registered by ``firebus.core.builtin``; imported lazily there so a site without
Modbus devices does not pay for pymodbus at start-up.  Options and guarantees:
docs/transports.md.
"""
