"""A fake Telegram Bot API server for tests: aiogram talks to it unmodified.

async with BotApiServer() as api:
    session = AiohttpSession(api=TelegramAPIServer.from_base(api.base_url))
    bot = Bot(api.token, session=session)
    api.push_message(1001, "/start order-42")
    ...
    assert api.sent[0].text == "..."
"""

from .files import StoredFile
from .records import Call, SentMessage
from .server import BotApiServer
from .webhook import Delivery

__all__ = ["BotApiServer", "Call", "Delivery", "SentMessage", "StoredFile"]
