#!/usr/bin/env python3
"""A mail program reading mail as users run one: Python's imaplib with
ssl.create_default_context(cafile=CA), which checks the server's certificate by its chain to CA and
by the server's name. The name is the one the client was given (as if DNS resolved it); the
connection goes to ADDRESS, from SOURCE.

Usage: imap-client.py ADDRESS PORT NAME SOURCE CAFILE MODE --login USER PASSWORD [--subject S]
  MODE  imaps (TLS from the first byte, port 993), starttls (port 143, STARTTLS before the login)
        or plain (port 143, LOGIN with no TLS: the server must refuse it)
Prints one JSON object: what happened at each stage, the capabilities before the login, the
login's time, and with --subject whether a message with that subject is in INBOX.
"""
import imaplib
import json
import socket
import ssl
import sys
import time


def connect(address, port, source, timeout):
    return socket.create_connection((address, port), timeout, (source, 0))


class NamedIMAP4(imaplib.IMAP4):
    """imaplib.IMAP4 that reaches NAME at ADDRESS: STARTTLS checks the certificate against NAME."""

    def __init__(self, name, address, port, source):
        self._address, self._source = address, source
        super().__init__(name, port, timeout=30)

    def _create_socket(self, timeout):
        return connect(self._address, self.port, self._source, timeout)


class NamedIMAP4_SSL(imaplib.IMAP4_SSL):
    """imaplib.IMAP4_SSL that reaches NAME at ADDRESS, checking the certificate against NAME."""

    def __init__(self, name, address, port, source, context):
        self._address, self._source = address, source
        super().__init__(name, port, ssl_context=context, timeout=30)

    def _create_socket(self, timeout):
        return self.ssl_context.wrap_socket(connect(self._address, self.port, self._source, timeout), server_hostname=self.host)


def text(value):
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def main(argv):
    address, port, name, source, cafile, mode = argv[:6]
    rest = argv[6:]
    option = lambda flag, count=1: rest[rest.index(flag) + 1:rest.index(flag) + 1 + count] if flag in rest else None
    login, subject = option("--login", 2), option("--subject")
    result = {"stage": "connect"}
    try:
        context = ssl.create_default_context(cafile=cafile)
        if mode == "imaps":
            result["stage"] = "tls"
            client = NamedIMAP4_SSL(name, address, int(port), source, context)
        else:
            client = NamedIMAP4(name, address, int(port), source)
            result["capabilities_before_tls"] = sorted(client.capabilities)
            if mode == "starttls":
                result["stage"] = "starttls"
                client.starttls(ssl_context=context)
        if mode != "plain":
            result["tls"] = client.sock.version()
            result["peer"] = dict(x[0] for x in client.sock.getpeercert()["subject"])
        result["capabilities"] = sorted(client.capabilities)
        result["stage"] = "login"
        started = time.monotonic()
        try:
            client.login(login[0], login[1])
        finally:
            result["login_seconds"] = round(time.monotonic() - started, 2)
        if subject:
            result["stage"] = "fetch"
            started = time.monotonic()
            typ, data = client.select("INBOX", readonly=True)
            if typ != "OK":
                raise imaplib.IMAP4.error(f"SELECT INBOX: {typ} {text(data[0])}")
            typ, data = client.search(None, "SUBJECT", f'"{subject[0]}"')
            numbers = data[0].split()
            result["found"] = len(numbers)
            if numbers:
                typ, parts = client.fetch(numbers[-1], "(BODY.PEEK[HEADER.FIELDS (FROM SUBJECT)])")
                result["headers"] = text(parts[0][1]).strip()
            result["fetch_seconds"] = round(time.monotonic() - started, 2)
        result["stage"] = "done"
        client.logout()
    except (imaplib.IMAP4.error, ssl.SSLError, ssl.CertificateError, OSError) as error:
        result["error"] = f"{type(error).__name__}: {text(error)}"
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
