"""Tests of hostile requests and uploads: each gets its 4xx and leaves nothing."""
