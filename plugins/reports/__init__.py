"""Electrical-fire health check and reports (placeholder until the plugin lands)."""
