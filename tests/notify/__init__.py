"""Notify plugin tests."""
