#!/usr/bin/env python3
"""Port 587's From: rule: a logged-in user's message is refused when its From: header names an
address the login does not own. Ownership is Postfix's own: the table reject_sender_login_mismatch
reads for the envelope (smtpd_sender_login_maps, asked with postmap -q), in Postfix's lookup
order (the address, without its extension, the local part in a local domain, @domain).

Why a milter of our own, started by Postfix's spawn(8): Postfix compares only the envelope sender
with the login; header_checks see no login, a policy service sees no header, and Debian's nearest
milter, vrfydmn, compares domains only. spawn(8) runs this file for each SMTP session of port 587
with the milter connection on its standard input and output, so there is no daemon to start, watch
or stop (the same in a chroot as under systemd), and the rule leaves with its master.cf entry.
Python's standard library only. When it cannot answer, Postfix's milter_default_action (tempfail)
holds the message back: the rule fails closed.

Usage: sender-check.py               (under spawn(8): the milter protocol on stdin and stdout)
       sender-check.py probe SOCKET  (the deploy check: asks the milter at SOCKET, as Postfix
                                      would, about a From: that no login owns; exit 0 if refused)
"""
import email.utils
import os
import re
import socket
import struct
import subprocess
import sys

# The milter protocol (Sendmail's libmilter, version 6), as far as this rule needs it.
VERSION = 6
# Steps Postfix need not send: connect, HELO, RCPT, the body, unknown commands, DATA (SMFIP_NO*).
NOT_WANTED = 0x1 | 0x2 | 0x8 | 0x10 | 0x100 | 0x200
CONTINUE = b"c"
TEMPFAIL = b"t"
REPLY = b"y"


def packet(command, data=b""):
    return struct.pack(">I", len(data) + 1) + command + data


def read_packet(read):
    """The next (command, data), or None when the peer closed the connection."""
    head = read_exact(read, 4)
    if head is None:
        return None
    (length,) = struct.unpack(">I", head)
    if not 1 <= length <= 1 << 20:
        raise ValueError(f"milter packet of {length} bytes")
    body = read_exact(read, length)
    if body is None:
        raise ValueError("milter connection closed inside a packet")
    return body[:1], body[1:]


def read_exact(read, count):
    data = b""
    while len(data) < count:
        chunk = read(count - len(data))
        if not chunk:
            if data:
                raise ValueError("milter connection closed inside a packet")
            return None
        data += chunk
    return data


def postconf(name):
    return subprocess.run(["postconf", "-xh", name], check=True, capture_output=True, text=True).stdout.strip()


def tables(value):
    """Postfix's list of tables: split on spaces and commas outside braces (an inline table has both)."""
    found, depth, current = [], 0, ""
    for char in value:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth == 0 and char in " \t,":
            if current:
                found.append(current)
            current = ""
        else:
            current += char
    return found + ([current] if current else [])


class Owners:
    """Who owns an address, read from the live configuration at the first message of a session."""

    def __init__(self):
        self.maps = tables(postconf("smtpd_sender_login_maps"))
        self.local = {d.lower() for d in re.split(r"[\s,]+", postconf("mydestination")) if d}
        self.delimiters = postconf("recipient_delimiter")

    def lookup(self, key):
        for table in self.maps:
            found = subprocess.run(["postmap", "-q", key, table], capture_output=True, text=True)
            if found.returncode == 0:
                return found.stdout.strip()
            if found.returncode != 1:
                raise RuntimeError(f"postmap -q failed for {table}")
        return None

    def keys(self, address):
        local, at, domain = address.rpartition("@") if "@" in address else (address, "", "")
        base = local
        for delimiter in self.delimiters:
            if delimiter in local:
                base = local[:local.index(delimiter)]
                break
        keys = [address] + ([f"{base}@{domain}"] if at and base != local else [])
        if not at or domain in self.local:
            keys += [local] + ([base] if base != local else [])
        if at:
            keys.append(f"@{domain}")
        return keys

    def owns(self, login, address):
        for key in self.keys(address.lower()):
            owners = self.lookup(key)
            if owners is not None:
                return login.lower() in {o.lower() for o in re.split(r"[\s,]+", owners) if o}
        return False


