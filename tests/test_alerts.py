"""Alert delivery to a real local webhook server and a real local SMTP server: once and only once."""

from __future__ import annotations

import email
import email.policy
import socket
from datetime import UTC, date, datetime

from conftest import Hook, Route, both_backends
from sqlmodel import Session, select

from monitor import alerts, schema, store
from monitor.detect import Alert

NOW = datetime(2024, 1, 29, 6, 0, tzinfo=UTC)


def stored_alert(engine, severity: str = "high") -> None:
    alert = Alert(date(2024, 1, 28), "spike", 9, 1.6, 5, 0.0002, severity, "iraq-syria", "attack")
    with Session(engine) as session, session.begin():
        assert store.save_alerts(session, [alert, alert], NOW) == 1  # stored once however often detected


def settings_for(make_settings, **alerting):
    return make_settings(theatres=[{"id": "iraq-syria", "name": "Iraq and Syria", "terms": ["Iraq"]}], alerts=alerting)


@both_backends
def test_webhook_gets_each_alert_once(post_server, make_settings, engine) -> None:
    hook = Hook()
    post_server.routes["/hook"] = Route(handler=hook)
    settings = settings_for(make_settings, webhook_url=post_server.url("/hook"))
    stored_alert(engine)
    sleeps: list[float] = []
    assert alerts.deliver_pending(settings, engine, NOW, sleeps.append) == 2  # log + webhook
    assert alerts.deliver_pending(settings, engine, NOW, sleeps.append) == 0
    assert len(hook.bodies) == 1 and sleeps == []
    body = hook.bodies[0]
    assert body["theatre"] == "iraq-syria" and body["label"] == "attack" and body["observed"] == 9
    assert body["summary"].startswith("Attacks, Iraq and Syria: a one-day spike, 9 stories on Sun 28 Jan 2024")


@both_backends
def test_failing_webhook_is_retried_with_backoff_then_later(post_server, make_settings, engine) -> None:
    hook = Hook(fail_first=4)
    post_server.routes["/hook"] = Route(handler=hook)
    settings = settings_for(make_settings, webhook_url=post_server.url("/hook"), retries=3)
    stored_alert(engine)
    sleeps: list[float] = []
    assert alerts.deliver_pending(settings, engine, NOW, sleeps.append) == 1  # the log only
    assert sleeps == [0.5, 1.0] and len(hook.bodies) == 3
    assert alerts.deliver_pending(settings, engine, NOW, sleeps.append) == 1  # fourth fails, fifth lands
    assert alerts.deliver_pending(settings, engine, NOW, sleeps.append) == 0
    assert len(hook.bodies) == 5
    with Session(engine) as session:
        channels = {(d.channel, d.attempts) for d in session.exec(select(schema.AlertDelivery))}
    assert channels == {("log", 1), ("webhook", 2)}


@both_backends
def test_email_over_a_real_smtp_server(make_settings, engine) -> None:
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Sink

    class Inbox(Sink):
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope.content)
            return "250 OK"

    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        settings = settings_for(
            make_settings,
            email={"host": "127.0.0.1", "port": port, "sender": "monitor@example.org", "to": ["desk@example.org"]},
        )
        stored_alert(engine)
        assert alerts.deliver_pending(settings, engine, NOW) == 2
        assert alerts.deliver_pending(settings, engine, NOW) == 0
    finally:
        controller.stop()
    assert len(inbox.messages) == 1
    mail = email.message_from_bytes(inbox.messages[0], policy=email.policy.default)
    assert mail["Subject"] == "[high] Attacks, Iraq and Syria: a one-day spike on 28 Jan"
    assert "against 1.6 expected" in mail.get_content()


@both_backends
def test_min_severity_filters(make_settings, engine) -> None:
    settings = settings_for(make_settings, min_severity="high")
    stored_alert(engine, severity="low")
    assert alerts.deliver_pending(settings, engine, NOW) == 0
