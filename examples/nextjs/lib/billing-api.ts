// billing-api's app routes (/v1/…): their JSON shapes and one fetch helper, used by the
// browser (checkout) and the server (status, credits). Every call carries the signed-in user's
// session token; the API never takes a user id, customer key or subscription id.

/** billing-api's base URL: the stack's `ApiUrl` output. */
const BILLING_API_URL = process.env.NEXT_PUBLIC_BILLING_API_URL ?? "";

export interface Plan {
  amount: number;
  currency: "KRW";
  orderName: string;
  credits: number;
}

/** `POST /v1/checkout` → 201: hand these to Toss's `requestBillingAuth` unchanged. */
export interface Checkout {
  customerKey: string;
  successUrl: string;
  failUrl: string;
  expiresAt: string;
  plan: Plan;
}

export type SubscriptionStatus = "none" | "incomplete" | "active" | "past_due" | "canceled";

/** `GET /v1/subscription` → 200. */
export interface Subscription {
  status: SubscriptionStatus;
  cancelAtPeriodEnd: boolean;
  currentPeriod: { start: string; end: string } | null;
  nextChargeAt: string | null;
  credits: number;
  card: { number: string } | null;
  plan: Plan;
  pastDue: {
    since: string;
    nextRetryAt: string | null;
    lastCode: string;
    needsNewCard: boolean;
  } | null;
}

/** `POST /v1/credits/consume` → 200. */
export interface Consumed {
  consumed: number;
  credits: number;
}

/** Every refusal: `{"error":{"code","message", …}}` (409 INSUFFICIENT_CREDITS adds `credits`). */
export class BillingApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BillingApiError";
  }
}

interface Call {
  method?: "GET" | "POST";
  headers?: Record<string, string>;
  body?: unknown;
}

/** Calls billing-api as the user whose session token this is. */
export async function billingApi<T>(path: string, token: string | null, call: Call = {}): Promise<T> {
  if (!token) {
    throw new BillingApiError(401, "UNAUTHENTICATED", "not signed in");
  }
  const headers: Record<string, string> = { Authorization: `Bearer ${token}`, ...call.headers };
  if (call.body !== undefined) {
    headers["Content-Type"] = "application/json";
  }
  const response = await fetch(`${BILLING_API_URL}${path}`, {
    method: call.method ?? "GET",
    headers,
    body: call.body === undefined ? undefined : JSON.stringify(call.body),
    cache: "no-store",
  });
  const json: unknown = await response.json();
  if (!response.ok) {
    const error = (json as { error?: { code?: string; message?: string } }).error;
    throw new BillingApiError(
      response.status,
      error?.code ?? "UNKNOWN",
      error?.message ?? response.statusText,
    );
  }
  return json as T;
}
