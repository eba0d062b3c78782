"""Tests of the HTTP routes, through the app with real models."""
