"""Tables. Importing this package registers every model on SQLModel.metadata."""

from mailctl.models.apikey import ApiKey, KeyScope
from mailctl.models.audience import ClientTag, MailingTag, Tag
from mailctl.models.blog import BlogPost
from mailctl.models.bounce import Bounce, BounceKind, BounceMailbox, HookReceipt
from mailctl.models.client import Client, ReachCount, ReachEmail
from mailctl.models.delivery import Delivery, DeliveryAttempt, DeliveryState, MailingRun
from mailctl.models.field import ClientField
from mailctl.models.layout import Layout
from mailctl.models.mailing import Audience, Every, Mailing, MailingClient, MailingStatus
from mailctl.models.message import BodyFormat, Message
from mailctl.models.runtime import Worker, WorkerState
from mailctl.models.signup import Consent, SignupForm, SignupFormTag, SpentToken
from mailctl.models.smtp import SmtpServerState
from mailctl.models.suppression import Suppression, SuppressionReason
from mailctl.models.test_send import TestSend
from mailctl.models.user import Role, User
from mailctl.models.webhook import HookState, Webhook, WebhookDelivery

__all__ = [
    "ApiKey",
    "Audience",
    "BlogPost",
    "BodyFormat",
    "Bounce",
    "BounceKind",
    "BounceMailbox",
    "Client",
    "ClientField",
    "ClientTag",
    "Consent",
    "Delivery",
    "DeliveryAttempt",
    "DeliveryState",
    "Every",
    "HookReceipt",
    "HookState",
    "KeyScope",
    "Layout",
    "Mailing",
    "MailingClient",
    "MailingRun",
    "MailingStatus",
    "MailingTag",
    "Message",
    "ReachCount",
    "ReachEmail",
    "Role",
    "SignupForm",
    "SignupFormTag",
    "SmtpServerState",
    "SpentToken",
    "Suppression",
    "SuppressionReason",
    "Tag",
    "TestSend",
    "User",
    "Webhook",
    "WebhookDelivery",
    "Worker",
    "WorkerState",
]
