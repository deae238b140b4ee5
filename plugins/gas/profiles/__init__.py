"""Register maps and MQTT payload mappings shipped with the gas plugin (YAML data).

Add a model by dropping a file here or naming its path in the device's ``profile``
option.  See docs/plugins/gas.md.
"""
