import assert from "node:assert/strict";
import { test } from "node:test";
import { cidrContains, cidrsOverlap, Cidr, isNonPublic, parseAddress, parseCidr, postfixAddress, postfixCidr } from "../../components/core/net";

const cidr = (text: string) => parseCidr(text) as Cidr;

test("addresses are parsed and printed canonically", () => {
    assert.equal(parseAddress("192.168.1.100")?.text, "192.168.1.100");
    assert.equal(parseAddress("FD00:0:0::1")?.text, "fd00::1");
    assert.equal(parseAddress("2001:db8:0:0:1:0:0:1")?.text, "2001:db8::1:0:0:1");
    assert.equal(parseAddress("::")?.text, "::");
    for (const bad of ["192.168.1", "256.1.1.1", "fe80::1%eth0", "::ffff:1.2.3.4", "home.lan", "", "1.2.3.4 "]) {
        assert.equal(parseAddress(bad), undefined, bad);
    }
});

test("networks: host bits, prefixes, containment, overlap", () => {
    assert.match(parseCidr("192.168.1.5/24") as string, /host bits set; did you mean 192\.168\.1\.0\/24/);
    assert.match(parseCidr("10.0.0.0/33") as string, /prefix/);
    assert.match(parseCidr("10.0.0.0") as string, /CIDR/);
    assert.equal(cidr("fd00::/8").text, "fd00::/8");
    assert.ok(cidrContains(cidr("192.168.1.0/24"), parseAddress("192.168.1.100")!));
    assert.ok(!cidrContains(cidr("192.168.1.0/24"), parseAddress("192.168.2.1")!));
    assert.ok(!cidrContains(cidr("::/0"), parseAddress("10.0.0.1")!), "families never mix");
    assert.ok(cidrsOverlap(cidr("10.0.0.0/8"), cidr("10.1.0.0/16")));
    assert.ok(!cidrsOverlap(cidr("10.0.0.0/16"), cidr("10.1.0.0/16")));
});

test("public and private ranges", () => {
    for (const ok of ["192.168.1.0/24", "10.0.0.0/8", "172.16.0.0/12", "127.0.0.0/8", "fd12:3456::/48", "::1/128"]) assert.ok(isNonPublic(cidr(ok)), ok);
    for (const bad of ["192.169.1.0/24", "172.0.0.0/8", "8.8.8.0/24", "2001:db8::/32", "0.0.0.0/1"]) assert.ok(!isNonPublic(cidr(bad)), bad);
});

test("IPv6 is bracketed for postfix", () => {
    assert.equal(postfixCidr(cidr("::1/128")), "[::1]/128");
    assert.equal(postfixAddress(parseAddress("fd00::25")!), "[fd00::25]");
    assert.equal(postfixCidr(cidr("10.0.0.0/8")), "10.0.0.0/8");
});
