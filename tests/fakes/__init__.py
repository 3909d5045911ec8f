"""Local stand-ins for outside services that the machine cannot reach (Telegram)."""
