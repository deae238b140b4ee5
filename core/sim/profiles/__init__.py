"""Built-in example register maps (YAML data, format of ``firebus.sdk.modbus``) and demo scenarios."""
