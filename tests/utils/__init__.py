"""Helpers that build test data and run processes for the tests (not tests themselves)."""
