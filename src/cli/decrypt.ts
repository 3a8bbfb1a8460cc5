import { readFileSync } from "node:fs";
import { envSecret } from "../config/index.js";
import { BODY_CIPHERS, decryptBody, parseBodyKey, type BodyCipher } from "../endpoints/body-encryption.js";
import { HookwardenError } from "../errors/index.js";

/**
 * `hookwarden decrypt`: decrypts one encrypted webhook body (base64, AEAD tag appended) read from
 * a file or stdin. The key comes from `HOOKWARDEN_DECRYPT_KEY` (base64) or `--key-file`, never
 * from the command line.
 */
export async function decrypt(opts: { cipher: string; iv: string; keyFile?: string; input?: string }): Promise<void> {
  if (!BODY_CIPHERS.includes(opts.cipher as BodyCipher)) {
    throw new HookwardenError("E_ENCRYPTION_INVALID", 400, `--cipher must be one of ${BODY_CIPHERS.join(", ")}`);
  }
  const cipher = opts.cipher as BodyCipher;
  const keyText = opts.keyFile ? read(opts.keyFile, "--key-file") : envSecret("HOOKWARDEN_DECRYPT_KEY")?.reveal();
  if (!keyText) throw new HookwardenError("E_ENCRYPTION_INVALID", 400, "Set HOOKWARDEN_DECRYPT_KEY (base64) or pass --key-file");
  if (!/^[0-9a-fA-F]*$/.test(opts.iv)) throw new HookwardenError("E_ENCRYPTION_INVALID", 400, "--iv is the hex value of the webhook-encryption-iv header");
  const body = opts.input && opts.input !== "-" ? read(opts.input, "the body file") : read(0, "stdin");
  try {
    process.stdout.write(decryptBody(cipher, parseBodyKey(keyText, cipher), Buffer.from(opts.iv, "hex"), body));
  } catch (cause) {
    if (cause instanceof HookwardenError) throw cause;
    throw new HookwardenError("E_ENCRYPTION_INVALID", 400, "Could not decrypt: wrong key, IV or cipher, or the body was altered", { cause });
  }
}

/** A missing or unreadable file is the operator's typo: one line saying so, not a stack trace. */
function read(path: string | 0, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (cause) {
    throw new HookwardenError("E_VALIDATION", 400, `Cannot read ${what} (${(cause as NodeJS.ErrnoException).code ?? "error"})`, { cause });
  }
}
