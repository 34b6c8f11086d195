import { verifySuite } from "./verify-suite";

verifySuite("trixie", "127.0.13");
