import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** Base path of the REST API, relative to the server's base URL. */
export const API_NAMESPACE = 'pachls/api';

/** The JSON error body every route answers with on failure. */
export interface IErrorBody {
  error: string;
  message: string;
  details: { [key: string]: unknown };
}

/**
 * An error answered by the server (or a failure to reach it).
 *
 * `error` is the stable code (`not_found`, `invalid_name`, ...), `message`
 * the human text to show, `details` structured context, `status` the HTTP status
 * (0 when the server could not be reached at all).
 */
export class PachlsApiError extends Error {
  readonly status: number;
  readonly error: string;
  readonly details: { [key: string]: unknown };
  /**
   * Seconds the server asked to wait before trying again (its `Retry-After`,
   * sent with 503 `unavailable` when it is busy with long operations), else null.
   * The request already waited that long and asked once more (requestAPI).
   */
  readonly retryAfter: number | null;

  constructor(status: number, body: IErrorBody, retryAfter: number | null = null) {
    super(body.message);
    this.name = 'PachlsApiError';
    this.status = status;
    this.error = body.error;
    this.details = body.details ?? {};
    this.retryAfter = retryAfter;
  }
}

/**
 * The longest `Retry-After` (seconds) a request waits out before it is sent
 * once more; a longer wait is left to the user (the error is thrown).
 */
export const MAX_RETRY_AFTER_WAIT = 30;

/** The seconds of a `Retry-After` header (delay-seconds or an HTTP date), else null. */
export function retryAfterSeconds(value: string | null, now = Date.now()): number | null {
  if (value === null || value.trim() === '') {
    return null;
  }
  const text = value.trim();
  if (/^\d+$/.test(text)) {
    return parseInt(text, 10);
  }
  const date = Date.parse(text);
  return isNaN(date) ? null : Math.max(0, Math.ceil((date - now) / 1000));
}

function isErrorBody(value: unknown): value is IErrorBody {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as IErrorBody).error === 'string' &&
    typeof (value as IErrorBody).message === 'string'
  );
}

/**
 * Call a route of the pachls REST API and decode its JSON answer.
 *
 * @param endpoint path below `/pachls/api/`, e.g. `repos`
 * @param init fetch options; a `body` object is sent as JSON
 */
export async function requestAPI<T>(
  endpoint = '',
  init: Omit<RequestInit, 'body'> & { body?: unknown } = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const { data } = await requestAPIResponse<T>(endpoint, init, settings);
  return data as T;
}

/** The error code of a route that writes history while no author is known. */
export const IDENTITY_REQUIRED = 'identity_required';

/**
 * Called when a route answers 409 `identity_required`: resolves true once a
 * name and email are saved (the request is then sent once more), false when
 * the user declined (the 409 is then thrown as it came).
 */
export type IdentityRequiredHandler = (error: PachlsApiError) => Promise<boolean>;

let identityRequiredHandler: IdentityRequiredHandler | null = null;

/** Install (or remove, with null) what asks for an identity; the application sets it once. */
export function setIdentityRequiredHandler(handler: IdentityRequiredHandler | null): void {
  identityRequiredHandler = handler;
}

/**
 * As `requestAPI`, also giving the response (for its headers); a 304 Not
 * Modified is not an error (its `data` is undefined).
 *
 * A 409 `identity_required` is handed to the identity handler; when it saved
 * an identity the request is sent once more. The server refuses such a
 * request before changing anything, so sending it again is safe.
 */
export async function requestAPIResponse<T>(
  endpoint = '',
  init: Omit<RequestInit, 'body'> & { body?: unknown } = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<{ data: T | undefined; response: Response }> {
  try {
    return await sendOnceMoreIfBusy<T>(endpoint, init, settings);
  } catch (reason) {
    const handler = identityRequiredHandler;
    if (
      !(reason instanceof PachlsApiError) ||
      reason.error !== IDENTITY_REQUIRED ||
      handler === null ||
      !(await handler(reason))
    ) {
      throw reason;
    }
    return sendOnceMoreIfBusy<T>(endpoint, init, settings);
  }
}

/**
 * Send the request; when the server answers 503 with `Retry-After` (busy with
 * long operations), wait that long and send it once more, so a pressed Commit
 * still lands rather than leaving the user a countdown to watch. The busy
 * server refused the request before running any of it, so sending it again
 * is safe. A second refusal (or a longer wait than MAX_RETRY_AFTER_WAIT) is
 * thrown.
 */
async function sendOnceMoreIfBusy<T>(
  endpoint: string,
  init: Omit<RequestInit, 'body'> & { body?: unknown },
  settings: ServerConnection.ISettings
): Promise<{ data: T | undefined; response: Response }> {
  try {
    return await sendRequest<T>(endpoint, init, settings);
  } catch (reason) {
    if (
      !(reason instanceof PachlsApiError) ||
      reason.status !== 503 ||
      reason.retryAfter === null ||
      reason.retryAfter > MAX_RETRY_AFTER_WAIT
    ) {
      throw reason;
    }
    const seconds = reason.retryAfter;
    await new Promise(resolve => setTimeout(resolve, seconds * 1000));
    return sendRequest<T>(endpoint, init, settings);
  }
}

/**
 * The typed error of a failed response read outside `requestAPI` (a download
 * or a file fetched whole): the server's JSON error body when it sent one.
 */
export async function responseError(response: Response): Promise<PachlsApiError> {
  const text = await response.text();
  let data: unknown = undefined;
  try {
    data = JSON.parse(text);
  } catch {
    // not a JSON error body
  }
  return errorOfFailedResponse(response, text, data);
}

function errorOfFailedResponse(response: Response, text: string, data: unknown): PachlsApiError {
  const retryAfter = retryAfterSeconds(response.headers.get('Retry-After'));
  if (isErrorBody(data)) {
    return new PachlsApiError(response.status, data, retryAfter);
  }
  return new PachlsApiError(
    response.status,
    {
      error: 'http_error',
      message: `${response.status} ${response.statusText}`.trim(),
      details: { body: text.slice(0, 500) }
    },
    retryAfter
  );
}

async function sendRequest<T>(
  endpoint: string,
  init: Omit<RequestInit, 'body'> & { body?: unknown },
  settings: ServerConnection.ISettings
): Promise<{ data: T | undefined; response: Response }> {
  const url = URLExt.join(settings.baseUrl, API_NAMESPACE, endpoint);
  const { body, ...rest } = init;
  const request: RequestInit = { ...rest };
  if (body !== undefined) {
    request.body = JSON.stringify(body);
    request.headers = { 'Content-Type': 'application/json', ...(rest.headers ?? {}) };
  }

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, request, settings);
  } catch (reason) {
    throw new PachlsApiError(0, {
      error: 'network_error',
      message: `Cannot reach the Jupyter server: ${String(reason)}`,
      details: {}
    });
  }
  if (response.status === 304) {
    return { data: undefined, response };
  }

  const text = await response.text();
  let data: unknown = undefined;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      data = undefined;
    }
  }

  if (!response.ok) {
    throw errorOfFailedResponse(response, text, data);
  }
  if (text.length > 0 && data === undefined) {
    throw new PachlsApiError(response.status, {
      error: 'bad_response',
      message: 'The server answered with something that is not JSON.',
      details: { body: text.slice(0, 500) }
    });
  }
  return { data: data as T, response };
}
