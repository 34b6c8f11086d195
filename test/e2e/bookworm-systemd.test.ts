// Runs alone: a host booted with systemd, where installing postfix starts it on every address.
import { deploySuite } from "./deploy-suite";

deploySuite("bookworm", "127.0.60", "root", "boot");
