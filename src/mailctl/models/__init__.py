"""Tables. Importing this package registers every model on SQLModel.metadata."""

from mailctl.models.blog import BlogPost
from mailctl.models.client import Client
from mailctl.models.delivery import Delivery, DeliveryAttempt, DeliveryState, MailingRun
from mailctl.models.layout import Layout
from mailctl.models.mailing import Every, Mailing, MailingClient, MailingStatus
from mailctl.models.message import BodyFormat, Message
from mailctl.models.runtime import Worker, WorkerState
from mailctl.models.test_send import TestSend
from mailctl.models.user import Role, User

__all__ = [
    "BlogPost",
    "BodyFormat",
    "Client",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "Every",
    "Layout",
    "Mailing",
    "MailingClient",
    "MailingRun",
    "MailingStatus",
    "Message",
    "Role",
    "TestSend",
    "User",
    "Worker",
    "WorkerState",
]
