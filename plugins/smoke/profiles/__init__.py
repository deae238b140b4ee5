"""Payload profiles shipped with the smoke plugin (YAML data, format of ``firebus.sdk.jsonmap``)."""
