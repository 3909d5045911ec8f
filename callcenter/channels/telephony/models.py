"""Tables of the telephony channel: answers to the post-call phone survey.

Imported at the bottom of ``callcenter.models`` so that one metadata (and Alembic) sees them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from callcenter.models import Base, BigID, utcnow


class CallSurvey(Base):
    """One answer keyed on the phone (DTMF) survey after a call, stored against its Linkedid.

    Not ``SurveyAnswer`` of the automation: that is one NPS score per ticket, while a call
    may have no ticket yet when the survey runs (the call record is written at hang-up) and
    asks more than one question. ``Call.linkedid`` leads to the call, its interaction and
    ticket.
    """

    __tablename__ = "call_surveys"
    __table_args__ = (UniqueConstraint("linkedid", "question"),)

    id: Mapped[int] = mapped_column(BigID, primary_key=True)
    linkedid: Mapped[str] = mapped_column(String(64))
    question: Mapped[str] = mapped_column(String(16))
    score: Mapped[int] = mapped_column(SmallInteger)
    answered_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
