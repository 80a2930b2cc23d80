"""The email adapter passes the conformance kit against the development mailbox: real
SMTP on loopback that demands the configured login, and refuses as asked with a
``451 4.3.0`` after the content (transient) or a ``550 5.1.1`` for the recipient
(permanent)."""

from __future__ import annotations

import contextlib
from email.message import EmailMessage
from typing import Any, ClassVar

from buurtalert.channels.adapters.email import EmailAdapter, EmailConfig
from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.testing import free_port
from buurtalert.shared.channels import ChannelAdapter
from buurtalert.shared.conformance import AdapterConformance, Behaviour

LOGIN, PASSWORD = "meldingen", "smtp-wachtwoord-conformance"
CONFIG: dict[str, Any] = {
    "host": "smtp.weert.test",
    "port": 587,
    "from_address": "meldingen@weert.test",
    "list_id": "weert.test",
    "username": LOGIN,
    "password": PASSWORD,
}


def _text(mail: EmailMessage) -> str:
    """The plain text as a mail reader shows it (without the line end MIME adds)."""
    body = mail.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n").removesuffix("\n")


class TestEmailConformance(AdapterConformance):
    """The email adapter meets the kit over real SMTP, logging in with its password."""

    adapter_class = EmailAdapter
    valid_config: ClassVar[dict[str, Any]] = CONFIG
    invalid_configs: ClassVar[list[tuple[dict[str, Any], str]]] = [
        ({"port": 25}, "from_address"),
        ({**CONFIG, "port": 0}, "port"),
        ({**CONFIG, "start_tls": "misschien"}, "start_tls"),
    ]
    address = "regiegroep-centrum@lists.weert.test"
    stand_ins: contextlib.AsyncExitStack

    async def adapter_against(self, behaviour: Behaviour) -> ChannelAdapter[Any]:
        self.box = self.stand_ins.enter_context(DevMailbox(port=free_port(), credentials=(LOGIN, PASSWORD)))
        if behaviour == "transient":
            self.box.refuse("451 4.3.0 Mail server temporarily out of resources", at="DATA")
        elif behaviour == "permanent":
            self.box.refuse(f"550 5.1.1 <{self.address}>: Recipient address rejected: User unknown")
        config = EmailConfig.model_validate({**CONFIG, "host": "127.0.0.1", "port": self.box.port})
        return EmailAdapter(config)

    def keys_received(self) -> list[str]:
        """The delivery ids the Message-IDs carry (``<delivery-id@list-id>``)."""
        return [str(m["Message-ID"]).strip("<>").split("@")[0] for m in self.box.mailbox.snapshot()]

    def texts_received(self) -> list[str]:
        return [_text(m) for m in self.box.mailbox.snapshot()]
