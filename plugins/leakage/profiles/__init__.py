"""Register maps shipped with the leakage plugin (YAML, ``firebus.sdk.modbus`` profile format).

Add a model by dropping a ``<name>.yaml`` here (or anywhere, and name its path in the
device's ``profile`` option).  See docs/plugins/leakage.md for the key conventions.
"""
