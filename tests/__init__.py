"""peerguard tests: plain functions, real files in temporary folders."""
