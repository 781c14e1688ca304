"""Policy files shipped with peerguard, loaded through ``importlib.resources``."""
