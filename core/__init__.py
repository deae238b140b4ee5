"""firebus core runtime: internal; plugins import firebus.sdk instead."""
