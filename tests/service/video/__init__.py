"""Tests of video I/O: receiving uploads within their limits, and transcoding."""
