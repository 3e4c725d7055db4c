/** RFC 7807 problems from the API, as an Error the UI can show. */
export interface FieldProblem {
  field?: string;
  loc?: (string | number)[];
  message?: string;
  msg?: string;
  code?: string;
}

export interface ProblemBody {
  type?: string;
  title?: string;
  status?: number;
  detail?: string;
  instance?: string;
  request_id?: string;
  errors?: FieldProblem[];
}

export class ApiError extends Error {
  readonly status: number;
  readonly title: string;
  readonly detail: string | undefined;
  readonly type: string | undefined;
  readonly requestId: string | undefined;
  readonly errors: FieldProblem[];

  constructor(status: number, body: ProblemBody | undefined) {
    const title = body?.title ?? defaultTitle(status);
    super(body?.detail ? `${title}: ${body.detail}` : title);
    this.name = "ApiError";
    this.status = status;
    this.title = title;
    this.detail = body?.detail;
    this.type = body?.type;
    this.requestId = body?.request_id;
    this.errors = Array.isArray(body?.errors) ? body.errors : [];
  }

  /** The message of the first error about `field`, for inline form errors. */
  fieldError(field: string): string | undefined {
    const hit = this.errors.find((e) => e.field === field || e.loc?.at(-1) === field);
    return hit?.message ?? hit?.msg;
  }
}

function defaultTitle(status: number): string {
  if (status === 0) return "Network error";
  if (status === 401) return "Not signed in";
  if (status === 403) return "Not allowed";
  if (status === 404) return "Not found";
  if (status === 409) return "Conflict";
  if (status === 422) return "Invalid input";
  if (status === 429) return "Too many requests";
  if (status >= 500) return "Server error";
  return `Request failed (${status})`;
}

/** Turn whatever a failed response carried into a problem body. */
export function asProblem(value: unknown): ProblemBody | undefined {
  if (value && typeof value === "object") {
    const v = value as Record<string, unknown>;
    if (typeof v.title === "string" || typeof v.detail === "string") return v as ProblemBody;
    // FastAPI's default {detail: [...]} validation shape, in case a route bypasses the handler.
    if (Array.isArray(v.detail)) {
      return { title: "Invalid input", errors: v.detail as FieldProblem[] };
    }
  }
  if (typeof value === "string" && value.trim()) return { detail: value.trim().slice(0, 300) };
  return undefined;
}

/** "Title: detail" for a toast, from any thrown value. */
export function problemMessage(error: unknown): { title: string; description?: string } {
  if (error instanceof ApiError) {
    const first = error.errors[0];
    const fieldText = first ? `${first.field ?? first.loc?.slice(1).join(".") ?? ""} ${first.message ?? first.msg ?? ""}`.trim() : undefined;
    const description = error.detail && error.detail !== error.title ? error.detail : fieldText;
    return description ? { title: error.title, description } : { title: error.title };
  }
  if (error instanceof Error) return { title: "Something went wrong", description: error.message };
  return { title: "Something went wrong" };
}
