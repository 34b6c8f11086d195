import { deploySuite } from "./deploy-suite";

deploySuite("bookworm", "127.0.10", "root");
