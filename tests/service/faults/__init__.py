"""Tests of the service when Redis, the storage or the API process fail."""
