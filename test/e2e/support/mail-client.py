#!/usr/bin/env python3
"""A mail program as users run one: Python's smtplib with ssl.create_default_context(cafile=CA),
which checks the server's certificate by its chain to CA and by the server's name. The name is
the one the client was given (as if DNS resolved it); the connection goes to ADDRESS, from SOURCE.

Usage: mail-client.py ADDRESS PORT NAME SOURCE CAFILE [--login USER PASSWORD | --login-once USER PASSWORD]
                      [--from A --to B [--subject S] [--header-from H]]
--login is smtplib's login(), which tries PLAIN, then LOGIN; --login-once sends one AUTH PLAIN.
login_seconds is the time from the first AUTH command to the server's final answer.
--from "" sends MAIL FROM:<>; the From: header is A unless --header-from says otherwise.
Prints one JSON object: what happened at each stage, and the server's reply or the error.
"""
import json
import smtplib
import socket
import ssl
import sys
import time


class NamedSMTP(smtplib.SMTP):
    """smtplib.SMTP that reaches NAME at ADDRESS: STARTTLS checks the certificate against NAME."""

    def __init__(self, name, address, port, source):
        self._address = address
        super().__init__(name, port, local_hostname="laptop.e2e.test", source_address=(source, 0), timeout=30)

    def _get_socket(self, host, port, timeout):
        return socket.create_connection((self._address, port), timeout, self.source_address)


def main(argv):
    address, port, name, source, cafile = argv[:5]
    rest = argv[5:]
    option = lambda flag, count=1: rest[rest.index(flag) + 1:rest.index(flag) + 1 + count] if flag in rest else None
    login, once = option("--login", 2), option("--login-once", 2)
    sender, recipient, subject = option("--from"), option("--to"), option("--subject")
    header_from = option("--header-from") or sender
    result = {"stage": "connect"}
    try:
        client = NamedSMTP(name, address, int(port), source)
        client.ehlo()
        result["auth_before_starttls"] = client.has_extn("auth")
        result["stage"] = "starttls"
        client.starttls(context=ssl.create_default_context(cafile=cafile))
        result["tls"] = client.sock.version()
        result["cipher"] = client.sock.cipher()[0]
        result["peer"] = dict(x[0] for x in client.sock.getpeercert()["subject"])
        client.ehlo()
        if login or once:
            result["stage"] = "login"
            started = time.monotonic()
            try:
                if login:
                    client.login(login[0], login[1])
                else:
                    client.user, client.password = once
                    client.auth("PLAIN", client.auth_plain)
            finally:
                result["login_seconds"] = round(time.monotonic() - started, 2)
        if sender and recipient:
            result["stage"] = "send"
            headers = f"From: <{header_from[0]}>\r\nTo: <{recipient[0]}>\r\nSubject: {subject[0] if subject else 'mail-client.py'}\r\n"
            client.sendmail(sender[0], [recipient[0]], headers + "\r\nsent by the mail clients suite\r\n")
        result["stage"] = "done"
        client.quit()
    except smtplib.SMTPResponseException as error:
        result["error"] = f"{error.smtp_code} {error.smtp_error.decode(errors='replace')}"
    except smtplib.SMTPRecipientsRefused as error:
        code, text = next(iter(error.recipients.values()))
        result["error"] = f"{code} {text.decode(errors='replace')}"
    except (ssl.SSLError, ssl.CertificateError, OSError, smtplib.SMTPException) as error:
        result["error"] = f"{type(error).__name__}: {error}"
    print(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
