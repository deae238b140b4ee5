"""Water plugin tests (real pymodbus simulators, real Mosquitto, real core)."""
