"""GB/T 26875.3-2011 city monitoring link (placeholder until the plugin lands)."""
