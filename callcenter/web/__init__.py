"""The aiohttp web application."""
