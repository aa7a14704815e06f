from datetime import datetime

from sqlmodel import Field, SQLModel

from mailctl.db import UTCDateTime


class SmtpServerState(SQLModel, table=True):
    """One mail server's shared limits and last known health, kept for every sender at once.

    `next_slot` is the pacing of rate_per_second (a cell-rate schedule: the earliest moment, in
    epoch seconds, the next message may start, whoever sends it); the three windows count the
    messages started in the current UTC minute, hour and day against their quotas.
    `throttle_rate` is the rate the server's last "slow down" left it at (every sender obeys
    it), set at `throttled_at` and growing back by one message per second each second until
    it reaches `throttle_peak`, the rate it was slowed from; None when not slowed.
    """

    __tablename__ = "smtp_server_state"

    name: str = Field(primary_key=True, max_length=200)
    next_slot: float = 0.0
    minute_start: float = 0.0
    minute_count: int = 0
    hour_start: float = 0.0
    hour_count: int = 0
    day_start: float = 0.0
    day_count: int = 0
    throttle_rate: float | None = None
    throttle_peak: float = 0.0
    throttled_at: float = 0.0
    # The last change of health a sender saw (out of rotation, throttled, back), for `smtp list`.
    health: str | None = Field(default=None, max_length=1000)
    health_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
