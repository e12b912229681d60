"""Deliver new alerts once to the configured channels: the log, a webhook (JSON POST), email (SMTP).

Each (alert, channel) pair is recorded when delivered, so an alert reaches
every channel exactly once however often delivery runs, and a channel that
fails is retried on the next run without repeating the others. Attempts are
bounded (``alerts.retries`` with exponential backoff, short timeouts), so a
dead endpoint costs seconds, never a poll.
"""

from __future__ import annotations

import logging
import os
import smtplib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from datetime import time as clock_time
from email.message import EmailMessage
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from monitor import series
from monitor.config import AlertsConfig, Settings
from monitor.schema import AlertDelivery, AlertRow, as_utc

log = logging.getLogger("monitor")
SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2}
NAMES = {"attack": "Attacks", "retaliation": "Retaliation", "de-escalation": "De-escalation", "other": "Other news"}
KINDS = {"spike": "a one-day spike", "shift": "a sustained rise", "trend": "a rising four-week trend"}


@dataclass(frozen=True)
class Message:
    subject: str
    text: str
    payload: dict[str, object]


def compose(alert: AlertRow, theatre_name: str, stories: Sequence[series.StoryView]) -> Message:
    """The alert in plain words, with the stories behind it (pure)."""
    p = "p < 0.001" if alert.p_value < 0.001 else f"p = {alert.p_value:.3f}"
    label = NAMES.get(alert.label, alert.label)
    headline = (
        f"{label}, {theatre_name}: {KINDS.get(alert.kind, alert.kind)}, {alert.observed:g} stories on "
        f"{alert.day:%a %d %b %Y} against {alert.expected:.1f} expected (bound {alert.upper:g}), {p}"
    )
    lines = [headline, "", "Stories behind it:" if stories else "No stories found for that day."]
    lines += [f"- {s.title} ({s.outlet}, {s.mentions} mention(s)) {s.link or ''}".rstrip() for s in stories]
    payload: dict[str, object] = {
        "theatre": alert.theatre or None,
        "label": alert.label,
        "date": alert.day.isoformat(),
        "kind": alert.kind,
        "observed": alert.observed,
        "expected": alert.expected,
        "upper": alert.upper,
        "p_value": alert.p_value,
        "severity": alert.severity,
        "summary": headline,
        "stories": [{"title": s.title, "outlet": s.outlet, "link": s.link, "mentions": s.mentions} for s in stories],
    }
    subject = f"[{alert.severity}] {label}, {theatre_name}: {KINDS.get(alert.kind, alert.kind)} on {alert.day:%d %b}"
    return Message(subject, "\n".join(lines), payload)


def with_retries(
    attempt: Callable[[], None], retries: int, sleep: Callable[[float], None], base: float = 0.5
) -> tuple[bool, str, int]:
    """Run ``attempt`` up to ``retries`` times with exponential backoff; (ok, last error, attempts)."""
    error = ""
    for number in range(1, retries + 1):
        try:
            attempt()
            return True, "", number
        except (httpx.HTTPError, smtplib.SMTPException, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
            if number < retries:
                sleep(base * 2 ** (number - 1))
    return False, error, retries


def post_webhook(client: httpx.Client, url: str, message: Message) -> None:
    response = client.post(url, json=message.payload)
    response.raise_for_status()


def send_email(config: AlertsConfig, message: Message) -> None:
    email = config.email
    assert email is not None
    mail = EmailMessage()
    mail["Subject"], mail["From"], mail["To"] = message.subject, email.sender, ", ".join(email.to)
    mail.set_content(message.text)
    with smtplib.SMTP(email.host, email.port, timeout=email.timeout) as smtp:
        if email.starttls:
            smtp.starttls()
        if email.username:
            smtp.login(email.username, os.environ.get(email.password_env or "", ""))
        smtp.send_message(mail)


def _pending(session: Session, channels: Sequence[str], min_severity: str) -> list[tuple[AlertRow, list[str]]]:
    done: dict[int, set[str]] = {}
    for row in session.exec(select(AlertDelivery)):
        done.setdefault(row.alert_id, set()).add(row.channel)
    wanted = SEVERITY_RANK[min_severity]
    alerts = session.exec(select(AlertRow).order_by(col(AlertRow.day), col(AlertRow.id))).all()
    return [
        (a, [c for c in channels if c not in done.get(int(a.id or 0), set())])
        for a in alerts
        if SEVERITY_RANK.get(a.severity, 0) >= wanted and set(channels) - done.get(int(a.id or 0), set())
    ]


def _stories(session: Session, alert: AlertRow, zone: ZoneInfo) -> list[series.StoryView]:
    start = datetime.combine(alert.day, clock_time.min, zone)
    span = timedelta(days=1 if alert.kind == "spike" else 7)
    return series.top_stories(
        session,
        alert.theatre or None,
        start - span + timedelta(days=1),
        start + timedelta(days=1),
        alert.label,
        limit=5,
    )


def deliver_pending(
    settings: Settings, engine: Engine, now: datetime, sleep: Callable[[float], None] = time.sleep
) -> int:
    """Deliver every stored alert not yet delivered to each channel; return deliveries made."""
    config = settings.alerts
    channels = ["log"] + (["webhook"] if config.webhook_url else []) + (["email"] if config.email else [])
    names = {t.id: t.name for t in settings.theatres}
    made = 0
    with Session(engine) as session, httpx.Client(timeout=config.webhook_timeout) as client:
        for alert, missing in _pending(session, channels, config.min_severity):
            message = compose(
                alert, names.get(alert.theatre, "all theatres"), _stories(session, alert, ZoneInfo(settings.timezone))
            )
            for channel in missing:
                ok, error, attempts = _send(channel, config, client, message, sleep)
                if ok:
                    session.add(
                        AlertDelivery(
                            alert_id=int(alert.id or 0), channel=channel, delivered_at=as_utc(now), attempts=attempts
                        )
                    )
                    session.commit()
                    made += 1
                else:
                    log.warning("event=alert_delivery_failed channel=%s alert=%s error=%r", channel, alert.id, error)
    return made


def _send(
    channel: str, config: AlertsConfig, client: httpx.Client, message: Message, sleep: Callable[[float], None]
) -> tuple[bool, str, int]:
    if channel == "log":
        log.warning("event=alert %s", message.payload["summary"])
        return True, "", 1
    if channel == "webhook":
        url = str(config.webhook_url)
        return with_retries(lambda: post_webhook(client, url, message), config.retries, sleep)
    return with_retries(lambda: send_email(config, message), config.retries, sleep)
