#!/usr/bin/env python3
"""A mail catcher for the local demo (.ci/dev): an SMTP server (aiosmtpd) that keeps
every message it receives, and a web page that lists them with their bodies and
working links.

    python3 .ci/mailcatcher.py [--smtp 127.0.0.1:1025] [--http 127.0.0.1:1080]

Timebox's [notify.email] sends to the SMTP address (tls = "none", this machine only);
open the HTTP address in a browser to read what was sent. /messages.json gives the
same as JSON. Messages live in memory: they are gone when the catcher stops.
"""
import argparse
import asyncio
import email
import email.policy
import html
import json
import re
import threading
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from aiosmtpd.controller import Controller

MESSAGES = []
LOCK = threading.Lock()


class Keep:
    """aiosmtpd handler: parse and keep every message."""

    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = msg.get_body(preferencelist=("plain",))
        rich = msg.get_body(preferencelist=("html",))
        with LOCK:
            MESSAGES.append(
                {
                    "id": len(MESSAGES) + 1,
                    "received_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
                    "from": msg.get("From", ""),
                    "to": envelope.rcpt_tos,
                    "subject": msg.get("Subject", ""),
                    "message_id": msg.get("Message-ID", ""),
                    "text": text.get_content() if text else "",
                    "html": rich.get_content() if rich else "",
                }
            )
        return "250 Message accepted for delivery"


URL = re.compile(r"(https?://[^\s<>\"']+)")


def linkify(text):
    return URL.sub(lambda m: f'<a href="{m.group(1)}">{m.group(1)}</a>', html.escape(text))


def page():
    with LOCK:
        items = list(reversed(MESSAGES))
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>Timebox mail catcher</title>",
        "<meta http-equiv='refresh' content='10'>",
        "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}"
        "article{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1em 0}"
        "pre{white-space:pre-wrap}small{color:#666}</style></head><body>",
        "<h1>Timebox mail catcher</h1>",
        f"<p>{len(items)} message(s), newest first. This page refreshes every 10 seconds.</p>",
    ]
    if not items:
        parts.append("<p>No mail yet. Ask for access in Timebox: the approvers' email shows up here.</p>")
    for m in items:
        parts.append(
            "<article>"
            f"<h2>{html.escape(m['subject'])}</h2>"
            f"<small>#{m['id']} · {html.escape(m['received_at'])} · from {html.escape(m['from'])}"
            f" · to {html.escape(', '.join(m['to']))} · {html.escape(m['message_id'])}</small>"
            f"<pre>{linkify(m['text'])}</pre>"
            "</article>"
        )
    parts.append("</body></html>")
    return "".join(parts).encode()


class Web(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/messages.json":
            with LOCK:
                body = json.dumps(MESSAGES, indent=2).encode()
            kind = "application/json"
        elif self.path in ("/", "/index.html"):
            body, kind = page(), "text/html; charset=utf-8"
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def host_port(s, default_port):
    host, _, port = s.rpartition(":")
    return (host or "127.0.0.1", int(port or default_port))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--smtp", default="127.0.0.1:1025")
    p.add_argument("--http", default="127.0.0.1:1080")
    a = p.parse_args()
    smtp_host, smtp_port = host_port(a.smtp, 1025)
    http_host, http_port = host_port(a.http, 1080)
    controller = Controller(Keep(), hostname=smtp_host, port=smtp_port)
    controller.start()
    web = ThreadingHTTPServer((http_host, http_port), Web)
    print(f"mail catcher: SMTP on {smtp_host}:{smtp_port}, read mail at http://{http_host}:{http_port}", flush=True)
    try:
        web.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
