"""The Telegram channel: an aiogram bot that files customer messages and sends agent replies.

Kept import-light: ``callcenter.models`` imports ``.models`` from here.
"""
