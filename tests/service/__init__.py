"""Tests of the service: HTTP API, jobs, video I/O, inference and the page."""
