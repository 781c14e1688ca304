"""Integrations of peerguard with agent frameworks, imported as ``guard.integrations.*``."""
