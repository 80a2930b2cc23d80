"""The email adapter against a real SMTP server (aiosmtpd): headers, and an
authority's photo as an attachment."""

from __future__ import annotations

from buurtalert.channels.adapters.email import EmailAdapter, EmailConfig
from buurtalert.devkit.devmail import DevMailbox
from buurtalert.shared.channels import Attachment
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
