// Runs alone: a host booted with systemd, where installing postfix starts it on every address.
import { deploySuite } from "./deploy-suite";

deploySuite("trixie", "127.0.61", "deploy", "boot");
