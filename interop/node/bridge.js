'use strict';
// The line protocol between examples/tests/interop.rs and the ocpp-rpc peers: the same
// commands and events as interop/python/bridge.py (read its docstring). Every OCPP message
// is sent, received, validated (strict mode: the library's own schemas, both directions)
// and answered by ocpp-rpc.

const fs = require('fs');
const readline = require('readline');
const { createRPCError, createValidator } = require('ocpp-rpc');

const PEER = 'ocpp-rpc';
const SUBPROTOCOLS = { '1.6': 'ocpp1.6', '2.0.1': 'ocpp2.0.1', '2.1': 'ocpp2.1' };

function emit(obj) {
    process.stdout.write(JSON.stringify(obj) + '\n');
}

// ocpp-rpc 2.2.1 ships the OCPP 2.1 schemas with the ids of the official files
// (`urn:AuthorizeRequest`, `urn:AuthorizeResponse`) but looks schemas up as `urn:Authorize.req`
// / `urn:Authorize.conf`, as in its 1.6 and 2.0.1 files, so strict mode refuses every 2.1
// message with "ProtocolError: Schema 'urn:Authorize.req' is missing". This builds the 2.1
// validator from the same schema file with the ids it looks for; 1.6 and 2.0.1 use the
// library's validators untouched.
function strictValidators(version) {
    if (version !== '2.1') return [];
    const schemas = require('ocpp-rpc/lib/schemas/ocpp2_1.json').map((s) => {
        const id = s.$id.replace(/Request$/, '.req').replace(/Response$/, '.conf');
        return { ...s, $id: id.endsWith('.req') || id.endsWith('.conf') ? id : `${id}.req` };
    });
    return [createValidator('ocpp2.1', schemas)];
}

class Bridge {
    constructor(role, version, coveragePath) {
        this.role = role; // 'charge_point' or 'central_system'
        this.version = version;
        this.answers = new Map();
        this.client = null;
        this.sent = new Map();
        this.received = new Map();
        this.lastAnswer = null; // {action, kind} of the latest answer to one of our CALLs
        this.coverage = coveragePath ? fs.openSync(coveragePath, 'a') : null;
    }

    direction(outbound) {
        const ours = this.role === 'charge_point' ? 'cs_to_csms' : 'csms_to_cs';
        const theirs = this.role === 'charge_point' ? 'csms_to_cs' : 'cs_to_csms';
        return outbound ? ours : theirs;
    }

    record(action, outboundCall, answer) {
        if (this.coverage === null) return;
        const line = {
            peer: PEER, role: this.role, version: this.version, action,
            direction: this.direction(outboundCall), answer,
        };
        fs.writeSync(this.coverage, JSON.stringify(line) + '\n');
    }

    observe(text, outbound) {
        let frame;
        try {
            frame = JSON.parse(String(text));
        } catch (e) {
            return;
        }
        if (!Array.isArray(frame)) return;
        const [kind, uid] = frame;
        if (kind === 2) {
            const [, , action, payload] = frame;
            if (outbound) {
                this.sent.set(uid, action);
            } else {
                this.received.set(uid, action);
                emit({ event: 'incoming', action, payload });
            }
        } else if (kind === 3 || kind === 4) {
            const pending = outbound ? this.received : this.sent;
            const action = pending.get(uid);
            if (action === undefined) return;
            pending.delete(uid);
            if (!outbound) this.lastAnswer = { action, kind };
            if (kind === 3) {
                this.record(action, !outbound, 'result');
                if (outbound) emit({ event: 'answered', action, response: frame[2] });
            } else {
                this.record(action, !outbound, `error:${frame[2]}`);
                if (outbound) {
                    emit({ event: 'answered', action, error: { code: frame[2], description: frame[3] } });
                }
            }
        }
    }

    // Attaches an RPCClient (client side) or RPCServerClient (server side).
    attach(client) {
        this.client = client;
        client.on('message', ({ message, outbound }) => this.observe(message, outbound));
        client.on('badMessage', ({ buffer, error }) => {
            emit({ event: 'bad_message', message: String(buffer), error: String(error && error.message) });
        });
        client.on('strictValidationFailure', ({ method, outbound, isCall, error }) => {
            emit({
                event: 'strict_validation_failure', action: method, outbound, isCall,
                error: String(error && error.message),
            });
        });
        client.handle(({ method }) => {
            if (!this.answers.has(method)) {
                throw createRPCError('NotImplemented', `no answer for ${method}`);
            }
            return this.answers.get(method);
        });
    }

    async call(cmd) {
        const { action, id } = cmd;
        const client = this.client;
        if (!client) {
            emit({ event: 'result', id, action, ok: false, error: { code: 'NotConnected', description: 'no connection' } });
            return;
        }
        this.lastAnswer = null;
        try {
            const response = await client.call(action, cmd.payload || {}, { callTimeoutMs: 15000 });
            emit({ event: 'result', id, action, ok: true, response });
        } catch (e) {
            // remote: the other side answered a CALLERROR; otherwise ocpp-rpc refused the
            // request or the answer (strict mode) or timed out.
            const remote = this.lastAnswer !== null && this.lastAnswer.action === action
                && this.lastAnswer.kind === 4;
            const code = e.rpcErrorCode || e.name || 'PeerException';
            emit({ event: 'result', id, action, ok: false, error: { code, remote, description: String(e.message) } });
        }
    }

    // Reads commands until "quit" or end of input, then runs onQuit.
    commands(onQuit) {
        const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
        let done = false;
        const finish = async () => {
            if (done) return;
            done = true;
            rl.close();
            await onQuit();
        };
        rl.on('line', (line) => {
            line = line.trim();
            if (!line || done) return;
            let cmd;
            try {
                cmd = JSON.parse(line);
            } catch (e) {
                emit({ event: 'fatal', error: `not JSON: ${line}` });
                return;
            }
            if (cmd.cmd === 'quit') {
                finish();
            } else if (cmd.cmd === 'answer') {
                this.answers.set(cmd.action, cmd.payload || {});
            } else if (cmd.cmd === 'call') {
                this.call(cmd);
            } else {
                emit({ event: 'fatal', error: `unknown command: ${line}` });
            }
        });
        rl.on('close', finish);
    }
}

function parseArgs(argv, names) {
    const out = {};
    for (let i = 0; i < argv.length; i += 1) {
        const m = /^--(.+)$/.exec(argv[i]);
        if (!m || !names.includes(m[1]) || i + 1 >= argv.length) {
            throw Error(`usage: ${names.map((n) => `--${n} VALUE`).join(' ')}`);
        }
        out[m[1]] = argv[i + 1];
        i += 1;
    }
    return out;
}

function main(run) {
    run().catch((e) => {
        emit({ event: 'fatal', error: String(e && e.stack ? e.stack : e) });
        process.exit(1);
    });
}

module.exports = { Bridge, SUBPROTOCOLS, emit, main, parseArgs, strictValidators };
