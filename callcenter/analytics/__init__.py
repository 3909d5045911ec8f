"""Omnichannel analytics: rollups refreshed by a supervised component, figures, charts, CSV."""
