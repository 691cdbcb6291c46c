"use server";

// Server actions: the Next.js server calls billing-api with the signed-in user's Clerk session
// token, so the browser never needs one for these.

import { auth } from "@clerk/nextjs/server";

import { BillingApiError, billingApi, type Consumed, type Subscription } from "../../lib/billing-api";

/** Is this user Pro, how many readings are left (`GET /v1/subscription`). */
export async function getSubscription(): Promise<Subscription> {
  const { getToken } = await auth();
  return billingApi<Subscription>("/v1/subscription", await getToken());
}

export type ReadingResult =
  | { ok: true; credits: number }
  | { ok: false; code: "INSUFFICIENT_CREDITS" | "NO_ACTIVE_SUBSCRIPTION" };

/**
 * Spends one reading (`POST /v1/credits/consume`). Make `idempotencyKey` once per reading the
 * user asked for (e.g. `crypto.randomUUID()` when they press the button) and send the same key
 * on a retry: the API answers a repeat with its first answer and never spends twice.
 */
export async function consumeReading(idempotencyKey: string): Promise<ReadingResult> {
  const { getToken } = await auth();
  try {
    const consumed = await billingApi<Consumed>("/v1/credits/consume", await getToken(), {
      method: "POST",
      headers: { "Idempotency-Key": idempotencyKey },
      body: { amount: 1 },
    });
    return { ok: true, credits: consumed.credits };
  } catch (e) {
    if (
      e instanceof BillingApiError &&
      (e.code === "INSUFFICIENT_CREDITS" || e.code === "NO_ACTIVE_SUBSCRIPTION")
    ) {
      return { ok: false, code: e.code };
    }
    throw e;
  }
}
