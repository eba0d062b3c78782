"""Tests of action classification training: data, models, loops, export, reports."""
