"""Tests of offline training: data, models, loops and export."""
