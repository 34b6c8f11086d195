import { deploySuite } from "./deploy-suite";

deploySuite("bookworm", "127.0.60", "root", "boot");
