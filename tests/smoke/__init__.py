"""Smoke plugin tests (real Mosquitto, real core, the NB smoke fleet simulator)."""
