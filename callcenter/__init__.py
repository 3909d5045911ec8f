"""callcenter: an omnichannel contact centre around a real Asterisk PBX."""

__version__ = "0.1.0"
