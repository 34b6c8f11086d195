import { verifySuite } from "./verify-suite";

verifySuite("bookworm", "127.0.12");
