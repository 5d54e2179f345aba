"""Reads: queries the views, API and commands share."""
