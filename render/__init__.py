"""Offline rendering of sessions, and the ``blendfx`` command line."""
