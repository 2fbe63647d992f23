/**
 * sandboxd: a client for the sandboxd daemon, for Node 18 and later, with
 * no runtime dependencies.
 *
 * ```js
 * import { Client } from "sandboxd";
 * const r = await new Client().runCode("python", "print('hello')");
 * ```
 */

export { Client, mainFile, requestForCode, type RunCodeOptions } from "./client.js";
export { SandboxdError, type ErrorCode } from "./errors.js";
export { Interactive } from "./interactive.js";
export { Files, Sandbox, type Command } from "./sandbox.js";
export { DEFAULT_SOCKET, type ClientOptions } from "./transport.js";
export * from "./types.js";
