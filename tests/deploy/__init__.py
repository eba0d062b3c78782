"""Tests of the deployment: the compose file and its topology run as processes."""
