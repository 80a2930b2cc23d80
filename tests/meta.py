"""Webhook payloads shaped as Meta documents them, and their signatures."""

from __future__ import annotations

import json
from typing import Any

from pydantic import SecretStr

from buurtalert.shared.webhooks import SIGNATURE_HEADER, sign

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_NUMBER = "31612000000"
WABA_ID = "102290129340398"
PAGE_ID = "102030405060708"
REGIE_GROUP = "120363041234567890"


def signed(body: bytes, secret: str) -> dict[str, str]:
    return {SIGNATURE_HEADER: sign(SecretStr(secret), body), "Content-Type": "application/json"}


def whatsapp(value_fields: dict[str, Any], *, field: str = "messages") -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": WABA_ID,
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": DISPLAY_NUMBER,
                                "phone_number_id": PHONE_NUMBER_ID,
                            },
                            **value_fields,
                        },
                        "field": field,
                    }
                ],
            }
        ],
    }


def wa_message(
    sender: str, wamid: str, kind: str = "text", *, group_id: str | None = None, **content: Any
) -> dict[str, Any]:
    """One inbound message; ``content`` is the type's object, e.g. ``text={"body": ...}``."""
    message: dict[str, Any] = {
        "from": sender,
        "id": wamid,
        "timestamp": "1795436000",
        "type": kind,
        **content,
    }
    if group_id is not None:
        message["group_id"] = group_id
    return message


def wa_messages(*messages: dict[str, Any], name: str = "Kerry") -> bytes:
    contacts = [{"profile": {"name": name}, "wa_id": m["from"]} for m in messages]
    return json.dumps(whatsapp({"contacts": contacts, "messages": list(messages)})).encode()


def wa_statuses(*statuses: dict[str, Any]) -> bytes:
    return json.dumps(whatsapp({"statuses": list(statuses)})).encode()


def wa_status(
    wamid: str,
    status: str,
    recipient: str = "31612345678",
    *,
    error: int | None = None,
    reference: str | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": wamid,
        "status": status,
        "timestamp": "1795436005",
        "recipient_id": recipient,
    }
    if reference is not None:
        item["biz_opaque_callback_data"] = reference
    if status != "failed":
        item["conversation"] = {"id": "CONVERSATION_ID", "origin": {"type": "utility"}}
        item["pricing"] = {"billable": True, "pricing_model": "PMP", "category": "utility"}
    if error is not None:
        item["errors"] = [
            {
                "code": error,
                "title": "Rate limit hit" if error == 130429 else "Message failed to send",
                "message": "Message failed to send",
                "error_data": {"details": "Too many messages sent from this phone number"},
            }
        ]
    return item


def facebook(entry: dict[str, Any]) -> bytes:
    return json.dumps({"object": "page", "entry": [{"id": PAGE_ID, "time": 1795436000, **entry}]}).encode()


def fb_feed(item: str, verb: str = "add", **value: Any) -> bytes:
    return facebook(
        {
            "changes": [
                {"field": "feed", "value": {"item": item, "verb": verb, "created_time": 1795436000, **value}}
            ]
        }
    )


def fb_messenger(sender: str, **event: Any) -> bytes:
    return facebook(
        {
            "messaging": [
                {"sender": {"id": sender}, "recipient": {"id": PAGE_ID}, "timestamp": 1795436000123, **event}
            ]
        }
    )
