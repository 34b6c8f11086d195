// ServerState: what a deployed server must look like, kept in the state, and read back from the
// server by `pulumi refresh` (the command provider reads nothing back). A dynamic resource, one per
// server, before every step:
// - create and update touch nothing on the host; they record the expected facts;
// - read (refresh) opens one SSH connection and runs components/shell/server-read.sh; when the
//   host differs from what was deployed, the facts in the state become what it has, so the next
//   preview shows each drifted file (by path) and main.cf parameter, and each step that puts a
//   drifted thing back is counted once more: the count is part of that step's command, so the
//   next up runs exactly those steps again (then the service step's reload, deploy check and
//   rollback, as for any change). A refresh that finds nothing changes nothing, and the next up
//   opens no SSH connection.
// The provider's functions are serialized into the state and run in Pulumi's dynamic provider
// process: they use only what this module captures (the pure core, the read script's text, node-ssh).
import * as pulumi from "@pulumi/pulumi";
import {
    bumpRepairs, canonical, differingFacts, driftedSteps, factsOf, observedFacts, parseServerRead, readRequest, ServerFacts, ServerVersions,
} from "./core/drift";
import { PATHS } from "./core/paths";
import { shellFile } from "./shell-files";
import { connectVerified, HostKeyMismatchError, runScript } from "./ssh-session";

/** How the read reaches the server: the same host, user, key and trusted host key as the steps. */
export interface ServerConnection {
    host: string;
    port: number;
    user: string;
    hostKey: string;
    privateKey?: string;
    privateKeyPassword?: string;
    perDialTimeout: number;
    dialErrorLimit: number;
}

interface StateInputs extends ServerFacts {
    connection: ServerConnection;
    /** Path of each managed file -> the step that writes it. */
    fileSteps: Record<string, string>;
    /** Step -> how many times it was run again to repair drift. */
    repairs: Record<string, number>;
}

interface StateOutputs extends StateInputs {
    /** The facts the last create or update recorded: what a refresh compares the host with, and counts repairs from. */
    deployed: ServerFacts;
    /** The versions on the host, recorded by a refresh that found drift. */
    versions?: ServerVersions;
}

const READ_SCRIPT = shellFile("server-read.sh");

async function readServer(c: ServerConnection, expected: ServerFacts) {
    let lastError: unknown;
    for (let attempt = 1; attempt <= c.dialErrorLimit; attempt++) {
        let connection;
        try {
            connection = await connectVerified({
                host: c.host, port: c.port, user: c.user, hostKey: c.hostKey, privateKey: c.privateKey, passphrase: c.privateKeyPassword,
                readyTimeoutMs: c.perDialTimeout * 1000,
            });
        } catch (error) {
            if (error instanceof HostKeyMismatchError) {
                throw new Error(`${c.host} port ${c.port}: the server shows another host key than the trusted one; nothing was sent to it`);
            }
            lastError = error;
            continue;
        }
        try {
            const r = await runScript(connection, c.user, READ_SCRIPT, `reading ${c.host}`, "sh", [], readRequest(expected));
            if (r.code !== 0) throw new Error(`reading ${c.host} failed (exit ${r.code}): ${r.stderr.trim()}`);
            return parseServerRead(r.stdout);
        } finally {
            connection.dispose();
        }
    }
    throw new Error(`${c.host} port ${c.port}: no SSH connection after ${c.dialErrorLimit} attempts: ${lastError instanceof Error ? lastError.message : String(lastError)}`);
}

const serverStateProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<StateInputs>, news: StateInputs) {
        // The counts are the state's: the program cannot know them. A refresh that saw drift
        // raised them (see read).
        return { inputs: { ...news, repairs: olds.repairs ?? {} } };
    },

    async create(inputs: StateInputs) {
        return { id: `${inputs.connection.user}@${inputs.connection.host}:${inputs.connection.port}`, outs: { ...inputs, deployed: factsOf(inputs) } };
    },

    async diff(_id: string, olds: StateOutputs, news: StateInputs) {
        const changes = differingFacts(factsOf(olds), factsOf(news)).length > 0
            || canonical([olds.repairs, olds.connection, olds.fileSteps]) !== canonical([news.repairs, news.connection, news.fileSteps]);
        return { changes };
    },

    async update(_id: string, _olds: StateOutputs, news: StateInputs) {
        return { outs: { ...news, deployed: factsOf(news) } };
    },

    async read(id: string, props: StateOutputs) {
        const read = await readServer(props.connection, props.deployed);
        const observed = observedFacts(props.deployed, read);
        // Nothing drifted (or nothing changed since the last refresh): the state stays as it is.
        if (canonical(factsOf(props)) === canonical(observed)) return { id, props };
        // Each step that would put a drifted thing back is counted once more (from the counts of
        // the last up: a second refresh that sees the same drift counts nothing more).
        const repairs = bumpRepairs(props.repairs ?? {}, driftedSteps(props.deployed, observed, props.fileSteps, PATHS.mainCf));
        return {
            id,
            props: { ...props, ...observed, versions: read.versions },
            // The host's facts as the inputs too: the next preview shows them against the program's.
            inputs: { connection: props.connection, fileSteps: props.fileSteps, repairs, ...observed },
        };
    },
};

type InputsOf<T> = { [K in keyof T]: pulumi.Input<T[K]> };

export interface ServerStateArgs extends InputsOf<ServerFacts> {
    connection: InputsOf<ServerConnection>;
    fileSteps: pulumi.Input<Record<string, string>>;
}

/** A server's expected facts, read back by `pulumi refresh`; `repairs` feeds the steps' commands. */
export class ServerState extends pulumi.dynamic.Resource {
    declare public readonly repairs: pulumi.Output<Record<string, number>>;

    constructor(name: string, args: ServerStateArgs, opts?: pulumi.CustomResourceOptions) {
        super(serverStateProvider, name, { ...args, repairs: undefined }, opts, "postfix", "ServerState");
    }
}
