import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { Request } from 'express';

/**
 * A Cloud API request body. Graph API clients may send the fields form-encoded instead of as JSON
 * (`to=…&type=text&text={"body":"hi"}`, as Meta's SDKs and `curl -F` do): a field whose value is a JSON
 * object or array is then that object or array. Anything that does not parse stays a string, and the
 * endpoint's validation reports it like any other wrong type.
 */
export function fromGraphForm(fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = typeof v === 'string' ? jsonValue(v) : v;
  return out;
}

function jsonValue(v: string): unknown {
  const t = v.trim();
  if (!(t.startsWith('{') && t.endsWith('}')) && !(t.startsWith('[') && t.endsWith(']'))) return v;
  try {
    return JSON.parse(t) as unknown;
  } catch {
    return v;
  }
}

export const GraphBody = createParamDecorator((_: unknown, ctx: ExecutionContext): unknown => {
  const req = ctx.switchToHttp().getRequest<Request>();
  const body: unknown = req.body;
  if (req.is('application/x-www-form-urlencoded') && body && typeof body === 'object')
    return fromGraphForm(body as Record<string, unknown>);
  return body;
});
