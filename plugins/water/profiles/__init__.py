"""Register maps and payload profiles shipped with the water plugin (YAML data)."""
