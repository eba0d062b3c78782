"""Video in and out: receive uploads, probe and decode, the shared frame preprocessing, encode."""