def printable(text):
    """Text for the reply line: printable ASCII, no %, which reply texts may treat as an escape."""
    return re.sub(r"[^\x21-\x24\x26-\x7e ]", "?", text)[:200]


def verdict(login, froms, owners):
    """CONTINUE, or a refusal naming the address. No login: not this rule's (port 587 refuses it)."""
    if not login or not froms:
        return packet(CONTINUE)
    # A From: with no address at all (empty, a bare group) is read as one empty address: refused.
    for _, address in email.utils.getaddresses(froms) or [("", "")]:
        if not address or not owners().owns(login, address):
            shown = f"<{printable(address)}>" if address else "has no address and"
            return packet(REPLY, f"550 5.7.1 From: {shown} is not an address of {printable(login)}: "
                                 "a login sends only as its own addresses\0".encode())
    return packet(CONTINUE)


def serve(read, write):
    macros, login, froms, cached = {}, None, [], []

    def owners():
        if not cached:
            cached.append(Owners())
        return cached[0]

    while True:
        received = read_packet(read)
        if received is None:
            return
        command, data = received
        if command == b"O":
            version, _actions, protocol = struct.unpack(">III", data[:12])
            write(packet(b"O", struct.pack(">III", min(version, VERSION), 0, protocol & NOT_WANTED)))
        elif command == b"D":
            fields = data[1:].split(b"\0")
            macros.update({n.decode(errors="replace"): v.decode(errors="replace") for n, v in zip(fields[0::2], fields[1::2])})
        elif command == b"M":
            login, froms = macros.get("{auth_authen}"), []
            write(packet(CONTINUE))
        elif command == b"L":
            name, value = (data.split(b"\0") + [b""])[:2]
            if name.decode(errors="replace").lower() == "from":
                froms.append(value.decode("utf-8", errors="replace"))
            write(packet(CONTINUE))
        elif command == b"N":
            try:
                write(verdict(login, froms, owners))
            except (OSError, RuntimeError, subprocess.CalledProcessError):
                write(packet(TEMPFAIL))
        elif command in (b"C", b"H", b"R", b"T", b"B", b"U", b"E"):
            write(packet(CONTINUE))
        elif command == b"A":
            froms = []
        elif command == b"K":
            macros, login, froms = {}, None, []
        elif command == b"Q":
            return


def probe(path):
    """Asks the milter at PATH what Postfix would: a login sends with a From: nobody owns."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(path)
        conn.sendall(packet(b"O", struct.pack(">III", VERSION, 0x1FF, 0x1FFFFF)))
        answer = read_packet(conn.recv)
        if answer is None or answer[0] != b"O":
            raise SystemExit(f"{path}: no option negotiation ({answer!r})")
        conn.sendall(packet(b"D", b"M{auth_authen}\0pulumi-postfix-probe\0"))
        conn.sendall(packet(b"M", b"<probe@sender-check.invalid>\0"))
        conn.sendall(packet(b"L", b"From\0nobody@sender-check.invalid\0"))
        conn.sendall(packet(b"N"))
        replies = [read_packet(conn.recv) for _ in range(3)]
        conn.sendall(packet(b"Q"))
    last = replies[-1]
    if last and last[0] == REPLY and last[1].startswith(b"5"):
        print(last[1].rstrip(b"\0").decode(errors="replace"))
        return
    if last and last[0] == TEMPFAIL:
        raise SystemExit("it held a message back (tempfail): it could not read Postfix's configuration or its sender table")
    raise SystemExit(f"{path}: a From: no login owns was not refused: {replies!r}")


def write_all(data):
    while data:
        data = data[os.write(1, data):]


def main(argv):
    if argv[:1] == ["probe"] and len(argv) == 2:
        probe(argv[1])
        return
    # Under spawn(8) the standard error is the milter connection too: nothing may be written there.
    sys.stderr = open(os.devnull, "w")
    # spawn(8) gives a PATH without /usr/sbin, where postconf and postmap are.
    os.environ["PATH"] = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    try:
        serve(lambda count: os.read(0, count), write_all)
    except (OSError, ValueError, struct.error):
        pass


if __name__ == "__main__":
    main(sys.argv[1:])
