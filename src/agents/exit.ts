import { HookwardenError } from "../errors/index.js";

/**
 * Exit codes of `hookwarden agent`, stable for scripts and supervisors. A refusal will not change
 * on its own (a wrong secret stays wrong), so the agent stops instead of retrying forever, and the
 * printed systemd unit lists these codes in `RestartPreventExitStatus`.
 */
export const AGENT_EXIT = {
  /** Stopped by SIGTERM/SIGINT, or `--check` passed. */
  ok: 0,
  /** Invalid configuration (flags, config file, CA file) or an unexpected error. */
  error: 1,
  /** The gateway refused the key or secret (401): unknown key, wrong or revoked secret. */
  unauthorized: 3,
  /** The token may not serve a configured bucket (403): not among its buckets, or no such bucket. */
  forbidden: 4,
  /** `--check` only: the gateway could not be reached (connection refused, DNS, TLS, timeout, 5xx). */
  unreachable: 5,
} as const;

/** Why an agent stopped for good; `exitCode` is what the command line exits with. */
export class AgentStopError extends HookwardenError {
  readonly exitCode: number;

  constructor(code: "E_UNAUTHORIZED" | "E_FORBIDDEN" | "E_UNAVAILABLE", detail: string, exitCode: number) {
    super(code, code === "E_UNAUTHORIZED" ? 401 : code === "E_FORBIDDEN" ? 403 : 503, detail);
    this.name = "AgentStopError";
    this.exitCode = exitCode;
  }
}
