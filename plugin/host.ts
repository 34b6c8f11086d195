// The component package's entry. `pulumi package add <this repository>` (PulumiPlugin.yaml,
// runtime nodejs) has Pulumi run this directory, which serves PostfixServer to programs in any
// Pulumi language: the SDK reads the schema from the component's TypeScript types and doc comments.
import { main } from "@pulumi/pulumi/provider";
import { ComponentProvider } from "@pulumi/pulumi/provider/experimental";
import { join } from "node:path";
import { PostfixServer } from "../components";
import { hostedAsComponentPackage } from "../components/postfix-server";
import { SECRET_KEYS } from "../components/stack-config";

/** The package's name: resource tokens are `postfix:index:PostfixServer`, as in this project's own program. */
const PACKAGE = "postfix";

/**
 * The SDK's component provider, with the secret inputs marked `secret` in the schema (its type
 * reader has no way to say so): every language then hands them over as secrets.
 */
class PostfixComponentProvider extends ComponentProvider {
    async getSchema(): Promise<string> {
        const schema = JSON.parse(await super.getSchema());
        const inputs = schema.resources[`${PACKAGE}:index:PostfixServer`].inputProperties;
        for (const key of SECRET_KEYS) inputs[key].secret = true;
        return JSON.stringify(schema);
    }
}

// No ServerState here: its dynamic provider would need this package's node_modules beside the program.
hostedAsComponentPackage();
main(new PostfixComponentProvider({ name: PACKAGE, dirname: join(__dirname, ".."), components: [PostfixServer] }), process.argv.slice(2));
