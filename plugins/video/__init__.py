"""Video flame and smoke recognition (placeholder until the plugin lands)."""
