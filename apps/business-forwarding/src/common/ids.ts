import { randomBytes } from 'node:crypto';

/** A Cloud-API-shaped message id: 'wamid.' + URL-safe base64 of 24 random bytes. */
export function newWamid(): string {
  return `wamid.${randomBytes(24).toString('base64url')}`;
}

/** Meta's fbtrace_id: an opaque per-request id for support. */
export function traceId(): string {
  return randomBytes(12).toString('base64url');
}

/**
 * Normalizes a recipient as Cloud API accepts it ('+', '-', '(', ')' and spaces allowed) to a wa_id.
 * Unlike Cloud API we never prepend the business's country code: a number without one is refused
 * rather than risk delivering to the wrong person.
 */
export function normalizePhone(input: string): string | undefined {
  const digits = input.replace(/[\s\-()+]/g, '');
  return /^[1-9]\d{6,14}$/.test(digits) ? digits : undefined;
}

/** Meta shows display numbers as digits only in webhook metadata. */
export function displayDigits(display: string): string {
  return display.replace(/\D/g, '');
}

export const unixSeconds = (d: Date): string => String(Math.floor(d.getTime() / 1000));
