"""The email adapter against a real SMTP server (aiosmtpd): headers, an authority's
photo as an attachment, logging in, and what the server's refusals become."""

from __future__ import annotations

import asyncio

import pytest

from buurtalert.channels.adapters.email import EmailAdapter, EmailConfig
from buurtalert.devkit.devmail import DevMailbox
from buurtalert.devkit.testing import free_port
from buurtalert.shared.channels import Attachment, PermanentDeliveryError, TransientDeliveryError
from buurtalert.shared.models import Delivery, Destination, stable_id

JPEG = b"\xff\xd8\xff\xe0" + b"\x30" * 1024


def delivery(**extra: object) -> Delivery:
    return Delivery(
        id=stable_id("dlv", "msg_mail"),
        message_id="msg_mail",
        municipality="weert-demo",
        destination=Destination(
            group_id="regie-centrum", channel="email", address="regie@lists.test", label="Regiegroep Centrum"
        ),
        text="Vermist: Jan (82), grijze jas.",
        rules=("authority_alert_area",),
        **extra,  # type: ignore[arg-type]
    )


async def test_an_alert_is_mailed_with_its_photo_attached_and_list_headers(mailbox: DevMailbox) -> None:
    adapter = EmailAdapter(
        EmailConfig(port=mailbox.port, from_address="meldingen@weert.test", list_id="weert.test")
    )
    photo = Attachment(storage_ref="med_1", mime_type="image/jpeg", data=JPEG, filename="jan.jpg")
    result = await adapter.send_with_media(
        delivery(subject="Vermissing in Centrum"), "Vermist: Jan (82)", [photo]
    )
    [mail] = mailbox.mailbox.snapshot()
    assert mail["Subject"] == "Vermissing in Centrum" and mail["Message-ID"] == result.provider_message_id
    assert mail["List-Id"] == "<regie-centrum.weert.test>" and mail["Auto-Submitted"] == "auto-generated"
    [attached] = list(mail.iter_attachments())
    assert attached.get_filename() == "jan.jpg" and attached.get_content_type() == "image/jpeg"
    assert attached.get_content() == JPEG
    assert mail.get_body(("plain",)).get_content().strip() == "Vermist: Jan (82)"  # type: ignore[union-attr]


async def test_without_a_subject_the_group_names_the_mail(mailbox: DevMailbox) -> None:
    adapter = EmailAdapter(EmailConfig(port=mailbox.port, from_address="meldingen@weert.test"))
    await adapter.send(delivery(), "Let op")
    [mail] = mailbox.mailbox.snapshot()
    assert mail["Subject"] == "[buurtalert] Melding voor Regiegroep Centrum"
    assert list(mail.iter_attachments()) == []


async def test_a_mailbox_that_requires_a_login_takes_mail_only_with_the_configured_password() -> None:
    """The adapter logs in with its username and password; a wrong password is a
    permanent failure (535), and so is sending without logging in (530)."""
    with DevMailbox(port=free_port(), credentials=("meldingen", "smtp-wachtwoord")) as box:

        def adapter(**login: object) -> EmailAdapter:
            config = {"port": box.port, "from_address": "meldingen@weert.test", **login}
            return EmailAdapter(EmailConfig.model_validate(config))

        await adapter(username="meldingen", password="smtp-wachtwoord").send(delivery(), "Let op")
        with pytest.raises(PermanentDeliveryError) as wrong:
            await adapter(username="meldingen", password="geraden").send(delivery(), "Let op")
        with pytest.raises(PermanentDeliveryError) as anonymous:
            await adapter().send(delivery(), "Let op")
        assert len(box.mailbox.snapshot()) == 1
    assert wrong.value.provider_code == "535" and anonymous.value.provider_code == "530"


async def test_a_451_after_the_content_is_transient_and_an_unknown_recipient_permanent(
    mailbox: DevMailbox,
) -> None:
    """A server out of resources for now (451 at the end of DATA) means try again; one
    that does not know the recipient (550 at RCPT TO) means never."""
    adapter = EmailAdapter(EmailConfig(port=mailbox.port, from_address="meldingen@weert.test"))
    mailbox.refuse("451 4.3.0 Mail server temporarily out of resources", at="DATA")
    with pytest.raises(TransientDeliveryError) as busy:
        await adapter.send(delivery(), "Let op")
    mailbox.refuse(None, at="DATA")
    mailbox.refuse("550 5.1.1 <regie@lists.test>: Recipient address rejected: User unknown")
    with pytest.raises(PermanentDeliveryError) as unknown:
        await adapter.send(delivery(), "Let op")
    mailbox.refuse(None)
    await adapter.send(delivery(), "Let op")
    assert busy.value.provider_code == "451" and unknown.value.provider_code == "550"
    assert len(mailbox.mailbox.snapshot()) == 1


async def test_a_451_at_rcpt_is_transient(mailbox: DevMailbox) -> None:
    """Greylisting answers 451 at RCPT TO: the mail should be retried, not dead-lettered."""
    mailbox.refuse("451 4.7.1 Greylisted, please try again later")
    adapter = EmailAdapter(EmailConfig(port=mailbox.port, from_address="meldingen@weert.test"))
    with pytest.raises(TransientDeliveryError):
        await adapter.send(delivery(), "Let op")


def numbered(n: int) -> Delivery:
    return delivery().model_copy(update={"id": stable_id("dlv", "msg_mail", str(n))})


async def test_a_burst_is_sent_over_a_few_kept_connections(mailbox: DevMailbox) -> None:
    """Twenty mails sent at once go over at most ``connections`` connections to the relay,
    each carrying several; later mails reuse them."""
    adapter = EmailAdapter(EmailConfig(port=mailbox.port, from_address="meldingen@weert.test", connections=3))
    try:
        await asyncio.gather(*(adapter.send(numbered(n), "Let op") for n in range(20)))
        await adapter.send(numbered(20), "Let op")
    finally:
        await adapter.close()
    assert len(mailbox.mailbox.snapshot()) == 21
    assert mailbox.mailbox.connections() <= 3
    assert len({m["Message-ID"] for m in mailbox.mailbox.snapshot()}) == 21


async def test_a_relay_that_dropped_its_connections_gets_the_mail_on_a_new_one() -> None:
    """A relay restarted between two mails: the kept connection is dead, and the next
    mail goes through on a new connection without an error for the caller."""
    port = free_port()
    adapter = EmailAdapter(EmailConfig(port=port, from_address="meldingen@weert.test"))
    try:
        with DevMailbox(port=port) as before:
            await adapter.send(numbered(1), "Voor de herstart")
        with DevMailbox(port=port) as after:
            await adapter.send(numbered(2), "Na de herstart")
    finally:
        await adapter.close()
    assert [m["Subject"] is not None for m in before.mailbox.snapshot()] == [True]
    [mail] = after.mailbox.snapshot()
    assert mail.get_body(("plain",)).get_content().strip() == "Na de herstart"  # type: ignore[union-attr]


async def test_a_connection_that_failed_is_not_reused(mailbox: DevMailbox) -> None:
    """After a refusal the connection is closed: the next mail comes on a new one."""
    adapter = EmailAdapter(EmailConfig(port=mailbox.port, from_address="meldingen@weert.test", connections=1))
    try:
        await adapter.send(numbered(1), "Een")
        mailbox.refuse("451 4.3.0 Try again later", at="DATA")
        with pytest.raises(TransientDeliveryError):
            await adapter.send(numbered(2), "Twee")
        mailbox.refuse(None, at="DATA")
        await adapter.send(numbered(3), "Drie")
    finally:
        await adapter.close()
    assert mailbox.mailbox.connections() == 2
