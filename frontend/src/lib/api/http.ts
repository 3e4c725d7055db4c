/** Small typed helpers over apiFetch, for calls and for the generated client's results. */
import { client } from "@/client/client.gen";
import { ApiError, asProblem } from "./problem";
import { apiFetch } from "./fetch";

client.setConfig({ baseUrl: "", credentials: "include", fetch: apiFetch });

export type Query = Record<string, string | number | boolean | null | undefined>;

export function withQuery(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value !== undefined && value !== null && value !== "") params.set(key, String(value));
  }
  const qs = params.toString();
  return qs ? `${path}?${qs}` : path;
}

async function readBody(response: Response): Promise<unknown> {
  if (response.status === 204) return undefined;
  const text = await response.text();
  if (!text) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

export async function request<T>(
  method: string,
  path: string,
  options: { query?: Query; body?: unknown; raw?: BodyInit; contentType?: string; signal?: AbortSignal } = {},
): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  let body: BodyInit | undefined;
  if (options.raw !== undefined) {
    body = options.raw;
    if (options.contentType) headers["Content-Type"] = options.contentType;
  } else if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers["Content-Type"] = "application/json";
  }
  let response: Response;
  try {
    response = await apiFetch(withQuery(path, options.query), { method, headers, body, signal: options.signal });
  } catch (error) {
    if (error instanceof DOMException && error.name === "AbortError") throw error;
    throw new ApiError(0, { detail: "The server could not be reached. Check your connection." });
  }
  const data = await readBody(response);
  if (!response.ok) throw new ApiError(response.status, asProblem(data));
  return data as T;
}

/** The generated client's `{data, error, response}` → data, or a thrown ApiError. */
export async function unwrap<T>(
  call: Promise<{ data?: T; error?: unknown; response?: Response } | { data: T; error: undefined }>,
): Promise<T> {
  let result: { data?: T; error?: unknown; response?: Response };
  try {
    result = (await call) as { data?: T; error?: unknown; response?: Response };
  } catch {
    throw new ApiError(0, { detail: "The server could not be reached. Check your connection." });
  }
  const status = result.response?.status ?? 0;
  if (result.error !== undefined || (result.response && !result.response.ok)) {
    throw new ApiError(status, asProblem(result.error));
  }
  return result.data as T;
}
