/**
 * Cloud API error codes the relay returns, with Meta's HTTP status and title. Clients build logic on
 * `code` and `error_data.details` (Meta's guidance), so codes and statuses must match Meta's table.
 */
export const CLOUD_API_ERRORS = {
  0: { http: 401, type: 'OAuthException', title: 'AuthException' },
  1: { http: 400, type: 'OAuthException', title: 'API Unknown' },
  2: { http: 503, type: 'OAuthException', title: 'API Service' },
  4: { http: 400, type: 'OAuthException', title: 'Too many API calls' },
  10: { http: 403, type: 'OAuthException', title: 'Permission denied' },
  33: { http: 400, type: 'GraphMethodException', title: 'Parameter value is not valid' },
  100: { http: 400, type: 'OAuthException', title: 'Invalid parameter' },
  190: { http: 401, type: 'OAuthException', title: 'Access token has expired' },
  368: { http: 403, type: 'OAuthException', title: 'Temporarily blocked for policies violations' },
  130429: { http: 400, type: 'OAuthException', title: 'Rate limit hit' },
  131000: { http: 500, type: 'OAuthException', title: 'Something went wrong' },
  131005: { http: 403, type: 'OAuthException', title: 'Access denied' },
  131008: { http: 400, type: 'OAuthException', title: 'Required parameter is missing' },
  131009: { http: 400, type: 'OAuthException', title: 'Parameter value is not valid' },
  131016: { http: 500, type: 'OAuthException', title: 'Service unavailable' },
  131021: { http: 400, type: 'OAuthException', title: 'Recipient cannot be sender' },
  131026: { http: 400, type: 'OAuthException', title: 'Message undeliverable' },
  131047: { http: 400, type: 'OAuthException', title: 'Re-engagement message' },
  131048: { http: 400, type: 'OAuthException', title: 'Spam rate limit hit' },
  131051: { http: 400, type: 'OAuthException', title: 'Unsupported message type' },
  131056: {
    http: 400,
    type: 'OAuthException',
    title: '(Business Account, Consumer Account) pair rate limit hit',
  },
  133000: { http: 500, type: 'OAuthException', title: 'Incomplete deregistration' },
  133004: { http: 503, type: 'OAuthException', title: 'Server temporarily unavailable' },
  133005: { http: 400, type: 'OAuthException', title: 'Two step verification PIN mismatch' },
  133010: { http: 400, type: 'OAuthException', title: 'Phone number not registered' },
  133016: { http: 400, type: 'OAuthException', title: 'Account register or deregister rate limit exceeded' },
  135000: { http: 400, type: 'OAuthException', title: 'Generic user error' },
  137000: { http: 400, type: 'OAuthException', title: 'Identity key hash mismatch' },
  139100: { http: 400, type: 'OAuthException', title: 'Failed to block/unblock users' },
  139101: { http: 400, type: 'OAuthException', title: 'Blocklist limit reached' },
  139102: { http: 400, type: 'OAuthException', title: 'Blocklist concurrent update' },
  139103: { http: 500, type: 'OAuthException', title: 'Internal error' },
} as const;

export type CloudApiErrorCode = keyof typeof CLOUD_API_ERRORS;

export interface CloudApiErrorBody {
  error: {
    message: string;
    type: string;
    code: number;
    error_data: { messaging_product: 'whatsapp'; details: string };
    fbtrace_id: string;
  };
}

/** Meta's error envelope: message is "(#code) title". */
export function cloudApiErrorBody(
  code: CloudApiErrorCode,
  details: string,
  traceId: string,
): CloudApiErrorBody {
  const def = CLOUD_API_ERRORS[code];
  return {
    error: {
      message: `(#${code}) ${def.title}`,
      type: def.type,
      code,
      error_data: { messaging_product: 'whatsapp', details },
      fbtrace_id: traceId,
    },
  };
}
