"""Tables. Importing this package registers every model on SQLModel.metadata."""

from mailctl.models.blog import BlogPost
from mailctl.models.client import Client
from mailctl.models.delivery import Delivery, DeliveryAttempt, DeliveryState, MailingRun
from mailctl.models.mailing import Every, Mailing, MailingClient, MailingStatus
from mailctl.models.message import Message
from mailctl.models.runtime import Worker, WorkerState
from mailctl.models.user import Role, User

__all__ = [
    "BlogPost",
    "Client",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "Every",
    "Mailing",
    "MailingClient",
    "MailingRun",
    "MailingStatus",
    "Message",
    "Role",
    "User",
    "Worker",
    "WorkerState",
]
