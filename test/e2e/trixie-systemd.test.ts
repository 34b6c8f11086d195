import { deploySuite } from "./deploy-suite";

deploySuite("trixie", "127.0.61", "deploy", "boot");
